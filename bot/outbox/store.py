"""The SQL of the outbox; nothing else runs it.

A job is claimed by one owner in one statement (``UPDATE … RETURNING``), with a lease: the owner (a host and a
process) renews it while the job runs (:meth:`OutboxStore.renew`), and a job still running after its lease
ran out belongs to a process that died, so it is claimed again like a due one. On PostgreSQL the row is
picked ``FOR UPDATE SKIP LOCKED``, so processes claiming at once take different jobs instead of waiting for
each other; a job is never held by two owners, and an owner whose lease was taken can no longer record the
job's outcome. Claims are made server by server (:meth:`OutboxStore.due_guilds`, then
:meth:`OutboxStore.claim_next` for one of them), among the servers of the process's shards, so the runner
can take turns between servers. A process alone on its database (SQLite) takes back at start whatever was
left running (:meth:`OutboxStore.release_all`).

Two clocks: a job's due time is the bot's clock (the one tests and the playground move); a lease's expiry is
the processes' real time, since it is about whether a process is alive.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from types import MappingProxyType
from typing import Any

from bot.clock import from_text, to_text
from bot.outbox.model import Claim, Failure, Job, JobState, NewJob
from bot.shards import EVERY, Shards
from bot.storage import Row, Storage, Transaction

# A lease no job has run out of yet: without a real time to compare with, no running job is claimed again.
_NEVER = ""

_COLUMNS = "id, kind, guild_id, dedupe_key, payload, state, due_at, attempts, last_error, created_at"
INSERT_JOB = """
INSERT INTO outbox (kind, guild_id, dedupe_key, payload, due_at, created_at, member_id) VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (dedupe_key) DO NOTHING
"""
SELECT_BY_KEY = f"SELECT {_COLUMNS} FROM outbox WHERE dedupe_key = ?"
SELECT_BY_ID = f"SELECT {_COLUMNS} FROM outbox WHERE id = ?"
# Each branch reads its own index: due and waiting (outbox_guild_due), running with a lease run out (outbox_leases).
DUE_GUILDS = """
SELECT guild_id FROM (
    SELECT guild_id, due_at FROM outbox WHERE state = 'pending' AND due_at <= ?{shards}
    UNION ALL
    SELECT guild_id, due_at FROM outbox WHERE state = 'running' AND lease_until < ?{shards}
) AS due GROUP BY guild_id ORDER BY MIN(due_at), guild_id
"""
_CLAIMABLE = "((state = 'pending' AND due_at <= ?) OR (state = 'running' AND lease_until < ?))"
# The earliest of two candidates, each the first of its kind in its index's order: a server's earliest due job
# (outbox_guild_due, read in order: no sort) and its earliest job whose lease ran out. (One query with the two
# conditions OR-ed sorted all the server's due jobs for each claim: 8 ms a claim with a round's 46,000 waiting.)
CLAIM_NEXT = f"""
UPDATE outbox SET state = 'running', claimed_by = ?, lease_until = ?, attempts = attempts + 1
WHERE id = (SELECT id FROM outbox WHERE id IN (
                (SELECT id FROM outbox WHERE state = 'pending' AND guild_id = ? AND due_at <= ?
                 ORDER BY due_at, id LIMIT 1{{skip_locked}}),
                (SELECT id FROM outbox WHERE state = 'running' AND guild_id = ? AND lease_until < ?
                 ORDER BY due_at, id LIMIT 1{{skip_locked}}))
            ORDER BY due_at, id LIMIT 1)
  AND {_CLAIMABLE}
RETURNING {_COLUMNS},
    EXISTS (SELECT 1 FROM outbox AS later WHERE later.state = 'pending' AND later.guild_id = outbox.guild_id
                                            AND later.due_at <= ? AND later.id <> outbox.id) AS more_due
