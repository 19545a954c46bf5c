"""The SQL of introductions: profiles, members' progress, settings and company aliases; nothing else runs it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import datetime
from types import MappingProxyType
from typing import Any

from bot.clock import from_text, to_text
from bot.intros.model import (
    Alias,
    IntroSettings,
    MemberRecord,
    MessageRef,
    Profile,
    StoredPresence,
    Visibility,
    WelcomeMode,
)
from bot.shards import EVERY, Shards
from bot.storage import Row, Storage, Transaction

_PROFILE_COLUMNS = """guild_id, user_id, display_name, company, company_key, role, industry, location, timezone,
languages, interests, offer, seek, bio, company_visibility, open_to_intros, active, card_channel_id,
card_message_id, created_at, updated_at"""
SELECT_PROFILE = f"SELECT {_PROFILE_COLUMNS} FROM intro_profiles WHERE guild_id = ? AND user_id = ?"
# One page of a server's active profiles, by user id after the last one read (the primary key's order).
SELECT_ACTIVE_PROFILES = f"""
SELECT {_PROFILE_COLUMNS} FROM intro_profiles WHERE guild_id = ? AND active = 1 AND user_id > ?
ORDER BY user_id LIMIT ?
"""
COUNT_ACTIVE_PROFILES = "SELECT COUNT(*) FROM intro_profiles WHERE guild_id = ? AND active = 1"
SELECT_ACTIVE_IDS = "SELECT user_id FROM intro_profiles WHERE guild_id = ? AND active = 1"
SELECT_PROFILES_SAVED_SINCE = "SELECT user_id FROM intro_profiles WHERE guild_id = ? AND updated_at >= ?"
SELECT_LARGE_SERVERS = """
SELECT guild_id FROM intro_profiles WHERE active = 1{shards} GROUP BY guild_id HAVING COUNT(*) >= ?
ORDER BY COUNT(*) DESC, guild_id
"""
# Rows read and turned into profiles at a time by ``active_profiles``: about 2 ms of each.
PROFILES_PAGE = 200
# Rows gone through between two turns of the event loop by ``presence`` (100,000 are some 50 ms of Python; in a
# thread they would still hold the loop back, each time it waits for the interpreter).
ROWS_AT_ONCE = 5000
UPSERT_PROFILE = """
INSERT INTO intro_profiles (guild_id, user_id, display_name, company, company_key, role, industry, location,
    timezone, languages, interests, offer, seek, bio, company_visibility, open_to_intros, active, created_at,
    updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?)
ON CONFLICT (guild_id, user_id) DO UPDATE SET
    display_name = excluded.display_name, company = excluded.company, company_key = excluded.company_key,
    role = excluded.role, industry = excluded.industry, location = excluded.location,
    timezone = excluded.timezone, languages = excluded.languages, interests = excluded.interests,
    offer = excluded.offer, seek = excluded.seek, bio = excluded.bio,
    company_visibility = excluded.company_visibility, open_to_intros = excluded.open_to_intros,
    active = 1, updated_at = excluded.updated_at
