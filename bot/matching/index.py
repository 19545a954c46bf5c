"""One server's members as arrays, kept current as profiles change, for ``/match suggest``.

A suggestion scores the asker against every member at once (``ScoreColumns.units``), applies the rule
the same way (``RuleColumns.exclude``), and keeps the best few; only those are scored again in floats
and given their reasons.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Final

import numpy as np
from numpy.typing import NDArray

from bot.matching.model import SELF, UNAVAILABLE, YOU_UNAVAILABLE, Candidate, History, Suggestion
from bot.matching.rules import RuleColumns, grown, kept_apart, why_not
from bot.matching.score import ScoreColumns, cut_units, reasons

# Retired slots are dropped once they outnumber the live ones (and there are this many): a profile edit
# appends a slot, so a busy server compacts now and then instead of shifting arrays on every edit.
_COMPACT_FROM: Final = 1024


@dataclass(frozen=True)
class PreparedHistory:
    """What the index keeps of a history: for each member, who the rule keeps them from and who shared a
    prompt thread with them, both ways round. Worked out from the history alone, so in any thread."""

    history: History
    apart: dict[int, frozenset[int]]
    shared: dict[int, frozenset[int]]

    @classmethod
    def of(cls, history: History) -> PreparedHistory:
        return cls(history, kept_apart(history), kept_apart(History(met=history.threads)))


class Members:
    """Candidates in numbered slots, with the rule's columns and the score's side by side.

    ``add`` appends; ``retire`` leaves a slot that nobody can be matched with. Slots are never reused, so
    a row computed for a slot stays aligned with the columns.
    """

    def __init__(self, candidates: Iterable[Candidate], history: History, capacity: int = 0) -> None:
        self.slot_of: dict[int, int] = {}
        self.members: list[Candidate | None] = []
        self.user_ids = np.zeros(0, np.int64)
        self.rules = RuleColumns(self.slot_of)
        self.scores = ScoreColumns(self.slot_of)
        self.rules.reserve(capacity)
        self.scores.reserve(capacity)
        self.set_history(history)
        self.extend(list(candidates))

    @property
    def capacity(self) -> int:
        return self.rules.capacity

    def extend(self, candidates: Sequence[Candidate]) -> None:
        """Put ``candidates`` in the next slots, in order; a member already held moves to their new slot."""
        if len({candidate.user_id for candidate in candidates}) != len(candidates):
            raise ValueError("a member appears twice")
        for candidate in candidates:
            old = self.slot_of.get(candidate.user_id)
            if old is not None:
                self.retire(old)
        first = len(self.members)
        self.rules.extend(candidates)
        self.scores.extend(candidates)
        self.members.extend(candidates)
        self.user_ids = grown(self.user_ids, self.rules.capacity)
        self.user_ids[first:len(self.members)] = [candidate.user_id for candidate in candidates]
        self.slot_of.update((candidate.user_id, slot) for slot, candidate in enumerate(candidates, first))
        if self.rules.capacity != self.scores.capacity:
            raise AssertionError("rule and score columns out of step")

    def retire(self, slot: int) -> None:
        member = self.members[slot]
        if member is not None:
            self.rules.retire(slot)
            self.members[slot] = None
            if self.slot_of.get(member.user_id) == slot:
                del self.slot_of[member.user_id]

    def set_history(self, history: History) -> None:
        self.use_history(PreparedHistory.of(history))

    def use_history(self, prepared: PreparedHistory) -> None:
        self.history = prepared.history
        self.rules.set_apart(prepared.apart)
        self.scores.set_shared(prepared.shared)

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

    def upsert(self, candidate: Candidate) -> None:
        """Add a member, or replace what is known of them (their slot moves to the end)."""
        self._members.extend([candidate])
        self._compact_if_sparse()

    def remove(self, user_id: int) -> None:
        slot = self._members.slot_of.get(user_id)
        if slot is not None:
            self._members.retire(slot)
            self._compact_if_sparse()

    def set_history(self, history: History) -> None:
        self._members.set_history(history)

    def use_history(self, prepared: PreparedHistory) -> None:
        """``set_history`` with what the index keeps of the history worked out beforehand, in any thread
        (``PreparedHistory.of``): only this, which takes no time, needs the thread that uses the index."""
        self._members.use_history(prepared)

    def _compact_if_sparse(self) -> None:
        live_count = len(self)
        retired = len(self._members.members) - live_count
        if retired >= _COMPACT_FROM and retired > live_count:
            live = [member for member in self._members.members if member is not None]
            self._members = Members(live, self._members.history, capacity=len(live))

    def candidate(self, user_id: int) -> Candidate | None:
        slot = self._members.slot_of.get(user_id)
        return None if slot is None else self._members.members[slot]

    def why_not(self, a_id: int, b_id: int) -> str | None:
        """The rule for two members, told to ``a_id``; someone the index does not hold is unavailable."""
        if a_id == b_id:
            return SELF
        a, b = self.candidate(a_id), self.candidate(b_id)
        if a is None:
            return YOU_UNAVAILABLE
        if b is None:
            return UNAVAILABLE
        return why_not(a, b, self._members.history)

    def suggest(self, user_id: int, k: int = 3, exclude: Collection[int] = ()) -> list[Suggestion]:
        """The ``k`` members who fit ``user_id`` best among those the rule allows, best first (equal
        scores by user id), with the reasons told to ``user_id``."""
        members = self._members
        slot = members.slot_of.get(user_id)
        if slot is None or k <= 0:
            return []
        asker = members.members[slot]
        assert asker is not None
        block = members.rows([slot], np.empty((1, members.capacity), np.uint8))
        row = block[0]
        if exclude:
            hidden = np.fromiter((members.slot_of.get(other, -1) for other in exclude), np.intp)
            row[hidden[hidden >= 0]] = 0
        # Everyone who can be among the best k holds at least the cut; floats then settle the order.
        others = np.flatnonzero(row >= cut_units(block, k)[0])
        scores = members.scores.exact(slot, others, row[others])
        best = np.lexsort((members.user_ids[others], -scores))[:k]
        suggestions = []
        for position in best:
            other = members.members[int(others[position])]
            assert other is not None
            suggestions.append(Suggestion(other.user_id, float(scores[position]),
                                          reasons(asker, other, members.history)))
        return suggestions
