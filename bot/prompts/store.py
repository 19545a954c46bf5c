"""The SQL of prompts: the queue, the schedule, custom prompts, posts and their engagement."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, time
from typing import Any

from bot.clock import from_text, to_text
from bot.guilds.model import FORMER_MEMBER, Change
from bot.guilds.store import record_change
from bot.prompts.model import CustomPrompt, Post, PostState, QueueEntry, Schedule, Translation
from bot.shards import EVERY, Shards
from bot.storage import Row, Storage, Transaction

ENSURE_SCHEDULE = """
INSERT INTO prompt_schedule (guild_id, updated_at) VALUES (?, ?) ON CONFLICT (guild_id) DO NOTHING
"""
SELECT_SCHEDULE = "SELECT cycle, weekday, at_time, enabled, last_slot FROM prompt_schedule WHERE guild_id = ?"
UPDATE_SCHEDULE = """
UPDATE prompt_schedule SET weekday = ?, at_time = ?, enabled = ?, last_slot = ?, updated_at = ? WHERE guild_id = ?
"""
SELECT_ENABLED = """
SELECT guild_id, cycle, weekday, at_time, enabled, last_slot FROM prompt_schedule WHERE enabled = 1{shards}
"""
# Compare-and-set: of two processes that saw the same slot due, one moves it on and posts.
ADVANCE_SLOT = "UPDATE prompt_schedule SET last_slot = ? WHERE guild_id = ? AND enabled = 1 AND last_slot = ?"
ADVANCE_FIRST_SLOT = """
UPDATE prompt_schedule SET last_slot = ? WHERE guild_id = ? AND enabled = 1 AND last_slot IS NULL
"""
UPDATE_CYCLE = "UPDATE prompt_schedule SET cycle = ? WHERE guild_id = ?"

SELECT_QUEUE = "SELECT prompt_key, position, last_cycle FROM prompt_queue WHERE guild_id = ? ORDER BY position"
INSERT_QUEUE = """
INSERT INTO prompt_queue (guild_id, prompt_key, position)
VALUES (?, ?, (SELECT COALESCE(MAX(position), 0) + 1 FROM prompt_queue WHERE guild_id = ?))
ON CONFLICT (guild_id, prompt_key) DO NOTHING
"""
TAKE_ENTRY = """
UPDATE prompt_queue SET last_cycle = ?,
    position = (SELECT MAX(position) + 1 FROM prompt_queue WHERE guild_id = ?)