"""
UPDATE_CARD = """
UPDATE intro_profiles SET card_channel_id = ?, card_message_id = ? WHERE guild_id = ? AND user_id = ?
"""
SET_PROFILE_ACTIVE = "UPDATE intro_profiles SET active = ? WHERE guild_id = ? AND user_id = ?"
DELETE_PROFILE = "DELETE FROM intro_profiles WHERE guild_id = ? AND user_id = ?"

_MEMBER_COLUMNS = """guild_id, user_id, joined_at, left_at, introduced_at, intro_channel_id, intro_message_id,
nudged_at, draft, offered_at"""
SELECT_MEMBER = f"SELECT {_MEMBER_COLUMNS} FROM intro_members WHERE guild_id = ? AND user_id = ?"
ENSURE_MEMBER = """
INSERT INTO intro_members (guild_id, user_id) VALUES (?, ?) ON CONFLICT (guild_id, user_id) DO NOTHING
"""
MEMBER_JOINED = "UPDATE intro_members SET joined_at = ?, left_at = NULL WHERE guild_id = ? AND user_id = ?"
MEMBER_LEFT = "UPDATE intro_members SET left_at = ? WHERE guild_id = ? AND user_id = ?"
# Every member the server's data holds, once each: ``here`` when their row is not marked left or their profile
# is active, ``gone`` when their row is marked left (both, when a profile was saved after leaving).
SELECT_PRESENCE = """
SELECT user_id, MAX(here) AS here, MAX(gone) AS gone FROM (
    SELECT user_id, CASE WHEN left_at IS NULL THEN 1 ELSE 0 END AS here,
           CASE WHEN left_at IS NULL THEN 0 ELSE 1 END AS gone
    FROM intro_members WHERE guild_id = ?
    UNION ALL
    SELECT user_id, 1, 0 FROM intro_profiles WHERE guild_id = ? AND active = 1
) AS seen GROUP BY user_id
"""
MARK_INTRODUCED = """
UPDATE intro_members SET introduced_at = ? WHERE guild_id = ? AND user_id = ? AND introduced_at IS NULL
"""
# Only the first message counts: a later one neither moves the link nor gets a reaction.
RECORD_INTRO_MESSAGE = """
UPDATE intro_members SET intro_channel_id = ?, intro_message_id = ?, introduced_at = COALESCE(introduced_at, ?)
WHERE guild_id = ? AND user_id = ? AND intro_message_id IS NULL
"""
OFFER_DRAFT = """
UPDATE intro_members SET draft = ?, offered_at = ? WHERE guild_id = ? AND user_id = ? AND offered_at IS NULL
"""
CLEAR_DRAFT = "UPDATE intro_members SET draft = NULL WHERE guild_id = ? AND user_id = ?"
# Members to nudge: seen joining at least the server's reminder delay ago, still here, not introduced, never
# nudged, no profile.
# Members not introduced in time, across the servers with reminders on after ``days`` days: one query for each
# length the servers chose (a handful), not one for each server.
SELECT_DUE_NUDGES = """
SELECT m.guild_id, m.user_id FROM intro_settings AS s
JOIN intro_members AS m ON m.guild_id = s.guild_id
WHERE s.reminders_enabled = 1 AND s.reminder_days = ?{shards}
  AND m.joined_at IS NOT NULL AND m.joined_at <= ? AND m.left_at IS NULL
  AND m.introduced_at IS NULL AND m.nudged_at IS NULL
  AND NOT EXISTS (SELECT 1 FROM intro_profiles AS p WHERE p.guild_id = m.guild_id AND p.user_id = m.user_id)
ORDER BY m.joined_at LIMIT ?
"""
SELECT_REMINDER_DAYS = "SELECT DISTINCT reminder_days FROM intro_settings AS s WHERE s.reminders_enabled = 1{shards}"
MARK_NUDGED = """
UPDATE intro_members SET nudged_at = ? WHERE guild_id = ? AND user_id = ? AND nudged_at IS NULL
"""
SELECT_LEFT_BEFORE = """
SELECT guild_id, user_id, left_at FROM intro_members WHERE left_at <= ?{shards} ORDER BY left_at LIMIT ?
"""
DELETE_MEMBER = "DELETE FROM intro_members WHERE guild_id = ? AND user_id = ?"
# Saving a profile marks its member introduced, so members' rows alone say who is.
COUNT_INTRODUCED = """
SELECT COUNT(*) FROM intro_members WHERE guild_id = ? AND left_at IS NULL AND introduced_at IS NOT NULL
"""

SELECT_SETTINGS = """
SELECT guild_id, welcome, reminders_enabled, reminder_days FROM intro_settings WHERE guild_id = ?
"""
UPSERT_SETTINGS = """
INSERT INTO intro_settings (guild_id, welcome, reminders_enabled, reminder_days, updated_at) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (guild_id) DO UPDATE SET welcome = excluded.welcome, reminders_enabled = excluded.reminders_enabled,
    reminder_days = excluded.reminder_days, updated_at = excluded.updated_at
"""

SELECT_ALIASES = """
SELECT alias, company, alias_key, company_key FROM company_aliases WHERE guild_id = ? ORDER BY alias_key
"""
UPSERT_ALIAS = """
INSERT INTO company_aliases (guild_id, alias_key, company_key, alias, company, created_at) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (guild_id, alias_key) DO UPDATE SET company_key = excluded.company_key, alias = excluded.alias,
    company = excluded.company
