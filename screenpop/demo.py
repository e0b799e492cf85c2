"""``screenpop demo``: the whole product on one machine, driven by the PBX simulator.

Seeds the demo business databases if missing, starts the simulator (a real
AMI server on a loopback port), starts the service pointed at it — the same
connection, tracker, orchestrator and web app that talk to Asterisk in
production — creates the demo logins, and keeps calls flowing so a person
logging in as an agent sees pops within seconds.
"""
from __future__ import annotations

import asyncio
import logging
import secrets
import sys
from dataclasses import replace
from urllib.parse import urlencode

from screenpop.config import Settings
from screenpop.config_paths import choose_config

log = logging.getLogger(__name__)

DEMO_PASSWORD = "demo"
DEMO_CUSTOMERS = 20_000

# The people of the real captures and of the demo databases' personas, so the
# demo pops familiar names, plus a withheld caller and numbers nobody knows.
DEMO_CALLERS: list[tuple[str | None, str | None]] = [
    ("+34912345678", "Ana Garcia"),
    ("+14155550100", "Bob Smith"),
    ("0034912345679", "Carla Ruiz"),
    ("912345680", None),
    ("+34600111222", "Frank Moreno"),
    ("+6591234567", "Hector Lim"),
    (None, None),
    ("+34918812311", None),
    ("+34914186027", None),
]


def demo_users(agents=None):
    """The demo's logins: one per agent of ``agents`` (default: the
    captures' five, what the test stacks simulate; ``screenpop demo`` passes
    its center's), named like the agent, plus a supervisor, an admin and
    a support login (outcomes and notes on every call, no phone)."""
    from screenpop.auth.store import DemoUser
    from telephony.simulator import default_agents

    agents = default_agents() if agents is None else agents
    users = [DemoUser(f"agent{agent.id}", DEMO_PASSWORD, "agent", agent.id, agent.name)
             for agent in agents.values()]
    users += [DemoUser("supervisor", DEMO_PASSWORD, "supervisor", None, "Sam Supervisor"),
              DemoUser("admin", DEMO_PASSWORD, "admin", None, "Ada Admin"),
              DemoUser("support", DEMO_PASSWORD, "support", None, "Sue Support")]
    return users


def demo_settings(path: str | None) -> Settings:
    """``--config`` if given, else the rule of every command
    (:func:`screenpop.config_paths.choose_config`: ``$SCREENPOP_CONFIG``, else
    the shipped config/demo.toml, its ``var/demo/`` files the checkout's)."""
    return choose_config(path).load()


async def run_demo(settings: Settings, *, rate: float | None, duration: float | None, speed: float,
                   timeline: bool = False, as_json: bool = False, port: int | None = None,
                   customers: int = DEMO_CUSTOMERS, out=None) -> int:
    from adapters.demo import ensure_seeded
    from screenpop.auth.store import ensure_demo_users
    from screenpop.commands.seed import ProgressLine
    from screenpop.service import ScreenpopService
    from telephony.replay import timeline_line
    from telephony.simulator import PbxSimulator
    from telephony.simulator.center import CenterProfile, demo_center

    if (rate is not None and not rate > 0) or not speed > 0:
        from screenpop.cli import UsageError

        raise UsageError("demo: --rate and --speed must be positive numbers")
    out = out or sys.stdout
    dsns = {source.name: source.dsn for source in settings.sources}
    progress = ProgressLine(sys.stderr)
    if await ensure_seeded(dsns, customers, progress=progress) is None:
        print("screenpop demo: demo databases already seeded", file=sys.stderr)

    secret = settings.ami.secret or secrets.token_urlsafe(16)
    agents, queues = demo_center()
    profile = CenterProfile()
    rate = profile.rate_for(len(agents)) if rate is None else rate
    simulator = PbxSimulator(username=settings.ami.username, secret=secret, agents=agents, queues=queues)
    ami_port = await simulator.start()
    settings = replace(settings, ami=replace(settings.ami, host="127.0.0.1", port=ami_port, secret=secret))
    settings, wallboard_token = with_wallboard_token(settings)
    if port is not None:
        settings = replace(settings, web=replace(settings.web, port=port))
    service = ScreenpopService(settings)
    try:
        url = await service.start(ready=False)  # /healthz says OK once the demo's users exist
        users = demo_users(agents)
        created = await ensure_demo_users(service.accounts, users)
        service.mark_ready()
        if timeline:
            _print_call_events(service, out, as_json, timeline_line)
        _welcome(url, ami_port, rate, created, users, wallboard_url(url, wallboard_token),
                 profile.load(rate, len(agents)))
        # wait=False: --duration is when the demo stops, not when its last
        # call (talks last minutes) would have ended.
        await simulator.run_traffic(rate, DEMO_CALLERS, duration=duration, speed=speed, arrivals="poisson",
                                    profile=profile, wait=False)
        await asyncio.sleep(min(2.0, 10 / max(speed, 1)))  # let the last hang-ups through
    finally:
        await service.stop()
        await simulator.stop()
    return 0


def _print_call_events(service, out, as_json: bool, timeline_line) -> None:
    """Show the live call timeline in the terminal as well (``--timeline``)."""
    feed = service.feed
    deliver = feed.deliver

    def show(event):
        out.write(timeline_line(event, as_json) + "\n")  # printable: caller names are the caller's
        out.flush()
        return deliver(event)

    feed.deliver = show


def with_wallboard_token(settings: Settings) -> tuple[Settings, str]:
    """The wallboard's token: the configured one, else one made for this run
    (the wallboard is refused without a token, and the demo prints its link)."""
    token = settings.supervision.wallboard_token or secrets.token_urlsafe(18)
    return replace(settings, supervision=replace(settings.supervision, wallboard_token=token)), token


def wallboard_url(url: str, token: str) -> str:
    return f"{url}/wallboard?{urlencode({'token': token})}"


def _welcome(url: str, ami_port: int, rate: float, created: list[str], users, wallboard: str, load: float) -> None:
    agents = [u.username for u in users if u.role == "agent"]
    logins = ", ".join(agents) if len(agents) <= 3 else f"{agents[0]} ... {agents[-1]}"
    print(f"""
screenpop demo is running: {url}

  log in as an agent:   {logins}   (password: {DEMO_PASSWORD})
  supervisor / admin:   supervisor, admin              (password: {DEMO_PASSWORD})
  support staff:        support (outcomes and notes)   (password: {DEMO_PASSWORD})
  interaction search:   {url}/interactions
  wallboard (a TV):     {wallboard}

PBX simulator on 127.0.0.1:{ami_port}: {len(agents)} agents, {rate * 60:.1f} new calls a minute
(agents {load:.0%} busy).  Ctrl-C to stop.
""", file=sys.stderr, flush=True)
    if created:
        log.info("demo users created users=%s", ",".join(created))