WHERE guild_id = ? AND prompt_key = ?
"""

INSERT_CUSTOM = """
INSERT INTO prompt_custom (guild_id, title, body, questions, author_id, created_at, language)
VALUES (?, ?, ?, ?, ?, ?, ?)
RETURNING id
"""
SELECT_CUSTOMS = """
SELECT id, guild_id, title, body, questions, author_id, created_at, language, translation
FROM prompt_custom WHERE guild_id = ? ORDER BY id
"""

_POST_COLUMNS = """id, guild_id, prompt_key, title, slot, state, language, channel_id, message_id, thread_id,
    parts_sent, created_at, posted_at, replies, participants"""
INSERT_POST = """
INSERT INTO prompt_posts (guild_id, prompt_key, title, slot, created_at) VALUES (?, ?, ?, ?, ?) RETURNING id
"""
SELECT_POST = f"SELECT {_POST_COLUMNS} FROM prompt_posts WHERE id = ?"
SELECT_PENDING_POSTS = f"SELECT {_POST_COLUMNS} FROM prompt_posts WHERE guild_id = ? AND state = 'pending' ORDER BY id"
SET_LANGUAGE = "UPDATE prompt_posts SET language = ? WHERE id = ? AND language IS NULL"
SET_CHANNEL = "UPDATE prompt_posts SET channel_id = ? WHERE id = ? AND message_id IS NULL"
SET_MESSAGE = "UPDATE prompt_posts SET message_id = ?, thread_id = ? WHERE id = ?"
SET_THREAD = "UPDATE prompt_posts SET thread_id = ? WHERE id = ?"
SET_PARTS = "UPDATE prompt_posts SET parts_sent = ? WHERE id = ?"
MARK_POSTED = "UPDATE prompt_posts SET state = 'posted', posted_at = ? WHERE id = ?"
SELECT_POST_BY_THREAD = "SELECT id FROM prompt_posts WHERE thread_id = ? AND guild_id = ?"
INSERT_PARTICIPANT = """
INSERT INTO prompt_participants (post_id, user_id) VALUES (?, ?) ON CONFLICT (post_id, user_id) DO NOTHING
"""
COUNT_REPLY = "UPDATE prompt_posts SET replies = replies + 1, participants = participants + ? WHERE id = ?"
SELECT_STATS = f"""
SELECT {_POST_COLUMNS} FROM prompt_posts WHERE guild_id = ? AND state = 'posted'
ORDER BY replies DESC, participants DESC, posted_at DESC, id DESC LIMIT ?
"""
COUNT_POSTED = "SELECT COUNT(*), COALESCE(SUM(replies), 0) FROM prompt_posts WHERE guild_id = ? AND state = 'posted'"
# Who replied in the server's prompt threads posted since a time (for matching's "same thread" bonus).
SELECT_PARTICIPANTS_SINCE = """
SELECT pp.post_id, pp.user_id FROM prompt_participants AS pp JOIN prompt_posts AS p ON p.id = pp.post_id
WHERE p.guild_id = ? AND p.posted_at >= ? ORDER BY pp.post_id, pp.user_id
"""
# A member's data: the threads they replied in, and the prompts they added.
SELECT_MEMBER_REPLIES = """
SELECT p.id, p.title, p.thread_id FROM prompt_participants AS pp JOIN prompt_posts AS p ON p.id = pp.post_id
WHERE p.guild_id = ? AND pp.user_id = ? ORDER BY p.id
"""
SELECT_MEMBER_CUSTOMS = """
SELECT id, title, body, questions, created_at, language, translation FROM prompt_custom
WHERE guild_id = ? AND author_id = ? ORDER BY id
"""
DELETE_MEMBER_REPLIES = """
DELETE FROM prompt_participants WHERE user_id = ? AND post_id IN (SELECT id FROM prompt_posts WHERE guild_id = ?)
"""
# A prompt an erased member added stays (the server's content); only who added it is forgotten.
SET_TRANSLATION = "UPDATE prompt_custom SET translation = ? WHERE id = ? AND guild_id = ?"
ANONYMISE_CUSTOMS = "UPDATE prompt_custom SET author_id = ? WHERE guild_id = ? AND author_id = ?"


class PromptStore:
    def __init__(self, storage: Storage) -> None:
        self._storage = storage

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Transaction]:
        async with self._storage.transaction() as tx:
            yield tx

    # -- schedule and cycle

    @staticmethod
    async def schedule(tx: Transaction, guild_id: int, now: datetime) -> tuple[Schedule, int]:
        """The server's schedule and current cycle (created with the defaults on first use)."""
        await tx.execute(ENSURE_SCHEDULE, (guild_id, to_text(now)))
        row = await tx.fetch_one(SELECT_SCHEDULE, (guild_id,))
        assert row is not None
        return _schedule(row), int(row["cycle"])

    @staticmethod
    async def set_schedule(tx: Transaction, guild_id: int, schedule: Schedule, change: Change, *, actor_id: int,
                           now: datetime) -> None:
        last = to_text(schedule.last_slot) if schedule.last_slot else None
        await tx.execute(UPDATE_SCHEDULE, (schedule.weekday, schedule.at.strftime("%H:%M"), int(schedule.enabled),
                                           last, to_text(now), guild_id))
        await record_change(tx, guild_id, actor_id, change, now)

    async def enabled_schedules(self, shards: Shards = EVERY) -> list[tuple[int, Schedule]]:
        """The schedules switched on, of the servers of ``shards``."""
        where, params = shards.where()
        rows = await self._storage.fetch_all(SELECT_ENABLED.format(shards=where), params)
        return [(int(row["guild_id"]), _schedule(row)) for row in rows]

    @staticmethod
    async def advance_slot(tx: Transaction, guild_id: int, seen: datetime | None, slot: datetime) -> bool:
        """Move the server's last slot from ``seen`` to ``slot``; False if another owner moved it first."""
        if seen is None:
            return await tx.execute(ADVANCE_FIRST_SLOT, (to_text(slot), guild_id)) == 1
        return await tx.execute(ADVANCE_SLOT, (to_text(slot), guild_id, to_text(seen))) == 1

    @staticmethod
    async def set_cycle(tx: Transaction, guild_id: int, cycle: int) -> None:
        await tx.execute(UPDATE_CYCLE, (cycle, guild_id))

    # -- queue

    @staticmethod
    async def queue(tx: Transaction, guild_id: int, keys: list[str]) -> list[QueueEntry]:
        """The server's queue, with any of ``keys`` it lacks appended in that order (new bundled essays)."""
        for key in keys:
            await tx.execute(INSERT_QUEUE, (guild_id, key, guild_id))
        rows = await tx.fetch_all(SELECT_QUEUE, (guild_id,))
        return [QueueEntry(row["prompt_key"], int(row["position"]), int(row["last_cycle"])) for row in rows]

    @staticmethod
    async def take(tx: Transaction, guild_id: int, key: str, cycle: int) -> None:
        """The prompt is posted (or skipped) in ``cycle``: it moves to the end of the queue."""
        await tx.execute(TAKE_ENTRY, (cycle, guild_id, guild_id, key))

    # -- custom prompts

    @staticmethod
    async def add_custom(tx: Transaction, guild_id: int, title: str, body: str, questions: tuple[str, ...],
                         author_id: int, now: datetime, language: str) -> CustomPrompt:
        row = await tx.fetch_one(INSERT_CUSTOM, (guild_id, title, body, json.dumps(list(questions), ensure_ascii=False),
                                                 author_id, to_text(now), language))
        assert row is not None
        return CustomPrompt(int(row[0]), guild_id, title, body, questions, author_id, now, language)

    @staticmethod
    async def set_translation(tx: Transaction, guild_id: int, custom_id: int, translation: Translation) -> bool:
        """False when the server has no such prompt."""
        text = json.dumps({"title": translation.title, "summary": translation.summary,
                           "questions": list(translation.questions)}, ensure_ascii=False)
        return await tx.execute(SET_TRANSLATION, (text, custom_id, guild_id)) > 0

    @staticmethod
    async def customs(tx: Transaction, guild_id: int) -> list[CustomPrompt]:
        return [_custom(row) for row in await tx.fetch_all(SELECT_CUSTOMS, (guild_id,))]

    async def read_customs(self, guild_id: int) -> list[CustomPrompt]:
        return [_custom(row) for row in await self._storage.fetch_all(SELECT_CUSTOMS, (guild_id,))]

    # -- posts

    @staticmethod
    async def create_post(tx: Transaction, guild_id: int, key: str, title: str, slot: datetime | None,
                          now: datetime) -> int:
        row = await tx.fetch_one(INSERT_POST, (guild_id, key, title, to_text(slot) if slot else None, to_text(now)))
        assert row is not None
        return int(row[0])

    @staticmethod
    async def post_in(tx: Transaction, post_id: int) -> Post:
        row = await tx.fetch_one(SELECT_POST, (post_id,))
        assert row is not None
        return _post(row)

    async def post(self, post_id: int) -> Post | None:
        row = await self._storage.fetch_one(SELECT_POST, (post_id,))
        return None if row is None else _post(row)

    @staticmethod
    async def pending_posts(tx: Transaction, guild_id: int) -> list[Post]:
        return [_post(row) for row in await tx.fetch_all(SELECT_PENDING_POSTS, (guild_id,))]

    async def set_language(self, post_id: int, language: str) -> None:
        await self._write(SET_LANGUAGE, (language, post_id))

    async def set_channel(self, post_id: int, channel_id: int) -> None:
        """Where the post is about to be sent; recorded before sending, so a crash leaves a place to look."""
        await self._write(SET_CHANNEL, (channel_id, post_id))

    async def set_message(self, post_id: int, message_id: int, thread_id: int | None) -> None:
        await self._write(SET_MESSAGE, (message_id, thread_id, post_id))

    async def set_thread(self, post_id: int, thread_id: int) -> None:
        await self._write(SET_THREAD, (thread_id, post_id))

    async def set_parts_sent(self, post_id: int, count: int) -> None:
        await self._write(SET_PARTS, (count, post_id))

    async def mark_posted(self, post_id: int, now: datetime) -> None:
        await self._write(MARK_POSTED, (to_text(now), post_id))

    async def participants_since(self, guild_id: int, since: datetime) -> list[tuple[int, int]]:
        """(post, member) for every member who replied in a prompt thread posted since ``since``."""
        rows = await self._storage.fetch_all(SELECT_PARTICIPANTS_SINCE, (guild_id, to_text(since)))
        return [(row[0], row[1]) for row in rows]

    async def record_reply(self, guild_id: int, thread_id: int, user_id: int) -> bool:
        """Count a member's message in a prompt's thread; True when it is their first there (a new
        participant: matching's "same thread" bonus changes), False for another one or a thread that is not
        a prompt's. Most thread messages are not in a prompt's thread: one read, no write lock."""
        row = await self._storage.fetch_one(SELECT_POST_BY_THREAD, (thread_id, guild_id))
        if row is None:
            return False
        async with self._storage.transaction() as tx:
            new_participant = await tx.execute(INSERT_PARTICIPANT, (row[0], user_id))
            await tx.execute(COUNT_REPLY, (new_participant, row[0]))
        return new_participant > 0

    async def most_discussed(self, guild_id: int, limit: int) -> tuple[list[Post], int]:
        """The posted prompts with the most replies first, and how many were posted in all."""
        rows = await self._storage.fetch_all(SELECT_STATS, (guild_id, limit))
        posted, _ = await self.totals(guild_id)
        return [_post(row) for row in rows], posted

    async def totals(self, guild_id: int) -> tuple[int, int]:
        """How many prompts were posted in the server, and how many replies they had in all."""
        row = await self._storage.fetch_one(COUNT_POSTED, (guild_id,))
        return (int(row[0]), int(row[1])) if row else (0, 0)

    @staticmethod
    async def member_rows(tx: Transaction, guild_id: int, user_id: int) -> dict[str, Any]:
        """What prompts keep about a member, as JSON values (for /intro export)."""
        replies = await tx.fetch_all(SELECT_MEMBER_REPLIES, (guild_id, user_id))
        customs = await tx.fetch_all(SELECT_MEMBER_CUSTOMS, (guild_id, user_id))
        return {
            "prompt_threads_replied_in": [{"post": r["id"], "title": r["title"], "thread_id": r["thread_id"]}
                                          for r in replies],
            "prompts_added": [{"id": r["id"], "title": r["title"], "text": r["body"],
                               "questions": json.loads(r["questions"]), "created_at": r["created_at"]}
                              for r in customs],
        }

    @staticmethod
    async def forget_member(tx: Transaction, guild_id: int, user_id: int) -> None:
        """Erase a member from prompts: which threads they replied in, and their name on prompts they added.
        Reply and participant counts stay: they are anonymous."""
        await tx.execute(DELETE_MEMBER_REPLIES, (user_id, guild_id))
        await tx.execute(ANONYMISE_CUSTOMS, (FORMER_MEMBER, guild_id, user_id))

    async def _write(self, sql: str, params: tuple[Any, ...]) -> None:
        async with self._storage.transaction() as tx:
            await tx.execute(sql, params)


