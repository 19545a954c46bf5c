"""Run ``python -m bot`` against the fake Discord, in a process of its own.

Only where discord.py connects changes (from FAKE_DISCORD_REST and
FAKE_DISCORD_GATEWAY); the bot's code and its entry point are the real ones.

    FAKE_DISCORD_REST=http://127.0.0.1:PORT/api/v10 FAKE_DISCORD_GATEWAY=ws://127.0.0.1:PORT/gateway \
        python -m playground.launch [run]
"""

from __future__ import annotations

import os
import sys

import discord.gateway
import discord.http
import yarl

discord.http.Route.BASE = os.environ["FAKE_DISCORD_REST"]
discord.gateway.DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(os.environ["FAKE_DISCORD_GATEWAY"])

from bot.__main__ import main  # noqa: E402  (after pointing discord.py at the fake)

if __name__ == "__main__":   # not when a spawned worker process (the round planner) imports this module again
    sys.exit(main(sys.argv[1:]))
