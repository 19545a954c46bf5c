"""Runs the real bot (KakehashiBot, unmodified) in this process against the local Discord: for the
playground and the end-to-end tests."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

from discord.ext import commands

from bot.client import KakehashiBot
from bot.config import Settings
from playground.clock import FakeClock
from playground.fakediscord import FakeDiscord


class BotRunner:
    """Starts and stops the real bot (KakehashiBot, unmodified) against the fake Discord."""

    def __init__(self, server: FakeDiscord, database_path: Path, clock: FakeClock) -> None:
        self.server = server
        self.database_path = database_path
        self.clock = clock
        self.bot: KakehashiBot | None = None
        self._task: asyncio.Task[None] | None = None

    def settings(self, *, dev_guild_id: int | None = None) -> Settings:
        return Settings(token=self.server.token, database_path=self.database_path,
                        dev_guild_id=dev_guild_id, log_level=logging.INFO)

    async def start(self, *, dev_guild_id: int | None = None,
                    extra_cogs: tuple[type[commands.Cog], ...] = ()) -> KakehashiBot:
        assert self.bot is None, "stop the running bot first"
        bot = KakehashiBot(self.settings(dev_guild_id=dev_guild_id), clock=self.clock)
        for cog in extra_cogs:
            await bot.add_cog(cog(bot))
        identified = self.server.identify_count
        self.bot = bot
        self._task = asyncio.create_task(bot.start(self.server.token))
        await self.server.wait_until(
            lambda: self.server.identify_count > identified or self._task is None or self._task.done(),
            10.0, "the bot to log in",
        )
        if self._task.done():
            self._task.result()  # raise what stopped it
        await self.server.wait_until_ready()
        return bot

    async def stop(self) -> None:
        if self.bot is None:
            return
        await self.bot.close()
        assert self._task is not None
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self.bot = None
        self._task = None

    async def restart(self, **options: object) -> KakehashiBot:
        await self.stop()
        return await self.start(**options)  # type: ignore[arg-type]
