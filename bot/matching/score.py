"""How well two members fit: one score, the same both ways round, and the reasons behind it.

Every eligible pair starts at ``BASE`` so that placing a member always beats leaving them out; shared
interests, an offer that meets a seek (each direction), nearby time zones and a prompt thread both
replied in add to it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import replace
from types import MappingProxyType
from typing import Any, Final, NamedTuple

import numpy as np
from numpy.typing import NDArray

from bot.intros.profile import tag_key
from bot.matching.model import (
    REASON_INTERESTS,
    REASON_SAME_TIMEZONE,
    REASON_THEY_OFFER,
    REASON_THREAD,
    REASON_TIMEZONE,
    REASON_YOU_OFFER,
    Candidate,
    History,
    Reason,
)
from bot.matching.rules import BLOCK, linked
from bot.matching.slots import LINK_THREAD, Links, Rows, Slots, grown
from bot.matching.terms import phrase_terms

BASE: Final = 1.0
PER_INTEREST: Final = 2.0
MOST_INTERESTS: Final = 3
OFFER: Final = 3.0
TIMEZONE: Final = 2.0
TIMEZONE_HOURS: Final = 12.0       # the bonus falls to nothing at this many hours apart
TIMEZONE_REASON_HOURS: Final = 3.0  # further apart than this, a time zone is no reason worth showing
THREAD: Final = 2.0
# With weights tied, reasons are shown in this order.
_REASON_ORDER: Final = (REASON_THEY_OFFER, REASON_YOU_OFFER, REASON_INTERESTS, REASON_THREAD,
                        REASON_SAME_TIMEZONE, REASON_TIMEZONE)


def hours_apart(x: float, y: float) -> float:
    """Hours between two UTC offsets around the clock: +9 and -10 are 5 hours apart, not 19."""
    d = abs(x - y) % 24.0
    return min(d, 24.0 - d)


def timezone_bonus(x: float | None, y: float | None) -> float:
    if x is None or y is None:
        return 0.0
    return TIMEZONE * max(0.0, 1.0 - hours_apart(x, y) / TIMEZONE_HOURS)


def shared_interests(a: Candidate, b: Candidate) -> list[str]:
    """The tag keys ``a`` and ``b`` share, in a stable order."""
    return sorted(a.interests & b.interests)


def terms_of(phrase_list: tuple[str, ...]) -> frozenset[str]:
    return frozenset().union(*map(phrase_terms, phrase_list))


def meeting_offer(offers: tuple[str, ...], seeks: tuple[str, ...]) -> str | None:
    """The first offered phrase that shares a term with one of the sought ones, if any."""
    sought = terms_of(seeks)
    if not sought:
        return None
    return next((phrase for phrase in offers if phrase_terms(phrase) & sought), None)


def reasons(a: Candidate, b: Candidate, history: History, limit: int = 3) -> tuple[Reason, ...]:
    """Why ``b`` fits ``a``, told to ``a``: the strongest first, each weighing what it adds to the score."""
    found: list[Reason] = []
    shared = shared_interests(a, b)
    if shared:
        counted = shared[:MOST_INTERESTS]
        found.append(Reason(REASON_INTERESTS, MappingProxyType({"topics": tuple(counted)}),
                            PER_INTEREST * len(counted)))
    theirs = meeting_offer(b.offers, a.seeks)
    if theirs is not None:
        found.append(Reason(REASON_THEY_OFFER, MappingProxyType({"what": theirs}), OFFER))
    mine = meeting_offer(a.offers, b.seeks)
    if mine is not None:
        found.append(Reason(REASON_YOU_OFFER, MappingProxyType({"what": mine}), OFFER))
    if linked(history.threads, a.user_id, b.user_id):
        found.append(Reason(REASON_THREAD, weight=THREAD))
    if a.utc_offset is not None and b.utc_offset is not None:
        d = hours_apart(a.utc_offset, b.utc_offset)
        if d == 0:
            found.append(Reason(REASON_SAME_TIMEZONE, weight=TIMEZONE))
        elif d <= TIMEZONE_REASON_HOURS:
            found.append(Reason(REASON_TIMEZONE, MappingProxyType({"hours": round(d)}),
                                timezone_bonus(a.utc_offset, b.utc_offset)))
    found.sort(key=lambda reason: (-reason.weight, _REASON_ORDER.index(reason.key)))
    return tuple(found[:limit])


def in_own_words(found: tuple[Reason, ...], tags: Iterable[str]) -> tuple[Reason, ...]:
    """``found`` with the shared topics named as their reader wrote them (``tags``: the reader's interests
    as written; "Supply Chain", not the key "supply chain")."""
    written = {tag_key(tag): tag for tag in tags}

    def told(reason: Reason) -> Reason:
        topics = reason.values.get("topics")
        if reason.key != REASON_INTERESTS or not isinstance(topics, tuple):
            return reason
        return replace(reason, values=MappingProxyType({
            **reason.values, "topics": tuple(written.get(key, key) for key in topics)}))

    return tuple(map(told, found))


def score(a: Candidate, b: Candidate, history: History) -> float:
    """How well ``a`` and ``b`` fit; ``score(a, b) == score(b, a)``. Eligibility is the rule's business:
    this scores any two members."""
    total = BASE + PER_INTEREST * min(MOST_INTERESTS, len(shared_interests(a, b)))
    if terms_of(b.offers) & terms_of(a.seeks):
        total += OFFER
    if terms_of(a.offers) & terms_of(b.seeks):
        total += OFFER
    if linked(history.threads, a.user_id, b.user_id):
        total += THREAD
    # Whole points first, the time zone's fraction last: the arrays add in the same order, so the two
    # agree to the bit.
    return total + timezone_bonus(a.utc_offset, b.utc_offset)


# --- many members at once --------------------------------------------------------------------------------
#
# One member is scored against many in integer units of 1/12 point, a byte each: every component but the
# time zone is a whole number of units, and the time zone's is rounded up, so ``units >= 12 * score``
# always, with equality for offsets half an hour apart or more. Rounding up keeps whatever is derived
# from units an upper bound (the round's bound relies on that), and ``ScoreColumns.exact`` restores the
# float from the units and the two zones.

UNITS: Final = 12
BASE_UNITS: Final = round(BASE * UNITS)
INTEREST_UNITS: Final = round(PER_INTEREST * UNITS)
OFFER_UNITS: Final = round(OFFER * UNITS)
THREAD_UNITS: Final = round(THREAD * UNITS)
MOST_UNITS: Final = (BASE_UNITS + INTEREST_UNITS * MOST_INTERESTS + 2 * OFFER_UNITS + round(TIMEZONE * UNITS)
                     + THREAD_UNITS)
assert MOST_UNITS <= 255, "scores in units must fit one byte"
assert all(abs(weight * UNITS - round(weight * UNITS)) < 1e-9 for weight in (BASE, PER_INTEREST, OFFER, THREAD))


def timezone_units(x: float | None, y: float | None) -> int:
    """The time zone bonus in units, rounded up (a hair below a whole unit counts as that unit, so that
    float noise never adds one)."""
    return max(0, math.ceil(timezone_bonus(x, y) * UNITS - 1e-9))


class Postings(NamedTuple):
    """``_Postings`` as arrays: for id ``t``, ``dense[dense_of[t]]`` is its row when it has one
    (``dense_of[t] >= 0``), else ``sparse[sparse_at[t]:sparse_at[t + 1]]`` are the slots holding it."""

    dense_of: NDArray[np.int64]
    dense: NDArray[np.uint8]
    sparse_at: NDArray[np.int64]
    sparse: NDArray[np.int64]


class ScoreArrays(NamedTuple):
    """``ScoreColumns`` as arrays, for compiled code; lists per slot are (starts, values) pairs."""

    base: NDArray[np.uint8]                              # zone × capacity: base and time zone units
    zone: NDArray[np.int64]
    tags: tuple[NDArray[np.int64], NDArray[np.int64]]
    seeks: tuple[NDArray[np.int64], NDArray[np.int64]]
    offers: tuple[NDArray[np.int64], NDArray[np.int64]]
    threads: tuple[NDArray[np.int64], NDArray[np.int64]]
    tag_postings: Postings
    offer_postings: Postings                             # who offers each term
    seek_postings: Postings                              # who seeks each term
    zone_units: NDArray[np.uint8]                        # zone × zone: the time zone bonus in units
    zone_scores: NDArray[np.float64]                     # ... and as the score has it


class _Postings:
    """Which slots hold each id (a tag, a term), adding ``value`` units to those slots in a row.

    An id that many slots hold is a row of bytes, added with one vector operation; a rare one is a list
    of slots, added by index; so a row costs the same whether a server has forty tags or forty thousand.
    The lists are ``held`` (each slot's ids) turned round: one array of slots, by id, for the slots below
    ``_upto``; the ids of the slots added since are read from ``held`` itself, until there are enough of them
    to turn it round again (so an edit costs no copy of the whole array, and a look-up reads few of them).
    """

    def __init__(self, value: int, held: Rows) -> None:
        self._value = value
        self._held = held
        self._capacity = 0
        self._dense_of = np.zeros(0, np.int64)      # id -> its row in _dense, -1 for none
        self._dense: list[NDArray[np.uint8]] = []   # the rows of the common ids
        self._upto = 0
        self._starts = np.zeros(1, np.int64)        # id -> where its slots below _upto start in _slots
        self._slots = np.zeros(0, np.int32)

    def reserve(self, capacity: int) -> None:
        self._capacity = capacity
        self._dense = [grown(row, capacity) for row in self._dense]

    def extend(self, first: int) -> None:
        """Take in the ids of the slots from ``first`` on, just added to ``held``."""
        starts, values = self._held.starts, self._held.values
        begin, since = int(starts[first]), int(starts[self._upto])
        ids = values[begin:]
        if not len(ids):
            return
        top = int(ids.max())
        if top >= len(self._dense_of):
            known = len(self._dense_of)
            self._dense_of = grown(self._dense_of, max(top + 1, 2 * known))
            self._dense_of[known:] = -1
        rows = self._dense_of[ids]
        slots = self._held.slots_at(np.arange(begin, len(values)))
        for row in set(rows[rows >= 0].tolist()):
            self._dense[row][slots[rows == row]] = self._value
        rare = np.unique(ids[rows < 0])
        if len(rare):
            counts = np.bincount(values[since:], minlength=top + 1)[rare]
            listed = rare < len(self._starts) - 1
            counts[listed] += self._starts[rare[listed] + 1] - self._starts[rare[listed]]
            for key in rare[counts > max(_DENSE_FROM, self._capacity // _DENSE_SHARE)].tolist():
                self._make_dense(key)
        if len(values) - since > max(_TURN_FROM, len(self._slots) // _TURN_SHARE):
            self._turn()

    def _make_dense(self, key: int) -> None:
        row = np.zeros(self._capacity, np.uint8)
        row[self._holding(key)] = self._value
        self._dense_of[key] = len(self._dense)
        self._dense.append(row)

    def _turn(self) -> None:
        """The rare ids of the slots added since the last time merged into the lists of slots by id (and
        the ids made common since dropped from them)."""
        starts, values = self._held.starts, self._held.values
        since = int(starts[self._upto])
        ids = np.concatenate([np.repeat(np.arange(len(self._starts) - 1, dtype=np.int32), np.diff(self._starts)),
                              values[since:]])
        slots = np.concatenate([self._slots, self._held.slots_at(np.arange(since, len(values)))])
        rare = self._dense_of[ids] < 0
        ids = ids[rare]
        # Stable: a list's slots stay ascending, those added after those before.
        self._slots = slots[rare][np.argsort(ids, kind="stable")].astype(np.int32)
        self._starts = np.zeros(len(self._dense_of) + 1, np.int64)
        np.cumsum(np.bincount(ids, minlength=len(self._dense_of)), out=self._starts[1:])
        self._upto = self._held.size

    def _holding(self, key: int) -> NDArray[np.signedinteger[Any]]:
        """The slots holding ``key``, a rare id."""
        found: NDArray[np.signedinteger[Any]] = self._slots[self._starts[key]:self._starts[key + 1]] \
            if key < len(self._starts) - 1 else np.zeros(0, np.intp)
        if self._upto == self._held.size:
            return found
        since = self._held.starts[self._upto]
        added = np.flatnonzero(self._held.values[since:] == key)
        if len(added):
            found = np.concatenate([found, self._held.slots_at(added + since)])
        return found

    def _row(self, key: int) -> NDArray[np.uint8] | None:
        row = self._dense_of[key] if key < len(self._dense_of) else -1
        return None if row < 0 else self._dense[row]

    def add_into(self, row: NDArray[np.uint8], ids: tuple[int, ...]) -> None:
        """Add the value to ``row`` once for each of ``ids`` a slot holds."""
        for key in ids:
            dense = self._row(key)
            if dense is not None:
                np.add(row, dense, out=row)
            else:
                row[self._holding(key)] += self._value

    def arrays(self, ids: int) -> Postings:
        """The postings of ids ``0 .. ids - 1`` as arrays (see ``Postings``)."""
        if self._upto < self._held.size:
            self._turn()
        known = min(ids, len(self._dense_of))
        dense_of = np.full(ids, -1, np.int64)
        dense_of[:known] = self._dense_of[:known]
        sparse_at = np.zeros(ids + 1, np.int64)
        sparse_at[1:known + 1] = self._starts[1:known + 1]
        sparse_at[known + 1:] = sparse_at[known]
        dense = np.stack(self._dense or [np.zeros(self._capacity, np.uint8)])
        return Postings(dense_of, dense, sparse_at, self._slots[:sparse_at[-1]].astype(np.int64))

    def any_into(self, row: NDArray[np.uint8], ids: tuple[int, ...]) -> None:
        """Set ``row`` to the value where a slot holds any of ``ids``."""
        for key in ids:
            dense = self._row(key)
            if dense is not None:
                np.maximum(row, dense, out=row)
            else:
                row[self._holding(key)] = self._value


_MEMO_BYTES: Final = 16 << 20   # shared parts of rows ``ScoreColumns.units`` keeps at once
_DENSE_FROM: Final = 64      # slots, at least, before an id is kept as a row of bytes
_DENSE_SHARE: Final = 64     # ... and at least this share (1/64) of the capacity
_TURN_FROM: Final = 1024     # ids of slots added since the lists were turned round, at least, before they are again
_TURN_SHARE: Final = 64      # ... and at least this share (1/64) of the ids in the lists


class _Features(NamedTuple):
    zone: int
    tags: tuple[int, ...]
    seeks: tuple[int, ...]     # term ids
    offers: tuple[int, ...]


class ScoreColumns:
    """What the score needs of members held in numbered slots, to score one against all at once.

    The owner numbers the slots (``add`` appends) and shares its ``Slots``, through which prompt threads
    kept by user id reach slots. ``units`` ignores the rule: ``RuleColumns.exclude`` applies it.
    """

    def __init__(self, slot_of: Slots) -> None:
        self._slot_of = slot_of
        self.size = 0
        self.capacity = 0
        self._zone = np.zeros(0, np.int16)
        self._offsets: list[float | None] = [None]
        self._zone_id: dict[float | None, int] = {None: 0}
        self._tz_units = np.zeros((1, 1), np.uint8)
        self._tz_scores = np.zeros((1, 1), np.float64)
        self._tag_id: dict[str, int] = {}
        self._term_id: dict[str, int] = {}
        self._tags_of: dict[frozenset[str], tuple[int, ...]] = {}
        self._terms_of: dict[tuple[str, ...], tuple[int, ...]] = {}
        self._tags = Rows()     # each slot's tag ids
        self._seeks = Rows()    # ... and term ids
        self._offers = Rows()
        self._tagged = _Postings(INTEREST_UNITS, self._tags)
        self._offered = _Postings(OFFER_UNITS, self._offers)   # who offers each term
        self._sought = _Postings(OFFER_UNITS, self._seeks)
        self._links = Links.of(())
        self._base: dict[int, NDArray[np.uint8]] = {}
        self._most_interests = np.zeros(0, np.uint8)

    def reserve(self, capacity: int) -> None:
        capacity = -(-capacity // BLOCK) * BLOCK
        if capacity > self.capacity:
            self.capacity = capacity
            self._zone = grown(self._zone, capacity)
            for postings in (self._tagged, self._offered, self._sought):
                postings.reserve(capacity)
            self._most_interests = np.full(capacity, INTEREST_UNITS * MOST_INTERESTS, np.uint8)
            self._base.clear()

    def _zone_of(self, offset: float | None) -> int:
        zone = self._zone_id.get(offset)
        if zone is None:
            zone = self._zone_id[offset] = len(self._offsets)
            self._offsets.append(offset)
            self._tz_units = np.array([[timezone_units(x, y) for y in self._offsets] for x in self._offsets],
                                      np.uint8)
            self._tz_scores = np.array([[timezone_bonus(x, y) for y in self._offsets] for x in self._offsets],
                                       np.float64)
            self._base.clear()
        return zone

    def _ids(self, vocabulary: dict[str, int], words: Iterable[str]) -> tuple[int, ...]:
        return tuple(sorted({vocabulary.setdefault(word, len(vocabulary)) for word in words}))

    def _features_of(self, candidate: Candidate) -> _Features:
        # Many members share a tag set, a phrase, a time zone: each distinct one is looked up once.
        tags = self._tags_of.get(candidate.interests)
        if tags is None:
            tags = self._tags_of[candidate.interests] = self._ids(self._tag_id, candidate.interests)
        seeks = self._terms_of.get(candidate.seeks)
        if seeks is None:
            seeks = self._terms_of[candidate.seeks] = self._ids(self._term_id, terms_of(candidate.seeks))
        offers = self._terms_of.get(candidate.offers)
        if offers is None:
            offers = self._terms_of[candidate.offers] = self._ids(self._term_id, terms_of(candidate.offers))
        return _Features(self._zone_of(candidate.utc_offset), tags, seeks, offers)

    def extend(self, candidates: Sequence[Candidate]) -> None:
        """Put ``candidates`` in the next slots, in order."""
        first = self.size
        if first + len(candidates) > self.capacity:
            self.reserve(max(first + len(candidates), 2 * self.capacity))
        features = [self._features_of(candidate) for candidate in candidates]
        self.size += len(candidates)
        self._zone[first:self.size] = [feature.zone for feature in features]
        for held, postings, field in ((self._tags, self._tagged, "tags"), (self._offers, self._offered, "offers"),
                                      (self._seeks, self._sought, "seeks")):
            held.extend([getattr(feature, field) for feature in features])
            postings.extend(first)
        for zone, base in self._base.items():
            base[first:self.size] = BASE_UNITS + self._tz_units[zone, self._zone[first:self.size]]

    def forget_caches(self) -> None:
        """Drop what only speeds up the next ``extend`` or row (the ids of tag sets and phrases seen, the base
        rows): an index about to be packed and sent sends less, and they fill again as they are needed."""
        self._tags_of.clear()
        self._terms_of.clear()
        self._base.clear()

    def set_links(self, links: Links) -> None:
        """The history, as arrays (worked out beforehand, in any thread: ``Links.of``)."""
        self._links = links

    def shared_keys(self) -> list[tuple[tuple[int, ...], tuple[int, ...], int]]:
        """For each slot, what rows that share part of their work have in common (see ``units``)."""
        return list(zip(self._seeks.all_ids(), self._offers.all_ids(), self._zone[:self.size].tolist(), strict=True))

    def _base_for(self, zone: int) -> NDArray[np.uint8]:
        base = self._base.get(zone)
        if base is None:
            base = self._base[zone] = BASE_UNITS + self._tz_units[zone][self._zone]
        return base

    def _matching(self, postings: _Postings, ids: tuple[int, ...], memo: dict[object, NDArray[np.uint8]],
                  ) -> NDArray[np.uint8]:
        """The offer (or seek) units each slot gets from a member seeking (offering) the terms ``ids``."""
        key = (postings, ids)
        found = memo.get(key)
        if found is None:
            if len(memo) * self.capacity >= _MEMO_BYTES:
                memo.clear()
            found = memo[key] = np.zeros(self.capacity, np.uint8)
            postings.any_into(found, ids)
        return found

    def units(self, slots: Sequence[int], block: NDArray[np.uint8]) -> None:
        """The scores in units of a few members (row r is ``slots[r]``) against every slot (column c is
        slot c), into ``block``; the rule is not applied (``RuleColumns.exclude`` does that).

        Rows that seek (or offer) the same terms share what the slots' offers (seeks) give them.
        """
        memo: dict[object, NDArray[np.uint8]] = {}
        for r, slot in enumerate(slots):
            row = block[r]
            row[:] = self._base_for(int(self._zone[slot]))
            seeks, offers, tags = self._seeks.ids(slot), self._offers.ids(slot), self._tags.ids(slot)
            if seeks:   # they offer what this member seeks
                np.add(row, self._matching(self._offered, seeks, memo), out=row)
            if offers:  # they seek what this member offers
                np.add(row, self._matching(self._sought, offers, memo), out=row)
            if len(tags) <= MOST_INTERESTS:
                self._tagged.add_into(row, tags)
            else:
                spare = np.zeros(self.capacity, np.uint8)
                self._tagged.add_into(spare, tags)
                np.minimum(spare, self._most_interests, out=spare)
                np.add(row, spare, out=row)
            shared = self._links.linked(int(self._slot_of.user_ids[slot]), LINK_THREAD)
            if len(shared):
                others = self._slot_of.slots(shared)
                row[others[others >= 0]] += THREAD_UNITS

    def arrays(self) -> ScoreArrays:
        """What ``units`` reads, as arrays (``bot.matching.kernels`` computes the same rows from them)."""
        return ScoreArrays(
            base=np.stack([self._base_for(zone) for zone in range(len(self._offsets))]),
            zone=self._zone.astype(np.int64),
            tags=self._tags.csr(),
            seeks=self._seeks.csr(),
            offers=self._offers.csr(),
            threads=self._links.linked_slots(LINK_THREAD, self._slot_of, self.size),
            tag_postings=self._tagged.arrays(len(self._tag_id)),
            offer_postings=self._offered.arrays(len(self._term_id)),
            seek_postings=self._sought.arrays(len(self._term_id)),
            zone_units=self._tz_units, zone_scores=self._tz_scores)

    def exact(self, slot: int, others: NDArray[np.intp], units: NDArray[np.uint8]) -> NDArray[np.float64]:
        """The float scores of ``slot`` with ``others``, given their units (as ``units`` gave them)."""
        return self.exact_pairs(np.full(len(others), slot, np.intp), others, units)

    def exact_pairs(self, a: NDArray[np.intp], b: NDArray[np.intp], units: NDArray[np.uint8]) -> NDArray[np.float64]:
        """``exact`` for pairs of slots ``a[i]``, ``b[i]``."""
        za, zb = self._zone[a], self._zone[b]
        whole = (units.astype(np.int64) - self._tz_units[za, zb]) // UNITS
        scores: NDArray[np.float64] = whole.astype(np.float64) + self._tz_scores[za, zb]
        return scores


def cut_units(block: NDArray[np.uint8], k: int) -> NDArray[np.uint8]:
    """For each row, a value such that each of the row's ``k`` highest entries is at least that: the k-th
    largest column maximum when the row is folded into ``BLOCK`` equal parts (every entry above it lies in
    a column whose maximum is above it, and k columns reaching it hold k entries at least as high); at
    least 1."""
    count = len(block)
    tops = block.reshape(count, BLOCK, -1).max(axis=1)
    width = tops.shape[1]
    if k >= width:
        return np.ones(count, np.uint8)
    cut: NDArray[np.uint8] = np.maximum(np.partition(tops, width - k, axis=1)[:, width - k], 1)
    return cut
