"""How well two members fit: one score, the same both ways round, and the reasons behind it.

Every eligible pair starts at ``BASE`` so that placing a member always beats leaving them out; shared
interests, an offer that meets a seek (each direction), nearby time zones and a prompt thread both
replied in add to it.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from types import MappingProxyType
from typing import Final, NamedTuple

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
from bot.matching.rules import BLOCK, csr, grown, kept_apart, linked, linked_slots
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
    """

    def __init__(self, value: int) -> None:
        self._value = value
        self._capacity = 0
        self._slots: defaultdict[int, list[int]] = defaultdict(list)
        self._arrays: dict[int, NDArray[np.intp]] = {}
        self._dense: dict[int, NDArray[np.uint8]] = {}

    def reserve(self, capacity: int) -> None:
        self._capacity = capacity
        for key, row in self._dense.items():
            self._dense[key] = grown(row, capacity)

    def extend(self, slots: NDArray[np.intp], ids: NDArray[np.intp]) -> None:
        """Record that ``slots[i]`` holds ``ids[i]``, for every i."""
        if not len(ids):
            return
        order = np.argsort(ids, kind="stable")
        ids, slots = ids[order], slots[order]
        starts = np.flatnonzero(np.diff(ids, prepend=-1))
        ends = np.append(starts[1:], len(ids))
        for key, start, end in zip(ids[starts].tolist(), starts.tolist(), ends.tolist(), strict=True):
            held = slots[start:end]
            dense = self._dense.get(key)
            if dense is None:
                listed = self._slots[key]
                listed.extend(held.tolist())
                self._arrays.pop(key, None)
                if len(listed) <= max(_DENSE_FROM, self._capacity // _DENSE_SHARE):
                    continue
                dense = self._dense[key] = np.zeros(self._capacity, np.uint8)
                held = np.array(listed, np.intp)
                del self._slots[key]
            dense[held] = self._value

    def _held(self, key: int) -> NDArray[np.intp]:
        found = self._arrays.get(key)
        if found is None:
            found = self._arrays[key] = np.array(self._slots.get(key, ()), np.intp)
        return found

    def add_into(self, row: NDArray[np.uint8], ids: tuple[int, ...]) -> None:
        """Add the value to ``row`` once for each of ``ids`` a slot holds."""
        for key in ids:
            dense = self._dense.get(key)
            if dense is not None:
                np.add(row, dense, out=row)
            else:
                row[self._held(key)] += self._value

    def arrays(self, ids: int) -> Postings:
        """The postings of ids ``0 .. ids - 1`` as arrays (see ``Postings``)."""
        dense_keys = sorted(key for key in self._dense if key < ids)
        dense_of = np.full(ids, -1, np.int64)
        dense_of[dense_keys] = np.arange(len(dense_keys))
        dense = np.stack([self._dense[key] for key in dense_keys] or [np.zeros(self._capacity, np.uint8)])
        sparse_at, sparse = csr([self._slots.get(key, []) if dense_of[key] < 0 else [] for key in range(ids)])
        return Postings(dense_of, dense, sparse_at, sparse)

    def any_into(self, row: NDArray[np.uint8], ids: tuple[int, ...]) -> None:
        """Set ``row`` to the value where a slot holds any of ``ids``."""
        for key in ids:
            dense = self._dense.get(key)
            if dense is not None:
                np.maximum(row, dense, out=row)
            else:
                row[self._held(key)] = self._value


_MEMO_BYTES: Final = 16 << 20   # shared parts of rows ``ScoreColumns.units`` keeps at once
_DENSE_FROM: Final = 64      # slots, at least, before an id is kept as a row of bytes
_DENSE_SHARE: Final = 64     # ... and at least this share (1/64) of the capacity


@dataclass(frozen=True, slots=True)
class _Features:
    zone: int
    tags: tuple[int, ...]
    seeks: tuple[int, ...]     # term ids
    offers: tuple[int, ...]


class ScoreColumns:
    """What the score needs of members held in numbered slots, to score one against all at once.

    The owner numbers the slots (``add`` appends) and shares its ``slot_of`` map, through which prompt
    threads kept by user id reach slots. ``units`` ignores the rule: ``RuleColumns.exclude`` applies it.
    """

    def __init__(self, slot_of: Mapping[int, int]) -> None:
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
        self._tags = _Postings(INTEREST_UNITS)
        self._offers = _Postings(OFFER_UNITS)
        self._seeks = _Postings(OFFER_UNITS)
        self._features: list[_Features] = []
        self._user: list[int] = []
        self._threads: Mapping[int, frozenset[int]] = {}
        self._base: dict[int, NDArray[np.uint8]] = {}
        self._most_interests = np.zeros(0, np.uint8)

    def reserve(self, capacity: int) -> None:
        capacity = -(-capacity // BLOCK) * BLOCK
        if capacity > self.capacity:
            self.capacity = capacity
            self._zone = grown(self._zone, capacity)
            for postings in (self._tags, self._offers, self._seeks):
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
        self._features.extend(features)
        self._user.extend(candidate.user_id for candidate in candidates)
        self.size += len(candidates)
        slots = np.arange(first, self.size)
        self._zone[first:self.size] = [feature.zone for feature in features]
        for postings, field in ((self._tags, "tags"), (self._offers, "offers"), (self._seeks, "seeks")):
            held = [getattr(feature, field) for feature in features]
            counts = np.fromiter(map(len, held), np.intp, len(held))
            postings.extend(np.repeat(slots, counts),
                            np.fromiter(itertools.chain.from_iterable(held), np.intp, int(counts.sum())))
        for zone, base in self._base.items():
            base[first:self.size] = BASE_UNITS + self._tz_units[zone, self._zone[first:self.size]]

    def forget_caches(self) -> None:
        """Drop what only speeds up the next ``extend`` or row (the ids of tag sets and phrases seen, the base
        rows): an index about to be packed and sent sends less, and they fill again as they are needed."""
        self._tags_of.clear()
        self._terms_of.clear()
        self._base.clear()

    def set_threads(self, threads: Mapping[int, frozenset[int]]) -> None:
        self.set_shared(kept_apart(History(met=threads)))

    def set_shared(self, shared: dict[int, frozenset[int]]) -> None:
        """``kept_apart(History(met=threads))``, worked out beforehand (see ``RuleColumns.set_apart``)."""
        self._threads = shared

    def shared_key(self, slot: int) -> tuple[tuple[int, ...], tuple[int, ...], int]:
        """What rows that share part of their work have in common (see ``units``)."""
        features = self._features[slot]
        return features.seeks, features.offers, features.zone

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
        features = [self._features[slot] for slot in slots]
        for r, feature in enumerate(features):
            row = block[r]
            row[:] = self._base_for(feature.zone)
            if feature.seeks:   # they offer what this member seeks
                np.add(row, self._matching(self._offers, feature.seeks, memo), out=row)
            if feature.offers:  # they seek what this member offers
                np.add(row, self._matching(self._seeks, feature.offers, memo), out=row)
            if len(feature.tags) <= MOST_INTERESTS:
                self._tags.add_into(row, feature.tags)
            else:
                spare = np.zeros(self.capacity, np.uint8)
                self._tags.add_into(spare, feature.tags)
                np.minimum(spare, self._most_interests, out=spare)
                np.add(row, spare, out=row)
        rows: list[int] = []
        columns: list[int] = []
        for r, slot in enumerate(slots):
            for user in self._threads.get(self._user[slot], ()):
                other = self._slot_of.get(user, -1)
                if other >= 0:
                    rows.append(r)
                    columns.append(other)
        if rows:
            block[rows, columns] += THREAD_UNITS

    def arrays(self) -> ScoreArrays:
        """What ``units`` reads, as arrays (``bot.matching.kernels`` computes the same rows from them)."""
        slots = range(self.size)
        return ScoreArrays(
            base=np.stack([self._base_for(zone) for zone in range(len(self._offsets))]),
            zone=self._zone.astype(np.int64),
            tags=csr([self._features[slot].tags for slot in slots]),
            seeks=csr([self._features[slot].seeks for slot in slots]),
            offers=csr([self._features[slot].offers for slot in slots]),
            threads=linked_slots(self._threads, self._user[:self.size], self._slot_of),
            tag_postings=self._tags.arrays(len(self._tag_id)),
            offer_postings=self._offers.arrays(len(self._term_id)),
            seek_postings=self._seeks.arrays(len(self._term_id)),
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