"""
RENEW = """
UPDATE outbox SET lease_until = ? WHERE state = 'running' AND claimed_by = ? AND id IN ({ids}) RETURNING id
"""
_HELD = "id = ? AND state = 'running' AND claimed_by = ?"
# A job done keeps the name of the process that did it, for whoever wonders which one did.
COMPLETE = f"""
UPDATE outbox SET state = 'done', lease_until = NULL, finished_at = ?, last_error = NULL WHERE {_HELD}
"""
RETRY = f"""
UPDATE outbox SET state = 'pending', claimed_by = NULL, lease_until = NULL, due_at = ?, last_error = ?
WHERE {_HELD}
"""
RELEASE = """
UPDATE outbox SET state = 'pending', claimed_by = NULL, lease_until = NULL WHERE state = 'running' AND claimed_by = ?
"""
RELEASE_ALL = "UPDATE outbox SET state = 'pending', claimed_by = NULL, lease_until = NULL WHERE state = 'running'"
NEXT_DUE = "SELECT MIN(due_at) FROM outbox WHERE state = 'pending'{shards}"
NEXT_DUE_AFTER = "SELECT MIN(due_at) FROM outbox WHERE state = 'pending' AND due_at > ?{shards}"
NEXT_LAPSE = "SELECT MIN(lease_until) FROM outbox WHERE state = 'running' AND claimed_by <> ?{shards}"
SELECT_MEMBER = f"SELECT {_COLUMNS} FROM outbox WHERE guild_id = ? AND member_id = ? ORDER BY id"
DELETE_MEMBER = "DELETE FROM outbox WHERE guild_id = ? AND member_id = ?"
SELECT_OPEN = f"""
SELECT {_COLUMNS} FROM outbox WHERE guild_id = ? AND kind = ? AND state <> 'done' ORDER BY due_at, id
"""


class OutboxStore:
    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self._claim = CLAIM_NEXT.format(skip_locked=storage.skip_locked)

    @property
    def shared(self) -> bool:
        """Whether other bot processes may claim jobs in this database."""
        return self._storage.shared

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

    async def due_guilds(self, now: datetime, *, shards: Shards = EVERY, expired: datetime | None = None) -> list[int]:
        """The servers of ``shards`` with a job due and waiting, or running with a lease that ran out before
        ``expired`` (real time); the one whose oldest such job has waited longest first."""
        where, params = shards.where()
        lapsed = to_text(expired) if expired is not None else _NEVER
        rows = await self._storage.fetch_all(DUE_GUILDS.format(shards=where),
                                             (to_text(now), *params, lapsed, *params))
        return [int(row[0]) for row in rows]

    async def claim_next(self, owner: str, now: datetime, guild_id: int, *, lease: datetime | None = None,
                         expired: datetime | None = None) -> Job | None:
        """A server's earliest claimable job (by due time, then id): due and waiting, or running with a lease
        that ran out before ``expired`` (real time). Now held by ``owner`` until ``lease``; None when there is
        none."""
        claim = await self.claim(owner, now, guild_id, lease=lease, expired=expired)
        return None if claim is None else claim.job

    async def claim(self, owner: str, now: datetime, guild_id: int, *, lease: datetime | None = None,
                    expired: datetime | None = None) -> Claim | None:
        """``claim_next``, and whether the server had another job due and waiting then."""
        lapsed = to_text(expired) if expired is not None else _NEVER
        until = to_text(lease) if lease is not None else None
        async with self._storage.transaction() as tx:
            row = await tx.fetch_one(self._claim, (owner, until, guild_id, to_text(now), guild_id, lapsed,
                                                   to_text(now), lapsed, to_text(now)))
        return None if row is None else Claim(_job(row), bool(row["more_due"]))

    async def renew(self, owner: str, job_ids: Iterable[int], lease: datetime) -> set[int]:
        """Hold ``owner``'s running jobs until ``lease``; the ids it still holds (one missing was taken by
        another process after its lease ran out)."""
        ids = sorted(job_ids)
        if not ids:
            return set()
        sql = RENEW.format(ids=", ".join("?" for _ in ids))
        async with self._storage.transaction() as tx:
            rows = await tx.fetch_all(sql, (to_text(lease), owner, *ids))
        return {int(row[0]) for row in rows}

    async def complete(self, job_id: int, now: datetime, owner: str) -> bool:
        """Record the job done; False when ``owner`` no longer held it (taken again after its lease ran out)."""
        async with self._storage.transaction() as tx:
            return await tx.execute(COMPLETE, (to_text(now), job_id, owner)) > 0

    async def retry(self, job_id: int, due_at: datetime, failure: Failure, owner: str) -> bool:
        """Put the job back to wait until ``due_at``; False when ``owner`` no longer held it."""
        error = json.dumps({"key": failure.key, "params": dict(failure.params)}, ensure_ascii=False)
        async with self._storage.transaction() as tx:
            return await tx.execute(RETRY, (to_text(due_at), error, job_id, owner)) > 0

    async def release(self, owner: str) -> int:
        """Give back the jobs ``owner`` held (it is stopping, or starting again under the same name)."""
        async with self._storage.transaction() as tx:
            return await tx.execute(RELEASE, (owner,))

    async def release_all(self) -> int:
        """Give back every running job: only for a process alone on its database, starting."""
        async with self._storage.transaction() as tx:
            return await tx.execute(RELEASE_ALL)

    async def next_due(self, after: datetime | None = None, *, shards: Shards = EVERY) -> datetime | None:
        """When the earliest waiting job of ``shards``' servers is due (only among those due later than
        ``after``, if given)."""
        where, params = shards.where()
        if after is None:
            row = await self._storage.fetch_one(NEXT_DUE.format(shards=where), params)
        else:
            row = await self._storage.fetch_one(NEXT_DUE_AFTER.format(shards=where), (to_text(after), *params))
        return None if row is None or row[0] is None else from_text(row[0])

    async def next_lapse(self, owner: str, *, shards: Shards = EVERY) -> datetime | None:
        """When the earliest lease of a job of ``shards``' servers held by another owner runs out (real time):
        if that owner died, the job is this process's to take then."""
        where, params = shards.where()
        row = await self._storage.fetch_one(NEXT_LAPSE.format(shards=where), (owner, *params))
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