"""
# Aliases that pointed at a name which is now itself an alias follow it, so no chain forms.
REPOINT_ALIASES = """
UPDATE company_aliases SET company_key = ?, company = ? WHERE guild_id = ? AND company_key = ?
"""
DELETE_ALIAS = "DELETE FROM company_aliases WHERE guild_id = ? AND alias_key = ?"


class IntroStore:
    def __init__(self, storage: Storage) -> None:
        self._storage = storage

    @property
    def storage(self) -> Storage:
        return self._storage

    # -- profiles

    async def profile(self, guild_id: int, user_id: int) -> Profile | None:
        row = await self._storage.fetch_one(SELECT_PROFILE, (guild_id, user_id))
        return None if row is None else _profile(row)

    async def active_profiles(self, guild_id: int) -> list[Profile]:
        """Every active profile of the server, by user id. Read a page at a time, each page made into
        profiles before the next is asked for: a server may hold 100,000, which read at once would hold the
        database for a second and the event loop for another while they were made into profiles; this way
        neither waits more than a few milliseconds at a time. (The pages are not one snapshot, as a pool's
        several reads never were one: a profile changed meanwhile is read before or after the change.)"""
        profiles: list[Profile] = []
        after = 0
        while rows := await self._storage.fetch_all(SELECT_ACTIVE_PROFILES, (guild_id, after, PROFILES_PAGE)):
            profiles.extend(_profile(row) for row in rows)
            after = profiles[-1].user_id
            if len(rows) < PROFILES_PAGE:
                break
        return profiles

    async def change_profile(self, guild_id: int, user_id: int, change: Callable[[Profile | None], Profile],
                             now: datetime, *, clear_draft: bool = False) -> Profile:
        """Read the profile, apply ``change`` and write the result (its card stays) in one transaction, so
        two quick changes cannot undo each other; the member counts as introduced from then on."""
        async with self._storage.transaction() as tx:
            row = await tx.fetch_one(SELECT_PROFILE, (guild_id, user_id))
            profile = change(None if row is None else _profile(row))
            await tx.execute(UPSERT_PROFILE, (
                guild_id, user_id, profile.display_name, profile.company, profile.company_key,
                profile.role, profile.industry, profile.location, profile.timezone,
                json.dumps(list(profile.languages)), json.dumps(list(profile.interests), ensure_ascii=False),
                profile.offer, profile.seek, profile.bio, profile.visibility.value, int(profile.open_to_intros),
                to_text(now), to_text(now),
            ))
            await tx.execute(ENSURE_MEMBER, (guild_id, user_id))
            await tx.execute(MARK_INTRODUCED, (to_text(now), guild_id, user_id))
            if clear_draft:
                await tx.execute(CLEAR_DRAFT, (guild_id, user_id))
            row = await tx.fetch_one(SELECT_PROFILE, (guild_id, user_id))
        assert row is not None
        return _profile(row)

    async def set_card(self, guild_id: int, user_id: int, card: MessageRef | None) -> bool:
        """Remember the member's card; False if the profile is gone (erased meanwhile)."""
        async with self._storage.transaction() as tx:
            return await tx.execute(UPDATE_CARD, (None if card is None else card.channel_id,
                                                  None if card is None else card.message_id, guild_id, user_id)) > 0
    # -- members

    async def member(self, guild_id: int, user_id: int) -> MemberRecord | None:
        row = await self._storage.fetch_one(SELECT_MEMBER, (guild_id, user_id))
        return None if row is None else _member(row)

    async def member_joined(self, guild_id: int, user_id: int, now: datetime) -> None:
        async with self._storage.transaction() as tx:
            await tx.execute(ENSURE_MEMBER, (guild_id, user_id))
            await tx.execute(MEMBER_JOINED, (to_text(now), guild_id, user_id))
            await tx.execute(SET_PROFILE_ACTIVE, (1, guild_id, user_id))

    async def member_left(self, guild_id: int, user_id: int, now: datetime) -> None:
        async with self._storage.transaction() as tx:
            await tx.execute(ENSURE_MEMBER, (guild_id, user_id))
            await tx.execute(MEMBER_LEFT, (to_text(now), guild_id, user_id))
            await tx.execute(SET_PROFILE_ACTIVE, (0, guild_id, user_id))

    async def presence(self, guild_id: int) -> StoredPresence:
        """Who the server's data says is there and who left, in one query (a server may hold 100,000)."""
        rows = await self._storage.fetch_all(SELECT_PRESENCE, (guild_id, guild_id))
        present: set[int] = set()
        left: set[int] = set()
        for start in range(0, len(rows), ROWS_AT_ONCE):
            for row in rows[start:start + ROWS_AT_ONCE]:
                if row["here"]:
                    present.add(int(row["user_id"]))
                if row["gone"]:
                    left.add(int(row["user_id"]))
            await asyncio.sleep(0)
        return StoredPresence(present=frozenset(present), left=frozenset(left))

    async def record_intro_message(self, guild_id: int, user_id: int, message: MessageRef, now: datetime) -> bool:
        """Store the member's first message in the introductions channel; False if one was stored before."""
        async with self._storage.transaction() as tx:
            await tx.execute(ENSURE_MEMBER, (guild_id, user_id))
            changed = await tx.execute(RECORD_INTRO_MESSAGE, (message.channel_id, message.message_id,
                                                              to_text(now), guild_id, user_id))
        return changed > 0

    async def offer_draft(self, guild_id: int, user_id: int, draft: dict[str, str], now: datetime) -> bool:
        """Keep what the parser found, for the "Make this my profile" button; False if offered before."""
        async with self._storage.transaction() as tx:
            changed = await tx.execute(OFFER_DRAFT, (json.dumps(draft, ensure_ascii=False), to_text(now),
                                                     guild_id, user_id))
        return changed > 0

    async def reminder_days(self, shards: Shards = EVERY) -> list[int]:
        """The lengths of time (in days) after which the servers of ``shards`` with reminders on nudge."""
        where, params = shards.where("s.guild_id")
        return [int(row[0]) for row in await self._storage.fetch_all(SELECT_REMINDER_DAYS.format(shards=where),
                                                                      params)]

    async def due_nudges(self, days: int, joined_before: datetime, limit: int,
                         shards: Shards = EVERY) -> list[tuple[int, int]]:
        """(server, member) of members who joined before ``joined_before`` and have not introduced themselves,
        in the servers of ``shards`` that nudge after ``days``; the longest waiting first, at most ``limit``."""
        where, params = shards.where("s.guild_id")
        rows = await self._storage.fetch_all(SELECT_DUE_NUDGES.format(shards=where),
                                             (days, *params, to_text(joined_before), limit))
        return [(int(row[0]), int(row[1])) for row in rows]

    @staticmethod
    async def mark_nudged(tx: Transaction, guild_id: int, user_id: int, now: datetime) -> bool:
        return await tx.execute(MARK_NUDGED, (to_text(now), guild_id, user_id)) > 0

    async def left_before(self, moment: datetime, limit: int,
                          shards: Shards = EVERY) -> list[tuple[int, int, datetime]]:
        where, params = shards.where()
        rows = await self._storage.fetch_all(SELECT_LEFT_BEFORE.format(shards=where), (to_text(moment), *params, limit))
        return [(int(r["guild_id"]), int(r["user_id"]), from_text(r["left_at"])) for r in rows]

    async def count_active(self, guild_id: int) -> int:
        row = await self._storage.fetch_one(COUNT_ACTIVE_PROFILES, (guild_id,))
        return int(row[0]) if row else 0

    async def active_ids(self, guild_id: int) -> set[int]:
        """Who has an active profile in the server: their user ids only (100,000 in about 0.1 s)."""
        return {int(row[0]) for row in await self._storage.fetch_all(SELECT_ACTIVE_IDS, (guild_id,))}

    async def saved_since(self, guild_id: int, since: datetime) -> set[int]:
        """Whose profile was saved at ``since`` or after (shown or hidden since is ``active_ids``' to say)."""
        rows = await self._storage.fetch_all(SELECT_PROFILES_SAVED_SINCE, (guild_id, to_text(since)))
        return {int(row[0]) for row in rows}

    async def large_servers(self, at_least: int, shards: Shards = EVERY) -> list[int]:
        """The servers of ``shards`` with at least ``at_least`` active profiles, the largest first."""
        where, params = shards.where()
        rows = await self._storage.fetch_all(SELECT_LARGE_SERVERS.format(shards=where), (*params, at_least))
        return [int(row[0]) for row in rows]

    async def count_introduced(self, guild_id: int) -> int:
        row = await self._storage.fetch_one(COUNT_INTRODUCED, (guild_id,))
        return int(row[0]) if row else 0

    # -- settings

    async def settings(self, guild_id: int) -> IntroSettings:
        row = await self._storage.fetch_one(SELECT_SETTINGS, (guild_id,))
        return IntroSettings(guild_id) if row is None else _settings(row)

    @staticmethod
    async def current_settings(tx: Transaction, guild_id: int) -> IntroSettings:
        row = await tx.fetch_one(SELECT_SETTINGS, (guild_id,))
        return IntroSettings(guild_id) if row is None else _settings(row)

    @staticmethod
    async def write_settings(tx: Transaction, settings: IntroSettings, now: datetime) -> None:
        await tx.execute(UPSERT_SETTINGS, (settings.guild_id, settings.welcome.value,
                                           int(settings.reminders_enabled), settings.reminder_days, to_text(now)))

    # -- company aliases

    async def aliases(self, guild_id: int) -> list[Alias]:
        return [_alias(row) for row in await self._storage.fetch_all(SELECT_ALIASES, (guild_id,))]

    @staticmethod
    async def current_aliases(tx: Transaction, guild_id: int) -> list[Alias]:
        return [_alias(row) for row in await tx.fetch_all(SELECT_ALIASES, (guild_id,))]

    @staticmethod
    async def put_alias(tx: Transaction, guild_id: int, alias: Alias, now: datetime) -> None:
        await tx.execute(UPSERT_ALIAS, (guild_id, alias.alias_key, alias.company_key, alias.alias, alias.company,
                                        to_text(now)))
        await tx.execute(REPOINT_ALIASES, (alias.company_key, alias.company, guild_id, alias.alias_key))

    @staticmethod
    async def remove_alias(tx: Transaction, guild_id: int, alias_key: str) -> bool:
        return await tx.execute(DELETE_ALIAS, (guild_id, alias_key)) > 0

    # -- erasing a member

    @staticmethod
    async def forget(tx: Transaction, guild_id: int, user_id: int) -> MessageRef | None:
        """Delete the member's profile and progress in a server; their card, to delete on Discord."""
        row = await tx.fetch_one(SELECT_PROFILE, (guild_id, user_id))
        card = None if row is None else _profile(row).card
        await tx.execute(DELETE_PROFILE, (guild_id, user_id))
        await tx.execute(DELETE_MEMBER, (guild_id, user_id))
        return card

    @staticmethod
    async def member_rows(tx: Transaction, guild_id: int, user_id: int) -> dict[str, Any]:
        """Everything stored about the member by introductions, as JSON values (for /intro export)."""
        profile = await tx.fetch_one(SELECT_PROFILE, (guild_id, user_id))
        member = await tx.fetch_one(SELECT_MEMBER, (guild_id, user_id))
        return {"profile": None if profile is None else _raw(profile),
                "membership": None if member is None else _raw(member)}


