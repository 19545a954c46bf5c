"""The SQL of the outbox; nothing else runs it.

A job is claimed by one owner in one statement (``UPDATE … RETURNING``), so two
processes sharing a database never run the same job. Claims are made server by
server (:meth:`OutboxStore.due_guilds`, then :meth:`OutboxStore.claim_next` for
one of them), so the runner can take turns between servers. An owner that
restarts takes back what it held when it stopped (:meth:`OutboxStore.release`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from types import MappingProxyType
from typing import Any

from bot.clock import from_text, to_text
from bot.outbox.model import Failure, Job, JobState, NewJob
from bot.storage import Row, Storage, Transaction

_COLUMNS = "id, kind, guild_id, dedupe_key, payload, state, due_at, attempts, last_error, created_at"
INSERT_JOB = """
INSERT INTO outbox (kind, guild_id, dedupe_key, payload, due_at, created_at, member_id) VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (dedupe_key) DO NOTHING
"""
SELECT_BY_KEY = f"SELECT {_COLUMNS} FROM outbox WHERE dedupe_key = ?"
SELECT_BY_ID = f"SELECT {_COLUMNS} FROM outbox WHERE id = ?"
DUE_GUILDS = """
SELECT guild_id FROM outbox WHERE state = 'pending' AND due_at <= ?
GROUP BY guild_id ORDER BY MIN(due_at), guild_id
"""
CLAIM_NEXT = f"""
UPDATE outbox SET state = 'running', claimed_by = ?, attempts = attempts + 1
WHERE id = (SELECT id FROM outbox WHERE state = 'pending' AND guild_id = ? AND due_at <= ?
            ORDER BY due_at, id LIMIT 1)
  AND state = 'pending'
RETURNING {_COLUMNS}
"""
COMPLETE = "UPDATE outbox SET state = 'done', claimed_by = NULL, finished_at = ?, last_error = NULL WHERE id = ?"
RETRY = "UPDATE outbox SET state = 'pending', claimed_by = NULL, due_at = ?, last_error = ? WHERE id = ?"
RELEASE = "UPDATE outbox SET state = 'pending', claimed_by = NULL WHERE state = 'running' AND claimed_by = ?"
NEXT_DUE = "SELECT MIN(due_at) FROM outbox WHERE state = 'pending'"
NEXT_DUE_AFTER = "SELECT MIN(due_at) FROM outbox WHERE state = 'pending' AND due_at > ?"
SELECT_MEMBER = f"SELECT {_COLUMNS} FROM outbox WHERE guild_id = ? AND member_id = ? ORDER BY id"
DELETE_MEMBER = "DELETE FROM outbox WHERE guild_id = ? AND member_id = ?"
SELECT_OPEN = f"""
SELECT {_COLUMNS} FROM outbox WHERE guild_id = ? AND kind = ? AND state <> 'done' ORDER BY due_at, id
"""


class OutboxStore:
    def __init__(self, storage: Storage) -> None:
        self._storage = storage

    @staticmethod
    async def enqueue(tx: Transaction, kind: str, guild_id: int, dedupe_key: str, payload: dict[str, Any],
                      *, due_at: datetime, now: datetime, member_id: int | None = None) -> Job:
        """Add a job inside the caller's transaction, so the work and the record that asked for it are
        written together; the same ``dedupe_key`` again returns the job already there. A job about one
        member names them in ``member_id``, so :meth:`forget_member` can erase it."""
        await tx.execute(INSERT_JOB, (kind, guild_id, dedupe_key, json.dumps(payload, ensure_ascii=False),
                                      to_text(due_at), to_text(now), member_id))
        row = await tx.fetch_one(SELECT_BY_KEY, (dedupe_key,))
        assert row is not None
        return _job(row)

    @staticmethod
    async def enqueue_many(tx: Transaction, jobs: Iterable[NewJob], *, now: datetime) -> None:
        """Add many jobs inside the caller's transaction in one call, as :meth:`enqueue` adds one (a key
        already there is left as it is); for a round's tens of thousands of groups."""
        await tx.execute_many(INSERT_JOB, ((job.kind, job.guild_id, job.dedupe_key,
                                            json.dumps(job.payload, ensure_ascii=False), to_text(job.due_at),
                                            to_text(now), job.member_id) for job in jobs))

    @staticmethod
    async def forget_member(tx: Transaction, guild_id: int, member_id: int) -> list[Job]:
        """Delete every job about a member in a server (their data is being erased); the jobs as they were,
        so the caller can undo on Discord what they did."""
        jobs = await OutboxStore.member_jobs(tx, guild_id, member_id)
        await tx.execute(DELETE_MEMBER, (guild_id, member_id))
        return jobs

    @staticmethod
    async def member_jobs(tx: Transaction, guild_id: int, member_id: int) -> list[Job]:
        return [_job(row) for row in await tx.fetch_all(SELECT_MEMBER, (guild_id, member_id))]

    async def get(self, job_id: int) -> Job | None:
        row = await self._storage.fetch_one(SELECT_BY_ID, (job_id,))
        return None if row is None else _job(row)

    async def due_guilds(self, now: datetime) -> list[int]:
        """The servers with a job due and waiting, the one whose oldest such job has waited longest first."""
        return [int(row[0]) for row in await self._storage.fetch_all(DUE_GUILDS, (to_text(now),))]

    async def claim_next(self, owner: str, now: datetime, guild_id: int) -> Job | None:
        """A server's earliest due job (by due time, then id), now held by ``owner``; None when none is due."""
        async with self._storage.transaction() as tx:
            row = await tx.fetch_one(CLAIM_NEXT, (owner, guild_id, to_text(now)))
        return None if row is None else _job(row)

    async def complete(self, job_id: int, now: datetime) -> None:
        async with self._storage.transaction() as tx:
            await tx.execute(COMPLETE, (to_text(now), job_id))

    async def retry(self, job_id: int, due_at: datetime, failure: Failure) -> None:
        error = json.dumps({"key": failure.key, "params": dict(failure.params)}, ensure_ascii=False)
        async with self._storage.transaction() as tx:
            await tx.execute(RETRY, (to_text(due_at), error, job_id))

    async def release(self, owner: str) -> int:
        """Give back the jobs ``owner`` held when it stopped (it is starting again, so it holds none)."""
        async with self._storage.transaction() as tx:
            return await tx.execute(RELEASE, (owner,))

    async def next_due(self, after: datetime | None = None) -> datetime | None:
        """When the earliest waiting job is due (only among those due later than ``after``, if given)."""
        if after is None:
            row = await self._storage.fetch_one(NEXT_DUE)
        else:
            row = await self._storage.fetch_one(NEXT_DUE_AFTER, (to_text(after),))
        return None if row is None or row[0] is None else from_text(row[0])

    async def open_jobs(self, guild_id: int, kind: str) -> list[Job]:
        """A server's jobs of one kind that are not done yet: waiting, failing, or running."""
        return [_job(row) for row in await self._storage.fetch_all(SELECT_OPEN, (guild_id, kind))]


def _job(row: Row) -> Job:
    error = None
    if row["last_error"]:
        data = json.loads(row["last_error"])
        error = Failure(data["key"], MappingProxyType(data.get("params") or {}))
    return Job(
        id=int(row["id"]),
        kind=row["kind"],
        guild_id=int(row["guild_id"]),
        dedupe_key=row["dedupe_key"],
        payload=MappingProxyType(json.loads(row["payload"])),
        state=JobState(row["state"]),
        due_at=from_text(row["due_at"]),
        attempts=int(row["attempts"]),
        last_error=error,
        created_at=from_text(row["created_at"]),
    )
