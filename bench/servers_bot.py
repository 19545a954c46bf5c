"""The real bot in a process of its own, for bench/servers.py: ``python bench/servers_bot.py SPEC`` (a JSON object:
the fake Discord's ``rest`` and ``gateway`` URLs, the ``env`` the bot reads its settings from, as ``python -m bot``
does, and the clock's ``now``).

discord.py is pointed at the fake Discord as playground/launch.py does, and ``KakehashiBot`` runs unmodified, with
the settings ``load_settings`` makes of ``env`` (DISCORD_TOKEN, DATABASE_PATH or DATABASE_URL, SHARD_COUNT) and a
fake clock at ``now`` (the bench's data is due relative to it). Only what the bot does is watched, from outside:
a line of JSON on stdout once the modules are imported, at READY (an ``on_ready`` listener) and when the outbox's
first pass ends (the outbox's ``run_due``, wrapped on this one instance), each with the time, the process's RSS and
its CPU time; then the bot closes. Imports are kept to what ``python -m bot`` imports, so the start-up is the
bot's.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import resource
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def rss() -> int:
    """This process's resident memory, in bytes."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def tell(event: str, **data: Any) -> None:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"event": event, "at": time.time(), "rss": rss(), "cpu": usage.ru_utime + usage.ru_stime,
                      **data}), flush=True)


def main(spec: dict[str, Any]) -> None:
    import discord.gateway
    import discord.http
    import yarl

    discord.http.Route.BASE = spec["rest"]
    discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(spec["gateway"])

    from bot.client import KakehashiBot
    from bot.config import load_settings
    from playground.clock import FakeClock

    tell("imported")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    async def run() -> None:
        settings = load_settings(spec["env"])
        bot = KakehashiBot(settings, clock=FakeClock(datetime.fromisoformat(spec["now"])))
        finished = asyncio.Event()
        run_due = bot.outbox.run_due

        async def on_ready() -> None:
            tell("ready", guilds=len(bot.guilds), members=sum(len(guild.members) for guild in bot.guilds))

        async def first_pass() -> int:
            ran = await run_due()
            if not finished.is_set():
                tell("pass", ran=ran, settings=len(getattr(bot.guild_config, "_settings", {})))
                finished.set()
            return ran

        bot.add_listener(on_ready, "on_ready")
        bot.outbox.run_due = first_pass   # type: ignore[method-assign]
        running = asyncio.create_task(bot.start(settings.token))
        waiting = asyncio.create_task(finished.wait())
        await asyncio.wait({running, waiting}, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        await bot.close()
        with contextlib.suppress(asyncio.CancelledError):
            await running

    asyncio.run(run())


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