def _raw(row: Row) -> dict[str, Any]:
    data = {key: row[key] for key in row.keys()}  # noqa: SIM118 (sqlite3.Row is not a mapping)
    for key in ("languages", "interests", "draft"):
        if isinstance(data.get(key), str):
            data[key] = json.loads(data[key])
    return data


def _time(value: str | None) -> datetime | None:
    return None if value is None else from_text(value)


def _profile(row: Row) -> Profile:
    card = None
    if row["card_message_id"] is not None:
        card = MessageRef(int(row["card_channel_id"]), int(row["card_message_id"]))
    return Profile(
        guild_id=int(row["guild_id"]),
        user_id=int(row["user_id"]),
        display_name=row["display_name"],
        company=row["company"],
        company_key=row["company_key"],
        role=row["role"],
        industry=row["industry"],
        location=row["location"],
        timezone=row["timezone"],
        languages=tuple(json.loads(row["languages"])),
        interests=tuple(json.loads(row["interests"])),
        offer=row["offer"],
        seek=row["seek"],
        bio=row["bio"],
        visibility=Visibility(row["company_visibility"]),
        open_to_intros=bool(row["open_to_intros"]),
        active=bool(row["active"]),
        card=card,
        created_at=_time(row["created_at"]),
        updated_at=_time(row["updated_at"]),
    )


def _member(row: Row) -> MemberRecord:
    message = None
    if row["intro_message_id"] is not None:
        message = MessageRef(int(row["intro_channel_id"]), int(row["intro_message_id"]))
    return MemberRecord(
        guild_id=int(row["guild_id"]),
        user_id=int(row["user_id"]),
        joined_at=_time(row["joined_at"]),
        left_at=_time(row["left_at"]),
        introduced_at=_time(row["introduced_at"]),
        intro_message=message,
        nudged_at=_time(row["nudged_at"]),
        draft=MappingProxyType(json.loads(row["draft"]) if row["draft"] else {}),
        offered_at=_time(row["offered_at"]),
    )


def _alias(row: Row) -> Alias:
    return Alias(row["alias"], row["company"], row["alias_key"], row["company_key"])


def _settings(row: Row) -> IntroSettings:
    return IntroSettings(
        guild_id=int(row["guild_id"]),
        welcome=WelcomeMode(row["welcome"]),
        reminders_enabled=bool(row["reminders_enabled"]),
        reminder_days=int(row["reminder_days"]),
    )
