"""A playground: the local Discord, the community on it and the real bot, in this process, on a clock the
playground moves ("advance one day", "to the next round") so schedules can be seen in minutes."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from playground import community
from playground.clock import FakeClock
from playground.community import Community
from playground.fakediscord import FakeDiscord
from playground.runner import BotRunner

# A moment past a slot, so the slot is due when the clock gets there.
PAST_THE_SLOT = timedelta(minutes=1)


@dataclass
class Playground:
    discord: FakeDiscord
    runner: BotRunner
    clock: FakeClock
    community: Community
    _pointing: contextlib.ExitStack

    @classmethod
    async def start(cls, database: Path, *, now: datetime | None = None) -> Playground:
        """The local Discord on a free port of 127.0.0.1 (discord.py in this process pointed at it), the
        community built and configured through the bot; ``database``: the bot's own file."""
        discord = FakeDiscord()
        await discord.start()
        pointing = contextlib.ExitStack()
        pointing.enter_context(discord.pointed_at())
        clock = FakeClock(now or datetime.now(UTC))
        built = community.build(discord)
        runner = BotRunner(discord, database, clock)
        playground = cls(discord, runner, clock, built, pointing)
        try:
            await runner.start()
            await community.configure(discord, built)
        except BaseException:
            await playground.stop()
            raise
        return playground

    async def stop(self) -> None:
        await self.runner.stop()
        await self.discord.stop()
        self._pointing.close()

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