def _schedule(row: Row) -> Schedule:
    hours, minutes = (int(part) for part in row["at_time"].split(":"))
    return Schedule(int(row["weekday"]), time(hours, minutes), bool(row["enabled"]),
                    from_text(row["last_slot"]) if row["last_slot"] else None)


def _custom(row: Row) -> CustomPrompt:
    translation = None
    if row["translation"] is not None:
        given = json.loads(row["translation"])
        translation = Translation(given["title"], given["summary"], tuple(given["questions"]))
    return CustomPrompt(int(row["id"]), int(row["guild_id"]), row["title"], row["body"],
                        tuple(json.loads(row["questions"])), int(row["author_id"]), from_text(row["created_at"]),
                        row["language"], translation)


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)


def _post(row: Row) -> Post:
    return Post(
        id=int(row["id"]),
        guild_id=int(row["guild_id"]),
        prompt_key=row["prompt_key"],
        title=row["title"],
        slot=from_text(row["slot"]) if row["slot"] else None,
        state=PostState(row["state"]),
        language=row["language"],
        channel_id=_optional_int(row["channel_id"]),
        message_id=_optional_int(row["message_id"]),
        thread_id=_optional_int(row["thread_id"]),
        parts_sent=int(row["parts_sent"]),
        created_at=from_text(row["created_at"]),
        posted_at=from_text(row["posted_at"]) if row["posted_at"] else None,
        replies=int(row["replies"]),
        participants=int(row["participants"]),
    )
