"""discord.py's gateway connection, sharing the event loop with the bot's other tasks while events pour in.

discord.py reads the events its socket already holds one after another without ever suspending: aiohttp
hands a buffered message over at once, so ``poll_event`` returns without giving other tasks a turn. A
server of 100,000 members sends 100 GUILD_MEMBERS_CHUNKs of 1,000 members after the bot connects; each
takes discord.py 10-20 ms to read into its member cache. Discord paces them (about 10 a second), but
whatever piles up in the socket meanwhile (a slow moment, a resumed session's replay) is read in one go,
and the interactions that came before it (their handlers are tasks, created as each event is read) wait
for all of it: 0.9 s with 100 chunks sent at once (``bench/interactions.py`` on a fake that did not pace
them). Yielding once after each event was not enough: an answer that reads the database a dozen times
waits for a chunk between any two reads.

``Gateway`` therefore rests after each event as long as reading it took, when that was more than ``_BUSY``
(a chunk; not a message or an interaction, which take well under a millisecond): while chunks pour in,
the gateway has at most half the loop, and the other tasks the rest (0.1 s instead of 0.9 s, measured the
same way). Heartbeats are sent by discord.py's own thread, so they never wait.

discord.py makes its connections with the ``DiscordWebSocket`` its ``client`` and ``shard`` modules import
from ``discord.gateway``; ``install()`` points both at ``Gateway`` (the bot calls it when it is made).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, Final

import discord.client
import discord.gateway
import discord.shard

_BUSY: Final = 0.002   # seconds: an event that took longer to read is followed by as long a rest


class Gateway(discord.gateway.DiscordWebSocket):
    async def received_message(self, msg: Any, /) -> None:
        started = time.perf_counter()
        await super().received_message(msg)
        took = time.perf_counter() - started
        await asyncio.sleep(took if took > _BUSY else 0)


def install() -> None:
    discord.client.DiscordWebSocket = Gateway   # type: ignore[misc]
    discord.shard.DiscordWebSocket = Gateway    # type: ignore[misc]
