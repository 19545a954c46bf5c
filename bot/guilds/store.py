"""The SQL of server settings and their audit trail; nothing else runs it."""

from __future__ import annotations

from datetime import datetime
from types import MappingProxyType

from bot.clock import from_text, to_text
from bot.guilds.model import FORMER_MEMBER, AuditEntry, Change, GuildSettings, Purpose, Setting
from bot.storage import Storage, Transaction

SELECT_SETTINGS = "SELECT language, timezone FROM guild_settings WHERE guild_id = ?"
SELECT_CHANNELS = "SELECT purpose, channel_id FROM guild_channels WHERE guild_id = ?"
ENSURE_SETTINGS = """
INSERT INTO guild_settings (guild_id, updated_at) VALUES (?, ?)
ON CONFLICT (guild_id) DO NOTHING
"""
# One statement a column: column names never come from a variable.
UPDATE_LANGUAGE = "UPDATE guild_settings SET language = ?, updated_at = ? WHERE guild_id = ?"
UPDATE_TIMEZONE = "UPDATE guild_settings SET timezone = ?, updated_at = ? WHERE guild_id = ?"
SELECT_LANGUAGE = "SELECT language FROM guild_settings WHERE guild_id = ?"
SELECT_TIMEZONE = "SELECT timezone FROM guild_settings WHERE guild_id = ?"
SELECT_CHANNEL = "SELECT channel_id FROM guild_channels WHERE guild_id = ? AND purpose = ?"
UPSERT_CHANNEL = """
INSERT INTO guild_channels (guild_id, purpose, channel_id) VALUES (?, ?, ?)
ON CONFLICT (guild_id, purpose) DO UPDATE SET channel_id = excluded.channel_id
"""
DELETE_CHANNEL = "DELETE FROM guild_channels WHERE guild_id = ? AND purpose = ?"
TOUCH_SETTINGS = "UPDATE guild_settings SET updated_at = ? WHERE guild_id = ?"
INSERT_AUDIT = """
INSERT INTO config_audit (guild_id, actor_id, setting, old_value, new_value, changed_at)
VALUES (?, ?, ?, ?, ?, ?)
"""
SELECT_AUDIT = """
SELECT guild_id, actor_id, setting, old_value, new_value, changed_at
FROM config_audit WHERE guild_id = ? ORDER BY changed_at DESC, id DESC LIMIT ?
"""
SELECT_BY_ACTOR = """
SELECT setting, old_value, new_value, changed_at FROM config_audit WHERE guild_id = ? AND actor_id = ? ORDER BY id
"""
# The audit trail keeps what changed and when; an erased member is no longer named as who changed it.
ANONYMISE_ACTOR = "UPDATE config_audit SET actor_id = ? WHERE guild_id = ? AND actor_id = ?"

SELECT_MEMBER_LANGUAGE = "SELECT language FROM member_languages WHERE guild_id = ? AND user_id = ?"
UPSERT_MEMBER_LANGUAGE = """
INSERT INTO member_languages (guild_id, user_id, language, updated_at) VALUES (?, ?, ?, ?)
ON CONFLICT (guild_id, user_id) DO UPDATE SET language = excluded.language, updated_at = excluded.updated_at
WHERE member_languages.language <> excluded.language
"""
DELETE_MEMBER_LANGUAGE = "DELETE FROM member_languages WHERE guild_id = ? AND user_id = ?"

_COLUMNS = {
    Setting.LANGUAGE: (SELECT_LANGUAGE, UPDATE_LANGUAGE),
    Setting.TIMEZONE: (SELECT_TIMEZONE, UPDATE_TIMEZONE),
}


