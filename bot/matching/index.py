"""One server's members as arrays, kept current as profiles change, for ``/match suggest``.

A suggestion scores the asker against every member at once (``ScoreColumns.units``), applies the rule
the same way (``RuleColumns.exclude``), and keeps the best few; only those are scored again in floats. Their
reasons are the caller's to give (``reasons`` of the two candidates, read fresh): the index keeps no
``Candidate`` of anyone, only what the rule and the score need of them in columns, and those as arrays with
no Python object a member (bot/matching/slots.py: each member's slot, their tags and terms, the history's
pairs), so a server of 100,000 costs about 30 MB, a round's history included (180 MB with candidates, 60 MB
with tuples and dicts of them; bench/index_memory.py).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray

from bot.matching.model import Candidate, History, Suggestion
from bot.matching.rules import RuleColumns
from bot.matching.score import ScoreColumns, cut_units
from bot.matching.slots import Links, Slots, history_links, linked_history

# An index is sparse once its retired slots outnumber the live ones (and there are this many): a profile
# edit appends a slot, so a busy server's index is built again now and then (by its owner, from fresh
# candidates) instead of shifting arrays on every edit.
_COMPACT_FROM: Final = 1024


@dataclass(frozen=True)
class PreparedHistory:
    """What the index keeps of a history: its pairs as arrays, both ways round (``Links``), and the history
    read from them. Worked out from the history alone, so in any thread."""

    links: Links
    history: History

    @classmethod
    def of(cls, history: History) -> PreparedHistory:
        links = history_links(history)
        return cls(links, linked_history(links))


class Members:
    """Candidates in numbered slots, with the rule's columns and the score's side by side.

    ``add`` appends; ``retire`` leaves a slot that nobody can be matched with. Slots are never reused, so
    a row computed for a slot stays aligned with the columns.
    """

    def __init__(self, candidates: Iterable[Candidate], history: History, capacity: int = 0) -> None:
        self.slot_of = Slots()   # each slot's member, and each member's slot
        self.rules = RuleColumns(self.slot_of)
        self.scores = ScoreColumns(self.slot_of)
        self.rules.reserve(capacity)
        self.scores.reserve(capacity)
        self.set_history(history)
        self.extend(list(candidates))

    @property
    def capacity(self) -> int:
        return self.rules.capacity

    @property
    def size(self) -> int:
        """Slots taken, live or retired."""
        return self.slot_of.size

    @property
    def user_ids(self) -> NDArray[np.int64]:
        """Each slot's member (entries past ``size`` are padding)."""
        return self.slot_of.user_ids

    def extend(self, candidates: Sequence[Candidate]) -> None:
        """Put ``candidates`` in the next slots, in order; a member already held moves to their new slot."""
        user_ids = np.fromiter((candidate.user_id for candidate in candidates), np.int64, len(candidates))
        if len(np.unique(user_ids)) != len(user_ids):
            raise ValueError("a member appears twice")
        for old in self.slot_of.slots(user_ids).tolist():
            if old >= 0:
                self.rules.retire(old)
        self.rules.extend(candidates)
        self.scores.extend(candidates)
        self.slot_of.add(user_ids)
        if self.rules.capacity != self.scores.capacity:
            raise AssertionError("rule and score columns out of step")

    def retire(self, slot: int) -> None:
        user_id = int(self.user_ids[slot])
        if self.slot_of.slot(user_id) == slot:
            self.rules.retire(slot)
            self.slot_of.remove(user_id)

    def set_history(self, history: History) -> None:
        self.use_history(PreparedHistory.of(history))

    def use_history(self, prepared: PreparedHistory) -> None:
        self.history = prepared.history
        self.rules.set_links(prepared.links)
        self.scores.set_links(prepared.links)

    def rows(self, slots: Sequence[int], block: NDArray[np.uint8]) -> NDArray[np.uint8]:
        """The scores in units of ``slots`` (a row each) against every slot, 0 where the rule keeps
        them apart."""
        self.scores.units(slots, block)
        self.rules.exclude(slots, block)
        return block


class MatchIndex:
    """The members of one server who could be suggested, and what suggesting needs of them.

    Not thread-safe: the owner calls it from one thread (or holds a lock around it).
    """

    def __init__(self, candidates: Iterable[Candidate], history: History) -> None:
        self._members = Members(candidates, history)

    def __len__(self) -> int:
        return len(self._members.slot_of)

    def __contains__(self, user_id: int) -> bool:
        return user_id in self._members.slot_of

    def __iter__(self) -> Iterator[int]:
        """The user ids of the members held."""
        return iter(self._members.slot_of)

    @property
    def history(self) -> History:
        """The history the index keeps members apart by (and the reasons are told from), read from the arrays
        it keeps: each pair both ways round."""
        return self._members.history

    @property
    def sparse(self) -> bool:
        """Whether edits have left more retired slots than live ones: time to build the index again."""
        retired = self._members.size - len(self)
        return retired >= _COMPACT_FROM and retired > len(self)

    def upsert(self, candidate: Candidate) -> None:
        """Add a member, or replace what is known of them (their slot moves to the end)."""
        self._members.extend([candidate])

    def remove(self, user_id: int) -> None:
        slot = self._members.slot_of.slot(user_id)
        if slot >= 0:
            self._members.retire(slot)

    def set_history(self, history: History) -> None:
        self._members.set_history(history)

    def use_history(self, prepared: PreparedHistory) -> None:
        """``set_history`` with what the index keeps of the history worked out beforehand, in any thread
        (``PreparedHistory.of``): only this, which takes no time, needs the thread that uses the index."""
        self._members.use_history(prepared)

    def forget_caches(self) -> None:
        """Drop what the columns keep only to go faster (before the index is packed: ``worker.pack_index``)."""
        self._members.rules.forget_caches()
        self._members.scores.forget_caches()

    def available(self, user_id: int) -> bool | None:
        """Whether the member may be matched now (None: the index does not hold them)."""
        slot = self._members.slot_of.slot(user_id)
        return None if slot < 0 else self._members.rules.available(slot)

    def suggest(self, user_id: int, k: int = 3, exclude: Collection[int] = ()) -> list[Suggestion]:
        """The ``k`` members who fit ``user_id`` best among those the rule allows, best first (equal
        scores by user id), without their reasons (``reasons`` of the two candidates gives them)."""
        members = self._members
        slot = members.slot_of.slot(user_id)
        if slot < 0 or k <= 0:
            return []
        block = members.rows([slot], np.empty((1, members.capacity), np.uint8))
        row = block[0]
        if exclude:
            hidden = members.slot_of.slots(np.fromiter(exclude, np.int64, len(exclude)))
            row[hidden[hidden >= 0]] = 0
        # Everyone who can be among the best k holds at least the cut; floats then settle the order.
        others = np.flatnonzero(row >= cut_units(block, k)[0])
        scores = members.scores.exact(slot, others, row[others])
        best = np.lexsort((members.user_ids[others], -scores))[:k]
        return [Suggestion(int(members.user_ids[others[position]]), float(scores[position]), ())
                for position in best]
