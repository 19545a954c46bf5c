"""The SQL of the command-sync record."""

from __future__ import annotations

from datetime import datetime

from bot.clock import to_text
from bot.storage import Storage

SELECT_HASH = "SELECT payload_hash FROM command_sync WHERE scope = ?"
UPSERT_HASH = """
INSERT INTO command_sync (scope, payload_hash, synced_at) VALUES (?, ?, ?)
ON CONFLICT (scope) DO UPDATE SET payload_hash = excluded.payload_hash, synced_at = excluded.synced_at
"""


class CommandSyncStore:
    def __init__(self, storage: Storage) -> None:
        self._storage = storage

    async def last_hash(self, scope: str) -> str | None:
        row = await self._storage.fetch_one(SELECT_HASH, (scope,))
        return None if row is None else str(row["payload_hash"])

    async def record(self, scope: str, payload_hash: str, now: datetime) -> None:
        async with self._storage.transaction() as tx:
            await tx.execute(UPSERT_HASH, (scope, payload_hash, to_text(now)))