class GuildSettingsStore:
    def __init__(self, storage: Storage) -> None:
        self._storage = storage

    async def get(self, guild_id: int) -> GuildSettings:
        row = await self._storage.fetch_one(SELECT_SETTINGS, (guild_id,))
        channel_rows = await self._storage.fetch_all(SELECT_CHANNELS, (guild_id,))
        known = {purpose.value for purpose in Purpose}
        channels = {Purpose(r["purpose"]): int(r["channel_id"]) for r in channel_rows if r["purpose"] in known}
        return GuildSettings(
            guild_id=guild_id,
            language=row["language"] if row else None,
            timezone=row["timezone"] if row else None,
            channels=MappingProxyType(channels),
        )

    async def set_value(
        self, guild_id: int, setting: Setting, value: str | None, *, actor_id: int, now: datetime
    ) -> Change:
        """Store one setting and, if it changed, who changed it; both or neither."""
        select, update = _COLUMNS[setting]
        async with self._storage.transaction() as tx:
            await tx.execute(ENSURE_SETTINGS, (guild_id, to_text(now)))
            row = await tx.fetch_one(select, (guild_id,))
            change = Change(setting.value, row[0] if row else None, value)
            if change.changed:
                await tx.execute(update, (value, to_text(now), guild_id))
                await record_change(tx, guild_id, actor_id, change, now)
        return change

    async def set_channel(
        self, guild_id: int, purpose: Purpose, channel_id: int | None, *, actor_id: int, now: datetime
    ) -> Change:
        """Point a purpose at a channel (or at none); audited like every change."""
        async with self._storage.transaction() as tx:
            await tx.execute(ENSURE_SETTINGS, (guild_id, to_text(now)))
            row = await tx.fetch_one(SELECT_CHANNEL, (guild_id, purpose.value))
            old = str(row[0]) if row else None
            change = Change(Setting.channel(purpose), old, None if channel_id is None else str(channel_id))
            if change.changed:
                if channel_id is None:
                    await tx.execute(DELETE_CHANNEL, (guild_id, purpose.value))
                else:
                    await tx.execute(UPSERT_CHANNEL, (guild_id, purpose.value, channel_id))
                await tx.execute(TOUCH_SETTINGS, (to_text(now), guild_id))
                await record_change(tx, guild_id, actor_id, change, now)
        return change

    async def recent_changes(self, guild_id: int, limit: int = 5) -> list[AuditEntry]:
        rows = await self._storage.fetch_all(SELECT_AUDIT, (guild_id, limit))
        return [
            AuditEntry(
                guild_id=int(r["guild_id"]),
                actor_id=int(r["actor_id"]),
                setting=r["setting"],
                old=r["old_value"],
                new=r["new_value"],
                changed_at=from_text(r["changed_at"]),
            )
            for r in rows
        ]

    async def member_language(self, guild_id: int, user_id: int) -> str | None:
        async with self._storage.read() as tx:
            return await member_language(tx, guild_id, user_id)

    async def set_member_language(self, guild_id: int, user_id: int, language: str | None, now: datetime) -> None:
        """Remember the member's language (None: forget it; their client's is not one the bot speaks)."""
        async with self._storage.transaction() as tx:
            if language is None:
                await tx.execute(DELETE_MEMBER_LANGUAGE, (guild_id, user_id))
            else:
                await tx.execute(UPSERT_MEMBER_LANGUAGE, (guild_id, user_id, language, to_text(now)))


async def member_language(tx: Transaction, guild_id: int, user_id: int) -> str | None:
    """The language remembered for the member (also for /intro export)."""
    row = await tx.fetch_one(SELECT_MEMBER_LANGUAGE, (guild_id, user_id))
    return None if row is None else str(row[0])


async def record_change(tx: Transaction, guild_id: int, actor_id: int, change: Change, now: datetime) -> None:
    """Audit a change inside the transaction that makes it (other features' settings use it too)."""
    await tx.execute(INSERT_AUDIT, (guild_id, actor_id, change.setting, change.old, change.new, to_text(now)))


async def changes_by(tx: Transaction, guild_id: int, actor_id: int) -> list[dict[str, str | None]]:
    """The setting changes a member made, as JSON values (for /intro export)."""
    rows = await tx.fetch_all(SELECT_BY_ACTOR, (guild_id, actor_id))
    return [{"setting": r["setting"], "old": r["old_value"], "new": r["new_value"], "changed_at": r["changed_at"]}
            for r in rows]


async def forget_actor(tx: Transaction, guild_id: int, actor_id: int) -> None:
    """The member is no longer named on the changes they made, and their language is forgotten."""
    await tx.execute(ANONYMISE_ACTOR, (FORMER_MEMBER, guild_id, actor_id))
    await tx.execute(DELETE_MEMBER_LANGUAGE, (guild_id, actor_id))
