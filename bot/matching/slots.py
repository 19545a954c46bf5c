"""Members in numbered slots, what is kept of each, and who met whom, as arrays that grow: no Python object a
member.

A server's suggestion index (bot/matching/index.py) holds every member for as long as the bot runs, and a round
holds them all at once, so what they keep of a member is numbers in arrays: ``Slots`` gives a member's slot from
their user id, ``Rows`` a list of ints for each slot (the tags, terms and companies avoided of its member), and
``Links`` the pairs of a history by user id, both ways round. An object a member (a dict entry, a tuple, an int
unpickled on its own) costs 30-100 bytes and is one more for the cycle collector to walk: a 100,000-member index
held 0.7 million of them, 2 million with a round's history, and holds under 20,000 now (its vocabularies: companies,
tags, terms). Appending to these arrays costs amortised constant time: they grow by doubling.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from typing import Final, TypeVar

import numpy as np
from numpy.typing import NDArray

from bot.matching.model import History

_T = TypeVar("_T", bound=np.generic)

# What links two members in a history (bits, so that one pair can be linked in several ways).
LINK_MET: Final = 1        # grouped in a recent round, or introduced by an accepted request
LINK_DECLINED: Final = 2   # a request between them was declined
LINK_THREAD: Final = 4     # both replied in a prompt thread


def grown(array: NDArray[_T], capacity: int) -> NDArray[_T]:
    """``array`` zero-padded to ``capacity`` entries (or itself, when it is long enough already)."""
    if capacity <= len(array):
        return array
    bigger = np.zeros(capacity, dtype=array.dtype)
    bigger[:len(array)] = array
    return bigger


def _room(array: NDArray[_T], needed: int) -> NDArray[_T]:
    """``array`` with room for ``needed`` entries: at least twice as long when it grows, so appends are cheap."""
    return array if needed <= len(array) else grown(array, max(needed, 2 * len(array)))


class Rows:
    """A list of ints for each slot, slots appended in order: slot ``s``'s list is
    ``values[starts[s]:starts[s + 1]]``."""

    def __init__(self) -> None:
        self.size = 0
        self._starts = np.zeros(1, np.int64)
        self._values = np.zeros(0, np.int32)

    @property
    def starts(self) -> NDArray[np.int64]:
        return self._starts[:self.size + 1]

    @property
    def values(self) -> NDArray[np.int32]:
        return self._values[:self._starts[self.size]]

    def extend(self, lists: Sequence[Sequence[int]]) -> None:
        """Append a slot for each of ``lists``."""
        first, end = self.size, self.size + len(lists)
        ends = list(itertools.accumulate(map(len, lists), initial=int(self._starts[first])))
        self._starts = _room(self._starts, end + 1)
        self._starts[first + 1:end + 1] = ends[1:]
        self._values = _room(self._values, ends[-1])
        self._values[ends[0]:ends[-1]] = np.fromiter(itertools.chain.from_iterable(lists), np.int32,
                                                     ends[-1] - ends[0])
        self.size = end

    def ids(self, slot: int) -> tuple[int, ...]:
        start, end = self._starts[slot:slot + 2].tolist()
        return tuple(self._values[start:end].tolist())

    def all_ids(self) -> list[tuple[int, ...]]:
        """``ids`` of every slot (one conversion of the whole array, not one a slot)."""
        values, starts = self.values.tolist(), self.starts.tolist()
        return [tuple(values[start:end]) for start, end in itertools.pairwise(starts)]

    def csr(self) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Every slot's list as (starts, values), starts with one more entry, the end: copies in 64 bits, as
        compiled code takes them."""
        return self.starts.copy(), self.values.astype(np.int64)

    def slots_at(self, positions: NDArray[np.intp]) -> NDArray[np.intp]:
        """The slot each position of ``values`` belongs to."""
        found: NDArray[np.intp] = np.searchsorted(self.starts, positions, "right") - 1
        return found


