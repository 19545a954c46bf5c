"""Which servers this process looks after: the shards it runs, of how many.

Discord puts each server on one shard, ``(guild_id >> 22) % shard_count``, and sends its events on that
shard's connection only. A process runs some shards (``SHARD_IDS`` of ``SHARD_COUNT``), so it hears from, and
does the due work of, exactly the servers on them: the outbox claims only their jobs, the tickers look only
at their schedules, and the caches hold only them. With neither setting, one process runs every shard.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final


def shard_of(guild_id: int, shard_count: int) -> int:
    """The shard Discord sends a server's events on."""
    return (guild_id >> 22) % shard_count


@dataclass(frozen=True)
class Shards:
    count: int = 1
    ids: frozenset[int] = field(default_factory=lambda: frozenset({0}))

    def __post_init__(self) -> None:
        if self.count < 1 or not self.ids or not all(0 <= shard < self.count for shard in self.ids):
            raise ValueError(f"shards {sorted(self.ids)} are not shards of {self.count}")

    @property
    def every(self) -> bool:
        """This process runs every shard: every server is its own."""
        return len(self.ids) == self.count

    @property
    def first(self) -> bool:
        """This process runs shard 0, which does what a deployment does once (syncing its commands)."""
        return 0 in self.ids

    def owns(self, guild_id: int) -> bool:
        return self.every or shard_of(guild_id, self.count) in self.ids

    def where(self, column: str = "guild_id") -> tuple[str, tuple[int, ...]]:
        """An ``AND …`` to add to a query's conditions, keeping only this process's servers, and its
        parameters; nothing when every server is this process's."""
        if self.every:
            return "", ()
        marks = ", ".join("?" for _ in self.ids)
        return f" AND (({column} >> 22) % ?) IN ({marks})", (self.count, *sorted(self.ids))

    def describe(self) -> str:
        return "every shard" if self.every else f"shards {','.join(map(str, sorted(self.ids)))} of {self.count}"


EVERY: Final = Shards()
