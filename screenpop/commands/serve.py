"""``screenpop serve``: one node against a real Asterisk (or any AMI server)."""
from __future__ import annotations

import asyncio
import signal
import sys


def register(subparsers) -> None:
    serve = subparsers.add_parser("serve", help="run the service against the Asterisk of --config")
    serve.add_argument("--port", type=int, default=None, help="web port (default: [web] port)")
    serve.set_defaults(func=cmd_serve)


def cmd_serve(args) -> int:
    from dataclasses import replace

    from screenpop.cli import port_in_use_is_one_line, settings_from

    settings = settings_from(args)
    if args.port is not None:
        settings = replace(settings, web=replace(settings.web, port=args.port))
    with port_in_use_is_one_line(settings.web.host, settings.web.port):
        return asyncio.run(_serve(settings))


async def _serve(settings) -> int:
    from screenpop.service import ScreenpopService

    service = ScreenpopService(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        url = await service.start()
        print(f"screenpop serving {url} (AMI {settings.ami.host}:{settings.ami.port})", file=sys.stderr, flush=True)
        await stop.wait()
    finally:
        await service.stop()
    return 0