class Slots(Mapping[int, int]):
    """Members in numbered slots, appended in order: each slot's member (``user_ids``), and each member's slot
    as a mapping from user id to slot (and ``slots``, for many at once), held as two arrays sorted by user id.

    A member added again moves to the new slot; a slot is never reused. A member let go (``remove``) keeps their
    entry, with no slot, until the index is built again.
    """

    def __init__(self) -> None:
        self.size = 0                              # slots taken, whether their member is still there or not
        self.user_ids = np.zeros(0, np.int64)      # slot -> its member (grown by doubling: read the first size)
        self._users = np.zeros(0, np.int64)        # every member added, ascending
        self._slot = np.zeros(0, np.int64)         # ... and their slot now (-1: let go)
        self._held = 0

    def add(self, user_ids: NDArray[np.int64]) -> None:
        """Put ``user_ids`` (distinct) in the next slots, in order."""
        first = self.size
        self.size += len(user_ids)
        self.user_ids = _room(self.user_ids, self.size)
        self.user_ids[first:self.size] = user_ids
        slots = np.arange(first, self.size, dtype=np.int64)
        at = np.searchsorted(self._users, user_ids)
        known = at < len(self._users)
        known[known] = self._users[at[known]] == user_ids[known]
        self._held += len(user_ids) - int(np.count_nonzero(self._slot[at[known]] >= 0))
        self._slot[at[known]] = slots[known]
        new = np.flatnonzero(~known)
        if len(new):
            order = new[np.argsort(user_ids[new])]
            self._users = np.insert(self._users, at[order], user_ids[order])
            self._slot = np.insert(self._slot, at[order], slots[order])

    def remove(self, user_id: int) -> None:
        at = self._at(user_id)
        if at >= 0 and self._slot[at] >= 0:
            self._slot[at] = -1
            self._held -= 1

    def _at(self, user_id: int) -> int:
        at = int(self._users.searchsorted(user_id))
        return at if at < len(self._users) and self._users[at] == user_id else -1

    def slot(self, user_id: int) -> int:
        """The member's slot; -1 when they hold none."""
        at = self._at(user_id)
        return -1 if at < 0 else int(self._slot[at])

    def slots(self, user_ids: NDArray[np.int64]) -> NDArray[np.int64]:
        """``slot`` of each of ``user_ids``."""
        if not len(self._users):
            return np.full(len(user_ids), -1, np.int64)
        at = self._users.searchsorted(user_ids)
        np.minimum(at, len(self._users) - 1, out=at)
        found: NDArray[np.int64] = self._slot[at]
        found[self._users[at] != user_ids] = -1
        return found

    def __getitem__(self, user_id: int) -> int:
        slot = self.slot(user_id)
        if slot < 0:
            raise KeyError(user_id)
        return slot

    def __contains__(self, user_id: object) -> bool:
        return isinstance(user_id, int | np.integer) and self.slot(int(user_id)) >= 0

    def __iter__(self) -> Iterator[int]:
        return iter(self._users[self._slot >= 0].tolist())

    def __len__(self) -> int:
        return self._held


