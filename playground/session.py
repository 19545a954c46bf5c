"""A playground: the local Discord, the community on it and the real bot, in this process, on a clock the
playground moves ("advance one day", "to the next round") so schedules can be seen in minutes."""

from __future__ import annotations

import contextlib
import os
import pickle
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from playground import community
from playground.clock import FakeClock
from playground.community import Community
from playground.fakediscord import FakeDiscord
from playground.runner import BotRunner

# A moment past a slot, so the slot is due when the clock gets there.
PAST_THE_SLOT = timedelta(minutes=1)
# What ``keep`` writes; a file of another version is not read (the playground starts afresh instead).
VERSION = 1


@dataclass(frozen=True)
class Kept:
    """The local Discord's world and the playground's clock, between two runs on one database."""

    version: int
    world: dict[str, Any]
    now: datetime


def keep(path: Path, kept: Kept) -> None:
    """Write ``kept`` whole or not at all. A pickle: the world is the local Discord's own objects, and the file
    is this program's, in the user's own data folder, read back only by it."""
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(pickle.dumps(kept, protocol=pickle.HIGHEST_PROTOCOL))
    os.replace(partial, path)


def load(path: Path, database: Path) -> Kept | None:
    """What ``keep`` wrote, or None: no file (or no ``database`` it goes with), another version, or a file
    that cannot be read."""
    if not database.exists():
        return None
    try:
        kept = pickle.loads(path.read_bytes())   # our own file: see keep
    except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError, ValueError):
        return None
    return kept if isinstance(kept, Kept) and kept.version == VERSION else None


@dataclass
class Playground:
    discord: FakeDiscord
    runner: BotRunner
    clock: FakeClock
    community: Community
    _pointing: contextlib.ExitStack

    kept: Path | None = None

    @classmethod
    async def start(cls, database: Path, *, now: datetime | None = None, kept: Path | None = None) -> Playground:
        """The local Discord on a free port of 127.0.0.1 (discord.py in this process pointed at it) and the bot
        on it; ``database``: the bot's own file. With ``kept`` (a file) holding the world of an earlier run on
        the same database, it goes on from there; else the community is built and configured through the bot
        (and, with ``kept``, the world is kept there when the playground stops)."""
        discord = FakeDiscord()
        await discord.start()
        pointing = contextlib.ExitStack()
        pointing.enter_context(discord.pointed_at())
        earlier = load(kept, database) if kept is not None else None
        if earlier is not None:
            discord.restore(earlier.world)
            people = community.found(discord)
            clock = FakeClock(earlier.now)
        else:
            people = community.build(discord)
            clock = FakeClock(now or datetime.now(UTC))
        runner = BotRunner(discord, database, clock)
        playground = cls(discord, runner, clock, people, pointing, kept)
        try:
            await runner.start()
            if earlier is None:
                await community.configure(discord, people)
        except BaseException:
            playground.kept = None   # half made: nothing worth going on from
            await playground.stop()
            raise
        return playground

    async def stop(self) -> None:
        await self.runner.stop()
        await self.discord.stop()
        self._pointing.close()
        if self.kept is not None:
            keep(self.kept, Kept(VERSION, self.discord.snapshot(), self.clock.now()))

    @property
    def guild_id(self) -> int:
        return self.community.guild.id

    def advance(self, by: timedelta) -> datetime:
        """Move the bot's clock; what fell due meanwhile runs at once."""
        self.clock.advance(by)
        if self.runner.bot is not None:
            self.runner.bot.outbox.kick()
        return self.clock.now()

    async def to_next_prompt(self) -> datetime | None:
        """To just past the next scheduled prompt; None when prompts are off."""
        assert self.runner.bot is not None
        _, _, slot = await self.runner.bot.prompts.schedule(self.guild_id)
        return None if slot is None else self.advance(slot - self.clock.now() + PAST_THE_SLOT)

    async def to_next_round(self) -> datetime | None:
        """To just past the next scheduled match round; None when rounds are off."""
        assert self.runner.bot is not None
        _, _, slot = await self.runner.bot.matching.next_round(self.guild_id)
        return None if slot is None else self.advance(slot - self.clock.now() + PAST_THE_SLOT)
