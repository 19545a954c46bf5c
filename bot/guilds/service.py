"""Changing a server's settings: check the rule, store, audit. One call a command."""

from __future__ import annotations

from bot.clock import Clock
from bot.guilds import rules
from bot.guilds.model import AuditEntry, Change, ChannelKind, GuildSettings, Purpose, Setting
from bot.guilds.store import GuildSettingsStore


class GuildConfig:
    def __init__(self, store: GuildSettingsStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock

    async def settings(self, guild_id: int) -> GuildSettings:
        return await self._store.get(guild_id)

    async def recent_changes(self, guild_id: int, limit: int = 5) -> list[AuditEntry]:
        return await self._store.recent_changes(guild_id, limit)

    async def set_channel(
        self,
        guild_id: int,
        purpose: Purpose,
        channel: tuple[int, ChannelKind, str] | None,
        *,
        actor_id: int,
    ) -> Change:
        """``channel`` is (id, kind, mention), or None to stop using a channel for ``purpose``."""
        channel_id = None
        if channel is not None:
            channel_id, kind, mention = channel
            rules.check_channel_kind(purpose, kind, mention)
        return await self._store.set_channel(
            guild_id, purpose, channel_id, actor_id=actor_id, now=self._clock.now()
        )

    async def set_timezone(self, guild_id: int, name: str, *, actor_id: int) -> Change:
        canonical = rules.parse_timezone(name)
        return await self._store.set_value(
            guild_id, Setting.TIMEZONE, canonical, actor_id=actor_id, now=self._clock.now()
        )

    async def set_language(self, guild_id: int, code: str, *, actor_id: int) -> Change:
        language = rules.parse_language(code)
        return await self._store.set_value(
            guild_id, Setting.LANGUAGE, language, actor_id=actor_id, now=self._clock.now()
        )