class Links:
    """The pairs of a history by user id, each both ways round, with what links them (a ``LINK_MET``, ``LINK_DECLINED``
    or ``LINK_THREAD`` bit each, or several): the members linked to ``users[i]`` are
    ``users[others[starts[i]:starts[i + 1]]]``, linked by ``kinds[starts[i]:starts[i + 1]]``. A pair given one
    way round is kept both ways, and a member linked to themselves not at all: the rule and the score read a
    history both ways and never pair a member with themselves."""

    def __init__(self, users: NDArray[np.int64], starts: NDArray[np.int64], others: NDArray[np.int32],
                 kinds: NDArray[np.uint8]) -> None:
        self.users = users
        self.starts = starts
        self.others = others
        self.kinds = kinds

    @classmethod
    def of(cls, maps: Iterable[tuple[int, Mapping[int, Collection[int]]]]) -> Links:
        """The pairs of each mapping (a member to the members linked to them) with its kind of link."""
        ones: list[NDArray[np.int64]] = [np.zeros(0, np.int64)]
        others: list[NDArray[np.int64]] = [np.zeros(0, np.int64)]
        bits: list[NDArray[np.uint8]] = [np.zeros(0, np.uint8)]
        for bit, linked in maps:
            counts = np.fromiter(map(len, linked.values()), np.int64, len(linked))
            one = np.repeat(np.fromiter(linked.keys(), np.int64, len(linked)), counts)
            other = np.fromiter(itertools.chain.from_iterable(linked.values()), np.int64, int(counts.sum()))
            ones += [one, other]
            others += [other, one]
            bits.append(np.full(2 * len(one), bit, np.uint8))
        a, b, kind = np.concatenate(ones), np.concatenate(others), np.concatenate(bits)
        apart = a != b
        a, b, kind = a[apart], b[apart], kind[apart]
        order = np.lexsort((b, a))
        a, b, kind = a[order], b[order], kind[order]
        first = np.ones(len(a), np.bool_)
        first[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
        at = np.flatnonzero(first)
        kind = np.bitwise_or.reduceat(kind, at) if len(at) else kind
        a, b = a[at], b[at]
        users = np.unique(a)   # every b is among them too: each pair is there both ways round
        starts = np.append(np.searchsorted(a, users), len(a)).astype(np.int64)
        return cls(users, starts, np.searchsorted(users, b).astype(np.int32), kind)

    def _row(self, user_id: int) -> int:
        at = int(self.users.searchsorted(user_id))
        return at if at < len(self.users) and self.users[at] == user_id else -1

    def linked(self, user_id: int, kinds: int) -> NDArray[np.int64]:
        """The members linked to ``user_id`` in any of the ways ``kinds`` (bits) names."""
        row = self._row(user_id)
        if row < 0:
            return self.users[:0]
        start, end = self.starts[row:row + 2].tolist()
        found: NDArray[np.int64] = self.users[self.others[start:end][self.kinds[start:end] & kinds != 0]]
        return found

    def linked_slots(self, kinds: int, slots: Slots, n: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """For each of the first ``n`` slots, the slots of the members linked to its member in any of the ways
        ``kinds`` names, as (starts, values) like ``Rows.csr``: only members who hold a slot, never the slot
        itself."""
        rows = np.full(n, -1, np.int64)
        if len(self.users):
            users = slots.user_ids[:n]
            at = np.minimum(np.searchsorted(self.users, users), len(self.users) - 1)
            rows = np.where(self.users[at] == users, at, -1)
        counts = np.where(rows >= 0, self.starts[rows + 1] - self.starts[np.maximum(rows, 0)], 0)
        slot = np.repeat(np.arange(n, dtype=np.int64), counts)
        # Where each slot's links lie: its row's start, counted on from there.
        at = np.repeat(self.starts[np.maximum(rows, 0)] - (np.cumsum(counts) - counts), counts) + np.arange(len(slot))
        linked = slots.slots(self.users[self.others[at]])
        keep = ((self.kinds[at] & kinds) != 0) & (linked >= 0) & (linked != slot)
        starts = np.zeros(n + 1, np.int64)
        np.cumsum(np.bincount(slot[keep], minlength=n), out=starts[1:])
        return starts, linked[keep]


class Linked(Mapping[int, frozenset[int]]):
    """One way of ``Links`` (the ``kinds`` bits) as the mapping a ``History`` holds: each member to the members
    linked to them that way. Read from the arrays on each look-up."""

    def __init__(self, links: Links, kinds: int) -> None:
        self.links = links
        self.kinds = kinds

    def __getitem__(self, user_id: int) -> frozenset[int]:
        found = self.links.linked(user_id, self.kinds)
        if not len(found):
            raise KeyError(user_id)
        return frozenset(found.tolist())

    def _linked(self) -> NDArray[np.int64]:
        links = self.links
        if not len(links.users):
            return links.users
        each = np.bitwise_or.reduceat(links.kinds, links.starts[:-1])   # every user has a link: no row is empty
        found: NDArray[np.int64] = links.users[(each & self.kinds) != 0]
        return found

    def __iter__(self) -> Iterator[int]:
        return iter(self._linked().tolist())

    def __len__(self) -> int:
        return len(self._linked())


def history_links(history: History) -> Links:
    """The pairs of ``history`` as ``Links``: those it is read from when it is (``linked_history``), else
    made from its mappings."""
    maps = ((LINK_MET, history.met), (LINK_DECLINED, history.declined), (LINK_THREAD, history.threads))
    links = history.met.links if isinstance(history.met, Linked) else None
    if all(isinstance(linked, Linked) and linked.links is links and linked.kinds == kind for kind, linked in maps):
        assert links is not None
        return links
    return Links.of(maps)


def linked_history(links: Links) -> History:
    """A ``History`` read from ``links``."""
    return History(met=Linked(links, LINK_MET), declined=Linked(links, LINK_DECLINED),
                   threads=Linked(links, LINK_THREAD))
