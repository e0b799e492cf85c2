"""``screenpop demo`` as a user runs it: the real command in a subprocess
(simulator, service, seeded SQLite databases in a temporary folder), at
``--speed 40`` so half an hour of the center's traffic plays in under a
minute, checked through the HTTP API a supervisor and a wallboard use.

What a supervisor judges the demo by: the link to the wallboard it prints
opens it, every agent on the dashboard has a name, and the day's figures
(read by the service from the interaction log) are those of a center that
copes: few abandons, the service level mostly in target, talks of minutes."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
SPEED = 40
DURATION = 50  # wall seconds: about 33 simulated minutes, ~100 calls at the default rate


@dataclass
class DemoRun:
    process: subprocess.Popen
    started: float
    lines: list[str] = field(default_factory=list)
    times: list[float] = field(default_factory=list)  # time.monotonic() each line was read

    def read(self) -> None:
        for line in iter(self.process.stderr.readline, ""):
            self.times.append(time.monotonic())
            self.lines.append(line)

    def text(self) -> str:
        return "".join(self.lines)

    def wait_for(self, pattern: str, timeout: float = 120.0) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            match = re.search(pattern, self.text())
            if match:
                return match
            if self.process.poll() is not None and not re.search(pattern, self.text()):
                break
            time.sleep(0.2)
        pytest.fail(f"the demo never printed {pattern!r}; it printed:\n{self.text()}")

    @property
    def url(self) -> str:
        return self.wait_for(r"screenpop demo is running: (http://\S+)")[1]

    @property
    def wallboard(self) -> str:
        return self.wait_for(r"wallboard[^:]*:\s+(http://\S+/wallboard\?\S+)")[1]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("demo-run")
    config = folder / "demo.toml"
    text = (ROOT / "config" / "demo.toml").read_text(encoding="utf-8")
    config.write_text(text.replace("sqlite+aiosqlite:///var/demo/", f"sqlite+aiosqlite:///{folder}/"), encoding="utf-8")
    env = {key: value for key, value in os.environ.items() if not key.startswith("SCREENPOP_")}
    env["PYTHONPATH"] = str(ROOT)
    process = subprocess.Popen(
        [sys.executable, "-m", "screenpop.cli", "--config", str(config), "demo", "--port", "0",
         "--speed", str(SPEED), "--duration", str(DURATION), "--customers", "300"],
        cwd=folder, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    run = DemoRun(process, time.monotonic())
    reader = threading.Thread(target=run.read, daemon=True)
    reader.start()
    yield run
    if process.poll() is None:
        process.terminate()
    process.wait(30)
    reader.join(5)


def get(url: str, token: str | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def login(url: str, username: str) -> str:
    body = json.dumps({"username": username, "password": "demo", "return_token": True}).encode()
    request = urllib.request.Request(f"{url}/api/v1/session", data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)["token"]


def test_the_printed_wallboard_link_opens_the_wallboard_and_nothing_else_does(demo):
    link = demo.wallboard
    parts = urlsplit(link)
    assert f"{parts.scheme}://{parts.netloc}" == demo.url
    token = parse_qs(parts.query)["token"][0]
    assert len(token) >= 20
    status, page = get(link)
    assert status == 200 and b"wallboard" in page.lower()
    status, body = get(f"{demo.url}/api/v1/wallboard?token={token}")  # what the page asks, with the link's token
    assert status == 200, body
    assert sorted(q["queue"] for q in json.loads(body)["queues"]) == ["billing", "sales", "support"]
    assert get(f"{demo.url}/api/v1/wallboard")[0] == 401
    assert get(f"{demo.url}/api/v1/wallboard?token={token[:-1]}x")[0] == 401


def test_every_agent_on_the_dashboard_has_a_name(demo):
    token = login(demo.url, "supervisor")
    status, body = get(f"{demo.url}/api/v1/agents", token)
    assert status == 200, body
    agents = json.loads(body)["items"]
    unnamed = [a["agent_id"] for a in agents if not a.get("name")]
    assert not unnamed, f"agents without a name on the dashboard: {unnamed}"
    assert len(agents) >= 10  # a center, not a handful


def test_the_demo_traffic_is_a_center_that_copes(demo):
    """Read the figures near the end of the run, from the interaction log."""
    demo.wait_for(r"screenpop demo is running")
    time.sleep(max(0.0, demo.started + DURATION - 4 - time.monotonic()))
    token = login(demo.url, "supervisor")
    status, body = get(f"{demo.url}/api/v1/queues", token)
    assert status == 200, body
    today = [q["today"] for q in json.loads(body)["items"]]
    offered = sum(t["offered"] for t in today)
    abandoned = sum(t["abandoned"] for t in today)
    over = [(t["service_level"], t["answered"] + t["abandoned"]) for t in today if t["service_level"] is not None]
    service_level = sum(level * n for level, n in over) / sum(n for _, n in over)
    talks = [(t["avg_talk_seconds"], t["answered"]) for t in today if t["avg_talk_seconds"] is not None]
    talk = sum(s * n for s, n in talks) / sum(n for _, n in talks)
    figures = f"offered={offered} abandoned={abandoned} service_level={service_level:.2f} talk={talk:.0f}s"
    assert offered >= 40, figures
    assert abandoned / offered < 0.15, figures
    assert service_level >= 0.75, figures
    assert 60 <= talk <= 600, figures


def test_the_demo_stops_at_its_duration(demo):
    """``--duration`` is when it stops, not when its last call (minutes of
    talk) would have ended."""
    demo.wait_for(r"screenpop demo is running")
    running = next(t for t, line in zip(demo.times, demo.lines) if "screenpop demo is running" in line)
    assert demo.process.wait(DURATION + 60) == 0, demo.text()
    stopped = time.monotonic()
    assert stopped - running < DURATION + 6, f"stopped {stopped - running - DURATION:.1f} s after its duration"
