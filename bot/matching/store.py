"""The SQL of matching: members' choices, avoid lists, requests, settings, rounds and follow-ups."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Mapping
from datetime import datetime
from itertools import combinations
from typing import Any

from bot.clock import from_text, to_text
from bot.matching.delivery import Ended, GroupState, PlannedGroup, Progress, Unreached, Way
from bot.matching.model import (
    Answer,
    AvoidedCompany,
    Cadence,
    GroupRecord,
    LatestRound,
    MatchMember,
    MatchRequest,
    RequestState,
    RoundPlan,
    RoundSettings,
    RoundStats,
    StoredSnapshot,
)
from bot.shards import EVERY, Shards
from bot.storage import Row, Storage, Transaction

_MEMBER_COLUMNS = "guild_id, user_id, joined, paused_until, auto_paused, joined_at"
SELECT_MEMBER = f"SELECT {_MEMBER_COLUMNS} FROM match_members WHERE guild_id = ? AND user_id = ?"
SELECT_MEMBERS = f"SELECT {_MEMBER_COLUMNS} FROM match_members WHERE guild_id = ?"
UPSERT_MEMBER = """
INSERT INTO match_members (guild_id, user_id, joined, paused_until, auto_paused, joined_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (guild_id, user_id) DO UPDATE SET joined = excluded.joined, paused_until = excluded.paused_until,
    auto_paused = excluded.auto_paused, joined_at = excluded.joined_at, updated_at = excluded.updated_at
"""
DELETE_MEMBER = "DELETE FROM match_members WHERE guild_id = ? AND user_id = ?"

SELECT_AVOIDED = """
SELECT company_key, company FROM match_avoid WHERE guild_id = ? AND user_id = ? ORDER BY created_at, company_key
"""
SELECT_AVOID_LISTS = "SELECT user_id, company_key FROM match_avoid WHERE guild_id = ?"
COUNT_AVOIDED = "SELECT COUNT(*) FROM match_avoid WHERE guild_id = ? AND user_id = ?"
INSERT_AVOID = """
INSERT INTO match_avoid (guild_id, user_id, company_key, company, created_at) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (guild_id, user_id, company_key) DO NOTHING
"""
DELETE_AVOID = "DELETE FROM match_avoid WHERE guild_id = ? AND user_id = ? AND company_key = ?"
DELETE_AVOID_ALL = "DELETE FROM match_avoid WHERE guild_id = ? AND user_id = ?"
# An avoid list's change leaves its trace on the member's row (added entries have their own created_at; a removed
# one has none), for a suggestion snapshot loaded later to see (bot/matching/snapshots.py).
TOUCH_MEMBER = """
INSERT INTO match_members (guild_id, user_id, updated_at) VALUES (?, ?, ?)
ON CONFLICT (guild_id, user_id) DO UPDATE SET updated_at = excluded.updated_at
"""
SELECT_CHOICES_CHANGED_SINCE = """
SELECT user_id FROM match_members WHERE guild_id = ? AND updated_at >= ?
UNION SELECT user_id FROM match_avoid WHERE guild_id = ? AND created_at >= ?
"""

SELECT_SNAPSHOT = "SELECT format, as_of, members, aliases FROM suggestion_snapshots WHERE guild_id = ?"
SELECT_SNAPSHOT_DATA = "SELECT data FROM suggestion_snapshots WHERE guild_id = ? AND format = ? AND as_of = ?"
UPSERT_SNAPSHOT = """
INSERT INTO suggestion_snapshots (guild_id, format, as_of, members, aliases, data) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (guild_id) DO UPDATE SET format = excluded.format, as_of = excluded.as_of, members = excluded.members,
    aliases = excluded.aliases, data = excluded.data
"""
DELETE_SNAPSHOT = "DELETE FROM suggestion_snapshots WHERE guild_id = ?"

_REQUEST_COLUMNS = """id, guild_id, requester_id, target_id, note, state, created_at, expires_at, answered_at,
channel_id, message_id, thread_id"""
SELECT_REQUEST = f"SELECT {_REQUEST_COLUMNS} FROM match_requests WHERE id = ?"
SELECT_OPEN_BY = f"""
SELECT {_REQUEST_COLUMNS} FROM match_requests
WHERE guild_id = ? AND requester_id = ? AND state = 'open' AND expires_at > ? ORDER BY id
"""
SELECT_OPEN_BETWEEN = f"""
SELECT {_REQUEST_COLUMNS} FROM match_requests WHERE guild_id = ? AND state = 'open' AND expires_at > ?
  AND ((requester_id = ? AND target_id = ?) OR (requester_id = ? AND target_id = ?))
"""
INSERT_REQUEST = f"""
INSERT INTO match_requests (guild_id, requester_id, target_id, note, state, created_at, expires_at)
VALUES (?, ?, ?, ?, 'open', ?, ?)
RETURNING {_REQUEST_COLUMNS}
"""
SET_REQUEST_DELIVERY = "UPDATE match_requests SET channel_id = ?, message_id = ? WHERE id = ?"
# Where a delivery is being tried, written before the message is sent there: a retry looks in that channel.
SET_REQUEST_CHANNEL = "UPDATE match_requests SET channel_id = ? WHERE id = ? AND message_id IS NULL"
# Only an open request can be answered, once, and only before it expires (even if the expiry job runs late):
# a second click, or an answer racing the expiry, changes nothing.
ANSWER_REQUEST = """
UPDATE match_requests SET state = ?, answered_at = ? WHERE id = ? AND state = 'open' AND expires_at > ?
"""
EXPIRE_REQUEST = "UPDATE match_requests SET state = 'expired', answered_at = ? WHERE id = ? AND state = 'open'"
# The open requests a member made that were delivered: their card is in those messages.
SELECT_DELIVERED_BY = """
SELECT channel_id, message_id FROM match_requests
WHERE guild_id = ? AND requester_id = ? AND state = 'open' AND message_id IS NOT NULL
"""
DELETE_REQUEST = "DELETE FROM match_requests WHERE id = ?"
SET_REQUEST_THREAD = "UPDATE match_requests SET thread_id = ? WHERE id = ?"
SELECT_ACCEPTED_PAIRS = """
SELECT requester_id, target_id FROM match_requests WHERE guild_id = ? AND state = 'accepted'
"""
SELECT_DECLINED_PAIRS = """
SELECT requester_id, target_id FROM match_requests WHERE guild_id = ? AND state = 'declined' AND answered_at >= ?
"""
SELECT_MEMBER_REQUESTS = f"""
SELECT {_REQUEST_COLUMNS} FROM match_requests WHERE guild_id = ? AND (requester_id = ? OR target_id = ?) ORDER BY id
"""
DELETE_MEMBER_REQUESTS = "DELETE FROM match_requests WHERE guild_id = ? AND (requester_id = ? OR target_id = ?)"

_SETTINGS_COLUMNS = "guild_id, enabled, cadence, weekday, at, no_repeat_rounds, follow_up_days, last_slot"
SELECT_SETTINGS = f"SELECT {_SETTINGS_COLUMNS} FROM match_settings WHERE guild_id = ?"
SELECT_SCHEDULED = f"SELECT {_SETTINGS_COLUMNS} FROM match_settings WHERE enabled = 1{{shards}}"
UPSERT_SETTINGS = """
INSERT INTO match_settings (guild_id, enabled, cadence, weekday, at, no_repeat_rounds, follow_up_days, last_slot,
    updated_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (guild_id) DO UPDATE SET enabled = excluded.enabled, cadence = excluded.cadence,
    weekday = excluded.weekday, at = excluded.at, no_repeat_rounds = excluded.no_repeat_rounds,
    follow_up_days = excluded.follow_up_days, last_slot = excluded.last_slot, updated_at = excluded.updated_at
"""

# Nothing when the slot has its round already, nor when another round follows the same previous one
# (UNIQUE (guild_id, previous_round_id), migration 0007: it was planned without seeing this one).
INSERT_ROUND = """
INSERT INTO match_rounds (guild_id, slot, created_at, members, total, bound, previous_round_id)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT DO NOTHING
RETURNING id
"""
SELECT_LATEST_ROUND = "SELECT id, created_at FROM match_rounds WHERE guild_id = ? ORDER BY id DESC LIMIT 1"
INSERT_GROUP = "INSERT INTO match_groups (round_id, guild_id, score) VALUES (?, ?, ?)"
SELECT_ROUND_GROUP_IDS = "SELECT id FROM match_groups WHERE round_id = ? ORDER BY id"
INSERT_GROUP_MEMBER = """
INSERT INTO match_group_members (group_id, guild_id, user_id, company_key, position) VALUES (?, ?, ?, ?, ?)
"""
_GROUP_COLUMNS = """g.id, g.round_id, g.guild_id, g.score, g.channel_id, g.thread_id, g.followed_up_at, g.way,
g.state, g.ended"""
SELECT_GROUP = f"SELECT {_GROUP_COLUMNS} FROM match_groups AS g WHERE g.id = ?"
SELECT_GROUP_MEMBERS = """
SELECT user_id, reached, unreached FROM match_group_members WHERE group_id = ? ORDER BY position
"""
SET_GROUP_CHANNEL = "UPDATE match_groups SET channel_id = ? WHERE id = ? AND channel_id IS NULL"
SET_GROUP_THREAD = "UPDATE match_groups SET thread_id = ? WHERE id = ?"
MARK_FOLLOWED_UP = "UPDATE match_groups SET followed_up_at = ? WHERE id = ? AND followed_up_at IS NULL"
ANSWER_GROUP = """
UPDATE match_group_members SET answer = ?, answered_at = ? WHERE group_id = ? AND user_id = ?
"""
# Pairs grouped together in the server's last N rounds, each once (a group of three gives three pairs); a
# group that was never introduced (cancelled) brought nobody together, and a member who was not reached met
# nobody through it.
SELECT_RECENT_PAIRS = """
SELECT a.user_id, b.user_id FROM match_groups AS g
JOIN match_group_members AS a ON a.group_id = g.id
JOIN match_group_members AS b ON b.group_id = g.id AND b.user_id > a.user_id
WHERE g.round_id IN (SELECT id FROM match_rounds WHERE guild_id = ? ORDER BY slot DESC, id DESC LIMIT ?)
  AND g.state <> 'cancelled' AND a.unreached IS NULL AND b.unreached IS NULL
"""
# The same, for some members only (a list of ? filled in with _listed).
SELECT_RECENT_PAIRS_OF = """
SELECT a.user_id, b.user_id FROM match_group_members AS a
JOIN match_groups AS g ON g.id = a.group_id
JOIN match_group_members AS b ON b.group_id = a.group_id AND b.user_id <> a.user_id
WHERE a.guild_id = ? AND a.user_id IN ({}) AND a.unreached IS NULL AND b.unreached IS NULL
  AND g.state <> 'cancelled'
  AND g.round_id IN (SELECT id FROM match_rounds WHERE guild_id = ? ORDER BY slot DESC, id DESC LIMIT ?)
"""
# The same two for some members only: their requests either way, each half by its own index.
SELECT_ACCEPTED_PAIRS_OF = """
SELECT requester_id, target_id FROM match_requests WHERE guild_id = ? AND requester_id IN ({0}) AND state = 'accepted'
UNION
SELECT requester_id, target_id FROM match_requests WHERE guild_id = ? AND target_id IN ({0}) AND state = 'accepted'
"""
SELECT_DECLINED_PAIRS_OF = """
SELECT requester_id, target_id FROM match_requests
WHERE guild_id = ? AND requester_id IN ({0}) AND state = 'declined' AND answered_at >= ?
UNION
SELECT requester_id, target_id FROM match_requests
WHERE guild_id = ? AND target_id IN ({0}) AND state = 'declined' AND answered_at >= ?
"""
# Each member's answers to the follow-ups posted to them, newest first.
SELECT_FOLLOW_UP_ANSWERS = """
SELECT gm.user_id, gm.answer, g.followed_up_at FROM match_group_members AS gm
JOIN match_groups AS g ON g.id = gm.group_id
WHERE gm.guild_id = ? AND g.followed_up_at IS NOT NULL
ORDER BY gm.user_id, g.followed_up_at DESC, g.id DESC
"""
COUNT_ROUNDS = "SELECT COUNT(*) FROM match_rounds WHERE guild_id = ?"
COUNT_GROUPS = "SELECT COUNT(*) FROM match_groups WHERE guild_id = ? AND state = 'delivered'"
# A meeting: a group one of whose members answered "We met" to its follow-up, the erased ones included.
COUNT_MEETINGS = """
SELECT COUNT(*) FROM match_groups AS g WHERE g.guild_id = ?
  AND (g.met_kept = 1
       OR EXISTS (SELECT 1 FROM match_group_members AS gm WHERE gm.group_id = g.id AND gm.answer = 'met'))
"""
SELECT_KEPT_BRIDGES = "SELECT pair FROM match_bridges WHERE guild_id = ?"
SELECT_GROUP_COMPANIES = """
SELECT gm.group_id, gm.company_key FROM match_group_members AS gm JOIN match_groups AS g ON g.id = gm.group_id
WHERE gm.guild_id = ? AND g.state = 'delivered' AND gm.unreached IS NULL ORDER BY gm.group_id
"""
SELECT_MEMBER_GROUPS = """
SELECT gm.group_id, g.round_id, g.thread_id, gm.company_key, gm.answer, gm.answered_at
FROM match_group_members AS gm JOIN match_groups AS g ON g.id = gm.group_id
WHERE gm.guild_id = ? AND gm.user_id = ? ORDER BY gm.group_id
"""
DELETE_MEMBER_GROUPS = "DELETE FROM match_group_members WHERE guild_id = ? AND user_id = ?"
# Before a member's rows go: their "We met" and the company pairs their delivered groups bridged.
KEEP_MET = """
UPDATE match_groups SET met_kept = 1
WHERE id IN (SELECT group_id FROM match_group_members WHERE guild_id = ? AND user_id = ? AND answer = 'met')
"""
SELECT_BRIDGED_BY = """
SELECT mine.company_key, other.company_key FROM match_group_members AS mine
JOIN match_groups AS g ON g.id = mine.group_id
JOIN match_group_members AS other ON other.group_id = mine.group_id AND other.user_id <> mine.user_id
WHERE mine.guild_id = ? AND mine.user_id = ? AND g.state = 'delivered'
  AND mine.unreached IS NULL AND other.unreached IS NULL AND other.company_key <> mine.company_key
"""
KEEP_BRIDGE = "INSERT INTO match_bridges (guild_id, pair) VALUES (?, ?) ON CONFLICT DO NOTHING"
COUNT_UNANSWERED = """
SELECT COUNT(*) FROM match_group_members WHERE group_id = ? AND answer IS NULL AND unreached IS NULL
"""

# -- delivery (bot/matching/delivery.py)
# Every planned group, also one whose members were all erased (no rows): it is cancelled, not forgotten.
SELECT_PLANNED_GROUPS = """
SELECT g.id, gm.user_id FROM match_groups AS g
LEFT JOIN match_group_members AS gm ON gm.group_id = g.id AND gm.unreached IS NULL
WHERE g.round_id = ? AND g.state = 'planned' ORDER BY g.id, gm.position
"""
# Delivery begins once per round: whoever sets delivery_started_at chose the ways.
START_DELIVERY = """
UPDATE match_rounds SET thread_room = ?, spare_threads = ?, delivery_started_at = ?
WHERE id = ? AND delivery_started_at IS NULL
"""
SELECT_SPARE_THREADS = "SELECT spare_threads FROM match_rounds WHERE id = ?"
SET_GROUP_WAY = "UPDATE match_groups SET way = ? WHERE id = ? AND state = 'planned'"
# The round may start no more threads: its groups still waiting for one go by DM.
THREADS_EXHAUSTED = """
UPDATE match_groups SET way = 'dm' WHERE round_id = ? AND state = 'planned' AND way = 'thread' AND thread_id IS NULL
"""
NO_SPARE_THREADS = "UPDATE match_rounds SET spare_threads = 0 WHERE id = ?"
TAKE_SPARE_THREAD = "UPDATE match_rounds SET spare_threads = spare_threads - 1 WHERE id = ? AND spare_threads > 0"
CANCEL_GROUP = "UPDATE match_groups SET state = 'cancelled', ended = ? WHERE id = ? AND state = 'planned'"
DELIVER_GROUP = """
UPDATE match_groups SET state = 'delivered', way = ?, delivered_at = ? WHERE id = ? AND state = 'planned'
"""
# The member moved joins the end of their new group.
MOVE_GROUP_MEMBER = """
INSERT INTO match_group_members (group_id, guild_id, user_id, company_key, position)
SELECT ?, guild_id, user_id, company_key,
       (SELECT COALESCE(MAX(position), 0) + 1 FROM match_group_members WHERE group_id = ?)
FROM match_group_members WHERE group_id = ? AND user_id = ?
ON CONFLICT (group_id, user_id) DO NOTHING
"""
# Moved to another group of the round: not counted as met through the group they were planned in.
MARK_MOVED = "DELETE FROM match_group_members WHERE group_id = ? AND user_id = ?"
MARK_REACHED = "UPDATE match_group_members SET reached = ?, unreached = NULL WHERE group_id = ? AND user_id = ?"
MARK_UNREACHED = "UPDATE match_group_members SET unreached = ? WHERE group_id = ? AND user_id = ? AND reached IS NULL"
FINISH_ROUND = """
UPDATE match_rounds SET delivered_at = ? WHERE id = ? AND delivered_at IS NULL AND delivery_started_at IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM match_groups AS g WHERE g.round_id = match_rounds.id AND g.state = 'planned')
"""
COUNT_GROUP_STATES = "SELECT state, way, COUNT(*) FROM match_groups WHERE round_id = ? GROUP BY state, way"
COUNT_UNREACHED = """
SELECT gm.unreached, COUNT(*) FROM match_group_members AS gm JOIN match_groups AS g ON g.id = gm.group_id
WHERE g.round_id = ? AND gm.unreached IS NOT NULL GROUP BY gm.unreached
"""
# Only for a member matching knows (one erased meanwhile is not brought back by a refused DM).
SET_DMS_CLOSED = "UPDATE match_members SET dms_closed_at = ? WHERE guild_id = ? AND user_id = ?"
CLEAR_DMS_CLOSED = """
UPDATE match_members SET dms_closed_at = NULL WHERE guild_id = ? AND user_id = ? AND dms_closed_at IS NOT NULL
"""
SELECT_DMS_CLOSED = "SELECT user_id FROM match_members WHERE guild_id = ? AND dms_closed_at IS NOT NULL"


class MatchStore:
    def __init__(self, storage: Storage) -> None:
        self._storage = storage

    @property
    def storage(self) -> Storage:
        return self._storage

    # -- members' choices

    async def member(self, guild_id: int, user_id: int) -> MatchMember:
        row = await self._storage.fetch_one(SELECT_MEMBER, (guild_id, user_id))
        return MatchMember(guild_id, user_id) if row is None else _member(row)

    async def members(self, guild_id: int) -> dict[int, MatchMember]:
        return {row["user_id"]: _member(row) for row in await self._storage.fetch_all(SELECT_MEMBERS, (guild_id,))}

    @staticmethod
    async def current_member(tx: Transaction, guild_id: int, user_id: int) -> MatchMember:
        row = await tx.fetch_one(SELECT_MEMBER, (guild_id, user_id))
        return MatchMember(guild_id, user_id) if row is None else _member(row)

    @staticmethod
    async def write_member(tx: Transaction, member: MatchMember, now: datetime) -> None:
        await tx.execute(UPSERT_MEMBER, (member.guild_id, member.user_id, int(member.joined),
                                         None if member.paused_until is None else to_text(member.paused_until),
                                         int(member.auto_paused),
                                         None if member.joined_at is None else to_text(member.joined_at),
                                         to_text(now)))

    # -- avoid lists

    async def avoided(self, guild_id: int, user_id: int) -> list[AvoidedCompany]:
        async with self._storage.read() as tx:
            return await MatchStore.current_avoided(tx, guild_id, user_id)

    @staticmethod
    async def current_avoided(tx: Transaction, guild_id: int, user_id: int) -> list[AvoidedCompany]:
        rows = await tx.fetch_all(SELECT_AVOIDED, (guild_id, user_id))
        return [AvoidedCompany(row["company_key"], row["company"]) for row in rows]

    async def avoid_lists(self, guild_id: int) -> dict[int, set[str]]:
        lists: dict[int, set[str]] = {}
        for row in await self._storage.fetch_all(SELECT_AVOID_LISTS, (guild_id,)):
            lists.setdefault(row["user_id"], set()).add(row["company_key"])
        return lists

    @staticmethod
    async def count_avoided(tx: Transaction, guild_id: int, user_id: int) -> int:
        row = await tx.fetch_one(COUNT_AVOIDED, (guild_id, user_id))
        return 0 if row is None else int(row[0])

    @staticmethod
    async def add_avoided(tx: Transaction, guild_id: int, user_id: int, company: AvoidedCompany,
                          now: datetime) -> bool:
        return await tx.execute(INSERT_AVOID, (guild_id, user_id, company.company_key, company.company,
                                               to_text(now))) > 0

    @staticmethod
    async def remove_avoided(tx: Transaction, guild_id: int, user_id: int, company_keys: Collection[str],
                             now: datetime) -> None:
        await tx.execute_many(DELETE_AVOID, ((guild_id, user_id, key) for key in company_keys))
        await tx.execute(TOUCH_MEMBER, (guild_id, user_id, to_text(now)))

    async def choices_changed_since(self, guild_id: int, since: datetime) -> set[int]:
        """Who changed their part in rounds, a pause or their avoid list at ``since`` or after."""
        rows = await self._storage.fetch_all(SELECT_CHOICES_CHANGED_SINCE,
                                             (guild_id, to_text(since), guild_id, to_text(since)))
        return {int(row[0]) for row in rows}

    # -- suggestion snapshots (bot/matching/snapshots.py)

    async def snapshot(self, guild_id: int) -> StoredSnapshot | None:
        """What is said of the server's stored index (not its bytes: ``snapshot_data``); None when none is."""
        row = await self._storage.fetch_one(SELECT_SNAPSHOT, (guild_id,))
        if row is None:
            return None
        return StoredSnapshot(row["format"], from_text(row["as_of"]), row["members"], json.loads(row["aliases"]))

    async def snapshot_data(self, guild_id: int, snapshot: StoredSnapshot) -> bytes | None:
        """The bytes of ``snapshot``; None when another has taken its place since, or none is stored."""
        row = await self._storage.fetch_one(SELECT_SNAPSHOT_DATA, (guild_id, snapshot.format,
                                                                   to_text(snapshot.as_of)))
        return None if row is None else bytes(row["data"])

    async def save_snapshot(self, guild_id: int, snapshot: StoredSnapshot, data: bytes) -> None:
        aliases = json.dumps(dict(snapshot.aliases), ensure_ascii=False, sort_keys=True)
        async with self._storage.transaction() as tx:
            await tx.execute(UPSERT_SNAPSHOT, (guild_id, snapshot.format, to_text(snapshot.as_of), snapshot.members,
                                               aliases, data))

    async def delete_snapshot(self, guild_id: int) -> None:
        async with self._storage.transaction() as tx:
            await tx.execute(DELETE_SNAPSHOT, (guild_id,))

    # -- requests

    async def request(self, request_id: int) -> MatchRequest | None:
        row = await self._storage.fetch_one(SELECT_REQUEST, (request_id,))
        return None if row is None else _request(row)

    @staticmethod
    async def request_in(tx: Transaction, request_id: int) -> MatchRequest | None:
        row = await tx.fetch_one(SELECT_REQUEST, (request_id,))
        return None if row is None else _request(row)

    @staticmethod
    async def open_requests_by(tx: Transaction, guild_id: int, requester_id: int,
                               now: datetime) -> list[MatchRequest]:
        rows = await tx.fetch_all(SELECT_OPEN_BY, (guild_id, requester_id, to_text(now)))
        return [_request(row) for row in rows]

    @staticmethod
    async def open_between(tx: Transaction, guild_id: int, a: int, b: int, now: datetime) -> MatchRequest | None:
        row = await tx.fetch_one(SELECT_OPEN_BETWEEN, (guild_id, to_text(now), a, b, b, a))
        return None if row is None else _request(row)

    @staticmethod
    async def add_request(tx: Transaction, guild_id: int, requester_id: int, target_id: int, note: str,
                          now: datetime, expires_at: datetime) -> MatchRequest:
        created = await tx.fetch_one(INSERT_REQUEST, (guild_id, requester_id, target_id, note, to_text(now),
                                                      to_text(expires_at)))
        assert created is not None
        return _request(created)

    async def set_delivery(self, request_id: int, channel_id: int, message_id: int) -> None:
        async with self._storage.transaction() as tx:
            await tx.execute(SET_REQUEST_DELIVERY, (channel_id, message_id, request_id))

    async def set_delivery_channel(self, request_id: int, channel_id: int) -> bool:
        """Record where the request is about to be sent (not once it was delivered); whether it was."""
        async with self._storage.transaction() as tx:
            return await tx.execute(SET_REQUEST_CHANNEL, (channel_id, request_id)) > 0

    @staticmethod
    async def answer_request(tx: Transaction, request_id: int, state: RequestState, now: datetime) -> bool:
        return await tx.execute(ANSWER_REQUEST, (state.value, to_text(now), request_id, to_text(now))) > 0

    @staticmethod
    async def expire_request(tx: Transaction, request_id: int, now: datetime) -> bool:
        return await tx.execute(EXPIRE_REQUEST, (to_text(now), request_id)) > 0

    async def delete_request(self, request_id: int) -> None:
        async with self._storage.transaction() as tx:
            await tx.execute(DELETE_REQUEST, (request_id,))

    async def set_request_thread(self, request_id: int, thread_id: int) -> None:
        async with self._storage.transaction() as tx:
            await tx.execute(SET_REQUEST_THREAD, (thread_id, request_id))

    async def accepted_pairs(self, guild_id: int, only: Collection[int] | None = None) -> list[tuple[int, int]]:
        """Pairs brought together by an accepted request (``only``: those with one of these members)."""
        if only is None:
            rows = await self._storage.fetch_all(SELECT_ACCEPTED_PAIRS, (guild_id,))
        elif not only:
            return []
        else:
            rows = await self._storage.fetch_all(SELECT_ACCEPTED_PAIRS_OF.format(_listed(only)),
                                                 (guild_id, *only, guild_id, *only))
        return [(row[0], row[1]) for row in rows]

    async def declined_pairs(self, guild_id: int, since: datetime,
                             only: Collection[int] | None = None) -> list[tuple[int, int]]:
        """Pairs where one declined the other's request since ``since`` (``only``: as for accepted_pairs)."""
        if only is None:
            rows = await self._storage.fetch_all(SELECT_DECLINED_PAIRS, (guild_id, to_text(since)))
        elif not only:
            return []
        else:
            rows = await self._storage.fetch_all(SELECT_DECLINED_PAIRS_OF.format(_listed(only)),
                                                 (guild_id, *only, to_text(since), guild_id, *only, to_text(since)))
        return [(row[0], row[1]) for row in rows]

    # -- settings

    async def settings(self, guild_id: int) -> RoundSettings:
        row = await self._storage.fetch_one(SELECT_SETTINGS, (guild_id,))
        return RoundSettings(guild_id) if row is None else _settings(row)

    @staticmethod
    async def current_settings(tx: Transaction, guild_id: int) -> RoundSettings:
        row = await tx.fetch_one(SELECT_SETTINGS, (guild_id,))
        return RoundSettings(guild_id) if row is None else _settings(row)

    async def scheduled(self, shards: Shards = EVERY) -> list[RoundSettings]:
        """The round schedules switched on, of the servers of ``shards``."""
        where, params = shards.where()
        return [_settings(row) for row in await self._storage.fetch_all(SELECT_SCHEDULED.format(shards=where), params)]

    @staticmethod
    async def write_settings(tx: Transaction, settings: RoundSettings, now: datetime) -> None:
        await tx.execute(UPSERT_SETTINGS, (
            settings.guild_id, int(settings.enabled), settings.cadence.value, settings.weekday, settings.time,
            settings.no_repeat_rounds, settings.follow_up_days,
            None if settings.last_slot is None else to_text(settings.last_slot), to_text(now)))

    # -- rounds

    async def latest_round(self, guild_id: int) -> LatestRound | None:
        row = await self._storage.fetch_one(SELECT_LATEST_ROUND, (guild_id,))
        return None if row is None else LatestRound(int(row["id"]), from_text(row["created_at"]))

    @staticmethod
    async def save_round(tx: Transaction, guild_id: int, slot: datetime, now: datetime, members: int,
                         plan: RoundPlan, companies: Mapping[int, str], *,
                         previous_round_id: int) -> tuple[int, list[int]] | None:
        """Store a round and its groups; None if the slot already has its round (the work was done), or if
        a round after ``previous_round_id`` (the latest the plan saw; 0: none) was stored meanwhile: the
        plan did not know who that round brought together, so it is dropped rather than stored."""
        row = await tx.fetch_one(INSERT_ROUND, (guild_id, to_text(slot), to_text(now), members, plan.total,
                                                plan.bound, previous_round_id))
        if row is None:   # nothing inserted: a conflict
            return None
        round_id = int(row[0])
        await tx.execute_many(INSERT_GROUP, ((round_id, guild_id, group.score) for group in plan.groups))
        # The groups' ids, in the order they were inserted (ids grow: this transaction holds the only writer).
        group_ids = [int(row[0]) for row in await tx.fetch_all(SELECT_ROUND_GROUP_IDS, (round_id,))]
        await tx.execute_many(INSERT_GROUP_MEMBER, (
            (group_id, guild_id, user_id, companies[user_id], position)
            for group_id, group in zip(group_ids, plan.groups, strict=True)
            for position, user_id in enumerate(group.members, start=1)))
        return round_id, group_ids

    async def group(self, group_id: int) -> GroupRecord | None:
        async with self._storage.transaction() as tx:
            row = await tx.fetch_one(SELECT_GROUP, (group_id,))
            if row is None:
                return None
            members = await tx.fetch_all(SELECT_GROUP_MEMBERS, (group_id,))
        return _group(row, members)

    # -- delivery

    @staticmethod
    async def planned_groups(tx: Transaction, round_id: int) -> list[PlannedGroup]:
        """The round's groups not introduced yet, with the members still to reach, in the round's order."""
        found: dict[int, list[int]] = {}
        for row in await tx.fetch_all(SELECT_PLANNED_GROUPS, (round_id,)):
            members = found.setdefault(row[0], [])
            if row[1] is not None:
                members.append(row[1])
        return [PlannedGroup(group_id, tuple(members)) for group_id, members in found.items()]

    @staticmethod
    async def start_delivery(tx: Transaction, round_id: int, room: int, spare: int, now: datetime) -> bool:
        """Record the room the round's delivery began with; False when it had begun already."""
        return await tx.execute(START_DELIVERY, (room, spare, to_text(now), round_id)) > 0

    async def spare_threads(self, round_id: int) -> int:
        """Threads the round may still start beyond the groups given one (0 for a round not found)."""
        row = await self._storage.fetch_one(SELECT_SPARE_THREADS, (round_id,))
        return 0 if row is None else int(row[0])

    @staticmethod
    async def set_way(tx: Transaction, group_id: int, way: Way) -> None:
        await tx.execute(SET_GROUP_WAY, (way.value, group_id))

    @staticmethod
    async def set_ways(tx: Transaction, ways: Mapping[int, Way]) -> None:
        """``set_way`` for many groups, in one call."""
        await tx.execute_many(SET_GROUP_WAY, ((way.value, group_id) for group_id, way in ways.items()))

    @staticmethod
    async def cancel_group(tx: Transaction, group_id: int, ended: Ended) -> bool:
        return await tx.execute(CANCEL_GROUP, (ended.value, group_id)) > 0

    @staticmethod
    async def move_member(tx: Transaction, user_id: int, from_group: int, to_group: int) -> None:
        await tx.execute(MOVE_GROUP_MEMBER, (to_group, to_group, from_group, user_id))
        await tx.execute(MARK_MOVED, (from_group, user_id))

    @staticmethod
    async def mark_unreached(tx: Transaction, group_id: int, user_id: int, why: Unreached) -> None:
        await tx.execute(MARK_UNREACHED, (why.value, group_id, user_id))

    async def reached(self, group_id: int, user_id: int, way: Way) -> None:
        async with self._storage.transaction() as tx:
            await tx.execute(MARK_REACHED, (way.value, group_id, user_id))

    async def unreached(self, group_id: int, user_id: int, why: Unreached) -> None:
        async with self._storage.transaction() as tx:
            await self.mark_unreached(tx, group_id, user_id, why)

    async def threads_exhausted(self, round_id: int) -> int:
        """No more threads in this round: every group still waiting for one goes by DM. How many did."""
        async with self._storage.transaction() as tx:
            await tx.execute(NO_SPARE_THREADS, (round_id,))
            return await tx.execute(THREADS_EXHAUSTED, (round_id,))

    async def take_spare_thread(self, round_id: int) -> bool:
        async with self._storage.transaction() as tx:
            return await tx.execute(TAKE_SPARE_THREAD, (round_id,)) > 0

    async def set_group_way(self, group_id: int, way: Way) -> None:
        async with self._storage.transaction() as tx:
            await self.set_way(tx, group_id, way)

    @staticmethod
    async def deliver_group(tx: Transaction, group_id: int, way: Way, now: datetime) -> bool:
        return await tx.execute(DELIVER_GROUP, (way.value, to_text(now), group_id)) > 0

    @staticmethod
    async def finish_round(tx: Transaction, round_id: int, now: datetime) -> bool:
        """Mark the round delivered once its last group is done; True only for the call that did."""
        return await tx.execute(FINISH_ROUND, (to_text(now), round_id)) > 0

    async def progress(self, round_id: int) -> Progress:
        async with self._storage.transaction() as tx:
            states = await tx.fetch_all(COUNT_GROUP_STATES, (round_id,))
            unreached = await tx.fetch_all(COUNT_UNREACHED, (round_id,))
        counts: dict[tuple[str, str | None], int] = {(row[0], row[1]): int(row[2]) for row in states}
        delivered = GroupState.DELIVERED.value
        return Progress(
            round_id=round_id, groups=sum(counts.values()),
            in_threads=counts.get((delivered, Way.THREAD.value), 0), by_dm=counts.get((delivered, Way.DM.value), 0),
            cancelled=sum(n for (state, _), n in counts.items() if state == GroupState.CANCELLED.value),
            unreached={row[0]: int(row[1]) for row in unreached})

    async def dms_closed(self, guild_id: int) -> set[int]:
        return {row[0] for row in await self._storage.fetch_all(SELECT_DMS_CLOSED, (guild_id,))}

    async def set_dms_closed(self, guild_id: int, user_id: int, now: datetime | None) -> None:
        """Record that a DM to the member was refused (``now``), or that one went through (None)."""
        async with self._storage.transaction() as tx:
            if now is None:
                await tx.execute(CLEAR_DMS_CLOSED, (guild_id, user_id))
            else:
                await tx.execute(SET_DMS_CLOSED, (to_text(now), guild_id, user_id))

    async def set_group_channel(self, group_id: int, channel_id: int) -> None:
        """Remember where the group's thread is being started, before it is: a retry looks there."""
        async with self._storage.transaction() as tx:
            await tx.execute(SET_GROUP_CHANNEL, (channel_id, group_id))

    async def set_group_thread(self, group_id: int, thread_id: int) -> None:
        async with self._storage.transaction() as tx:
            await tx.execute(SET_GROUP_THREAD, (thread_id, group_id))

    async def mark_followed_up(self, group_id: int, now: datetime) -> bool:
        async with self._storage.transaction() as tx:
            return await tx.execute(MARK_FOLLOWED_UP, (to_text(now), group_id)) > 0

    async def answer(self, group_id: int, user_id: int, answer: Answer, now: datetime) -> bool:
        """False when the member is not in the group."""
        async with self._storage.transaction() as tx:
            return await tx.execute(ANSWER_GROUP, (answer.value, to_text(now), group_id, user_id)) > 0

    async def everyone_answered(self, group_id: int) -> bool:
        """Whether every member the group reached answered its follow-up."""
        row = await self._storage.fetch_one(COUNT_UNANSWERED, (group_id,))
        return row is not None and int(row[0]) == 0

    async def recent_pairs(self, guild_id: int, rounds: int,
                           only: Collection[int] | None = None) -> list[tuple[int, int]]:
        """Pairs who were in one group of the last ``rounds`` rounds (``only``: those with one of these
        members, read from their own rows: a few, where the whole server's are tens of thousands)."""
        if only is None:
            rows = await self._storage.fetch_all(SELECT_RECENT_PAIRS, (guild_id, rounds))
        elif not only:
            return []
        else:
            rows = await self._storage.fetch_all(SELECT_RECENT_PAIRS_OF.format(_listed(only)),
                                                 (guild_id, *only, guild_id, rounds))
        return [(row[0], row[1]) for row in rows]

    async def unanswered_streaks(self, guild_id: int, length: int) -> set[int]:
        """Members whose last ``length`` follow-ups since they last joined all went unanswered."""
        joined = {user: member.joined_at for user, member in (await self.members(guild_id)).items()}
        answers: dict[int, list[str | None]] = {}
        for row in await self._storage.fetch_all(SELECT_FOLLOW_UP_ANSWERS, (guild_id,)):
            since = joined.get(row[0])
            if since is None or from_text(row[2]) > since:
                answers.setdefault(row[0], []).append(row[1])
        return {user for user, given in answers.items()
                if len(given) >= length and all(answer is None for answer in given[:length])}

    async def stats(self, guild_id: int) -> RoundStats:
        async with self._storage.transaction() as tx:
            rounds = await tx.fetch_one(COUNT_ROUNDS, (guild_id,))
            groups = await tx.fetch_one(COUNT_GROUPS, (guild_id,))
            meetings = await tx.fetch_one(COUNT_MEETINGS, (guild_id,))
            companies: dict[int, set[str]] = {}
            for row in await tx.fetch_all(SELECT_GROUP_COMPANIES, (guild_id,)):
                companies.setdefault(row[0], set()).add(row[1])
            kept = {bytes(row[0]) for row in await tx.fetch_all(SELECT_KEPT_BRIDGES, (guild_id,))}
        live = {pair for keys in companies.values() for pair in combinations(sorted(keys), 2)}
        # Only pairs kept from erased members are digests; the live ones are digested only to be told apart.
        bridged = len(live) if not kept else len(kept | {_bridge(guild_id, a, b) for a, b in live})
        assert rounds is not None and groups is not None and meetings is not None
        return RoundStats(int(rounds[0]), int(groups[0]), int(meetings[0]), bridged)

    # -- erasing a member

    @staticmethod
    async def forget(tx: Transaction, guild_id: int, user_id: int) -> list[tuple[int, int]]:
        """Delete the member's choices, avoid list, requests either way and their place in groups. The
        groups stay (others were in them); what they achieved is kept naming nobody (a meeting, the company
        pairs bridged), so the stats stay as they were. Returns the messages (channel, message) that still
        show the member's card to someone they asked: to delete."""
        delivered = [(row[0], row[1]) for row in await tx.fetch_all(SELECT_DELIVERED_BY, (guild_id, user_id))]
        await tx.execute(KEEP_MET, (guild_id, user_id))
        bridged = {_bridge(guild_id, row[0], row[1]) for row in await tx.fetch_all(SELECT_BRIDGED_BY,
                                                                                   (guild_id, user_id))}
        await tx.execute_many(KEEP_BRIDGE, [(guild_id, pair) for pair in bridged])
        await tx.execute(DELETE_MEMBER, (guild_id, user_id))
        await tx.execute(DELETE_AVOID_ALL, (guild_id, user_id))
        await tx.execute(DELETE_SNAPSHOT, (guild_id,))   # it holds the member's columns too
        await tx.execute(DELETE_MEMBER_REQUESTS, (guild_id, user_id, user_id))
        await tx.execute(DELETE_MEMBER_GROUPS, (guild_id, user_id))
        return delivered

    @staticmethod
    async def member_rows(tx: Transaction, guild_id: int, user_id: int) -> dict[str, Any]:
        """Everything stored about the member by matching, as JSON values (for /intro export)."""
        member = await tx.fetch_one(SELECT_MEMBER, (guild_id, user_id))
        return {
            "matching": None if member is None else _raw(member),
            "avoided_companies": [_raw(row) for row in await tx.fetch_all(SELECT_AVOIDED, (guild_id, user_id))],
            "intro_requests": [_raw(row) for row in await tx.fetch_all(SELECT_MEMBER_REQUESTS,
                                                                         (guild_id, user_id, user_id))],
            "match_groups": [_raw(row) for row in await tx.fetch_all(SELECT_MEMBER_GROUPS, (guild_id, user_id))],
        }


def _bridge(guild_id: int, a: str, b: str) -> bytes:
    """Two company keys bridged in a server, as a digest that names neither (either order)."""
    first, second = sorted((a, b))
    return hashlib.blake2b(f"{first}\0{second}".encode(), digest_size=16, key=str(guild_id).encode(),
                           person=b"kakehashi.pair").digest()


def _raw(row: Row) -> dict[str, Any]:
    return {key: row[key] for key in row.keys()}  # noqa: SIM118 (sqlite3.Row is not a mapping)


def _time(value: str | None) -> datetime | None:
    return None if value is None else from_text(value)


def _listed(values: Collection[int]) -> str:
    """The placeholders of an ``IN (…)`` list of ``values``."""
    return ", ".join("?" * len(values))


def _member(row: Row) -> MatchMember:
    return MatchMember(row["guild_id"], row["user_id"], bool(row["joined"]), _time(row["paused_until"]),
                       bool(row["auto_paused"]), _time(row["joined_at"]))


def _request(row: Row) -> MatchRequest:
    return MatchRequest(
        id=row["id"], guild_id=row["guild_id"], requester_id=row["requester_id"], target_id=row["target_id"],
        note=row["note"], state=RequestState(row["state"]), created_at=from_text(row["created_at"]),
        expires_at=from_text(row["expires_at"]), answered_at=_time(row["answered_at"]),
        channel_id=row["channel_id"], message_id=row["message_id"], thread_id=row["thread_id"])


def _settings(row: Row) -> RoundSettings:
    return RoundSettings(row["guild_id"], bool(row["enabled"]), Cadence(row["cadence"]), row["weekday"], row["at"],
                         row["no_repeat_rounds"], row["follow_up_days"], _time(row["last_slot"]))


def _group(row: Row, members: list[Row]) -> GroupRecord:
    return GroupRecord(row["id"], row["round_id"], row["guild_id"], tuple(m[0] for m in members), row["score"],
                       row["channel_id"], row["thread_id"], _time(row["followed_up_at"]),
                       None if row["way"] is None else Way(row["way"]), GroupState(row["state"]),
                       None if row["ended"] is None else Ended(row["ended"]),
                       frozenset(m[0] for m in members if m[1] is not None),
                       {m[0]: m[2] for m in members if m[2] is not None})
