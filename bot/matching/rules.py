"""Who may be introduced to whom: one rule, written once for two members and once for many.

``why_not`` is the rule itself, as the product states it. ``RuleColumns`` answers the same question for
one member against every member at once, for the suggestions and for the round: company ids compared
by broadcast (or by the range of slots a company occupies, when slots are sorted by company), languages
as bitmasks, and avoid lists and history masked by index (for each company, the slots of the members
who avoid it; for each member, the slots they met or were declined by). The property tests hold it to
``why_not`` on random communities.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Final, NamedTuple

import numpy as np
from numpy.typing import NDArray

from bot.matching.model import (
    MET_RECENTLY,
    NO_LANGUAGE,
    SAME_COMPANY,
    SELF,
    UNAVAILABLE,
    YOU_AVOID,
    YOU_UNAVAILABLE,
    Candidate,
    History,
)
from bot.matching.slots import LINK_DECLINED, LINK_MET, Links, Rows, Slots, grown


def linked(pairs: Mapping[int, frozenset[int]], a: int, b: int) -> bool:
    # History is stored both ways; reading it both ways too keeps the rule symmetric even when a
    # caller hands over only one direction.
    return b in pairs.get(a, ()) or a in pairs.get(b, ())


def why_not(a: Candidate, b: Candidate, history: History) -> str | None:
    """None when ``a`` may be matched with ``b``, else the message key of the first reason against it,
    told from ``a``'s side: what would reveal ``b``'s private choices (their pause, their avoid list, a
    decline) is the one neutral ``UNAVAILABLE``, and comes last: if it came before a reason ``a`` can know
    (no shared language, say), getting it instead would tell ``a`` that one of those choices is there.
    Whether a pair may be matched does not depend on who asks; only the key does."""
    if a.user_id == b.user_id:
        return SELF
    if not a.available:
        return YOU_UNAVAILABLE
    if a.company == b.company:
        return SAME_COMPANY
    if b.company in a.avoid:
        return YOU_AVOID
    if not a.languages & b.languages:
        return NO_LANGUAGE
    if linked(history.met, a.user_id, b.user_id):
        return MET_RECENTLY
    if not b.available or a.company in b.avoid or linked(history.declined, a.user_id, b.user_id):
        return UNAVAILABLE
    return None


def eligible(a: Candidate, b: Candidate, history: History) -> bool:
    """Whether ``a`` and ``b`` may be matched (the same answer both ways round)."""
    return why_not(a, b, history) is None


# --- many members at once --------------------------------------------------------------------------------

BLOCK: Final = 64   # capacities are multiples of this, so a row of scores folds into BLOCK equal parts
MOST_LANGUAGES: Final = 64


class RuleArrays(NamedTuple):
    """``RuleColumns`` as arrays, for compiled code; lists are (starts, values) pairs."""

    open_rows: NDArray[np.uint8]        # language set × capacity: 1 where a slot is open to that set
    language_set: NDArray[np.int64]     # slot -> its row of open_rows
    available: NDArray[np.bool_]
    company: NDArray[np.int64]
    company_from: NDArray[np.int64]     # company id -> its first slot, and one past its last
    company_to: NDArray[np.int64]
    avoid: tuple[NDArray[np.int64], NDArray[np.int64]]      # slot -> company ids it avoids
    avoiders: tuple[NDArray[np.int64], NDArray[np.int64]]   # company id -> slots avoiding it
    apart: tuple[NDArray[np.int64], NDArray[np.int64]]      # slot -> slots it may not meet


class RuleColumns:
    """The rule for members held in numbered slots, one member against all slots at once.

    The owner numbers the slots (``add`` appends) and shares its ``Slots``, through which history kept by
    user id reaches slots. A retired slot is unavailable, so nobody is ever matched with it.
    Rows of values over the slots have ``capacity`` entries; entries past ``size`` are padding and are
    always excluded.
    """

    def __init__(self, slot_of: Slots) -> None:
        self._slot_of = slot_of
        self.size = 0
        self.capacity = 0
        self._company = np.zeros(0, np.int32)
        self._languages = np.zeros(0, np.uint64)
        self._available = np.zeros(0, np.bool_)
        self._company_id: dict[str, int] = {}
        self._language_bit: dict[str, int] = {}
        self._avoid = Rows()   # each slot's avoided company ids, ascending
        self._links = Links.of(())
        # Derived, dropped on every change: who is open to a language set; who avoids a company.
        self._open: dict[int, NDArray[np.uint8]] = {}
        self._avoiders: dict[int, NDArray[np.intp]] = {}
        self._ranges: tuple[NDArray[np.intp], NDArray[np.intp]] | None = None

    # -- keeping the columns -----------------------------------------------------------------------------

    def reserve(self, capacity: int) -> None:
        capacity = -(-capacity // BLOCK) * BLOCK
        if capacity > self.capacity:
            self.capacity = capacity
            self._company = grown(self._company, capacity)
            self._languages = grown(self._languages, capacity)
            self._available = grown(self._available, capacity)
            self._changed()

    def company_id(self, company: str) -> int:
        return self._company_id.setdefault(company, len(self._company_id))

    def language_bits(self, languages: Iterable[str]) -> int:
        bits = 0
        for language in languages:
            bit = self._language_bit.get(language)
            if bit is None:
                if len(self._language_bit) == MOST_LANGUAGES:
                    raise ValueError(f"more than {MOST_LANGUAGES} languages")
                bit = self._language_bit[language] = len(self._language_bit)
            bits |= 1 << bit
        return bits

    def extend(self, candidates: Sequence[Candidate]) -> None:
        """Put ``candidates`` in the next slots, in order."""
        first = self.size
        if first + len(candidates) > self.capacity:
            self.reserve(max(first + len(candidates), 2 * self.capacity))
        self.size += len(candidates)
        self._company[first:self.size] = [self.company_id(candidate.company) for candidate in candidates]
        bits: dict[frozenset[str], int] = {}
        self._languages[first:self.size] = [
            bits[c.languages] if c.languages in bits else bits.setdefault(c.languages, self.language_bits(c.languages))
            for c in candidates]
        self._available[first:self.size] = [candidate.available for candidate in candidates]
        self._avoid.extend([sorted(self.company_id(company) for company in candidate.avoid)
                            for candidate in candidates])
        self._changed()

    def retire(self, slot: int) -> None:
        """Nobody is matched with ``slot`` any more (its member left, or moved to another slot). Its avoid
        list stays, and changes nothing: an unavailable slot's row and column are all 0 anyway."""
        self._available[slot] = False
        self._changed()

    def set_links(self, links: Links) -> None:
        """The history, as arrays (worked out beforehand, in any thread: ``Links.of``)."""
        self._links = links

    def sort_by_company(self) -> None:
        """Declare that slots hold companies in runs of ascending id, so a company is a range of slots:
        excluding it is one slice instead of a comparison over every slot. Any later ``add`` undoes it."""
        company = self._company[:self.size]
        if np.any(company[1:] < company[:-1]):
            raise ValueError("slots are not sorted by company")
        ids = np.arange(len(self._company_id))
        self._ranges = (np.searchsorted(company, ids, "left"), np.searchsorted(company, ids, "right"))

    def forget_caches(self) -> None:
        """Drop what is derived from the columns (filled again as it is needed)."""
        self._changed()

    def _changed(self) -> None:
        self._open.clear()
        self._avoiders.clear()
        self._ranges = None

    # -- reading them ------------------------------------------------------------------------------------

    def languages(self, slot: int) -> int:
        return int(self._languages[slot])

    def available(self, slot: int) -> bool:
        return bool(self._available[slot])

    def open_to(self, languages: int) -> NDArray[np.uint8]:
        """1 for each slot that is available and speaks one of ``languages`` (a bitmask), else 0."""
        found = self._open.get(languages)
        if found is None:
            found = (self._available & ((self._languages & np.uint64(languages)) != 0)).view(np.uint8)
            self._open[languages] = found
        return found

    def _avoiding(self, company: int) -> NDArray[np.intp]:
        found = self._avoiders.get(company)
        if found is None:
            found = self._avoiders[company] = self._avoid.slots_at(np.flatnonzero(self._avoid.values == company))
        return found

    def apart(self, slot: int) -> NDArray[np.intp]:
        """The slots of the members ``slot``'s member met recently or was declined by."""
        linked = self._links.linked(int(self._slot_of.user_ids[slot]), LINK_MET | LINK_DECLINED)
        others = self._slot_of.slots(linked) if len(linked) else linked
        found: NDArray[np.intp] = others[(others >= 0) & (others != slot)]
        return found

    def exclude(self, slots: Sequence[int], block: NDArray[np.uint8]) -> None:
        """Set to 0 every entry of ``block`` whose column may not be matched with its row's member: the
        rule, for a few members (row r is ``slots[r]``) against every slot (column c is slot c).

        Rows that share languages (neighbours, in the order the round takes them) share one operation.
        """
        languages = self._languages[list(slots)]
        start = 0
        for end in range(1, len(slots) + 1):
            if end < len(slots) and languages[end] == languages[start]:
                continue
            np.multiply(block[start:end], self.open_to(int(languages[start])), out=block[start:end])
            start = end
        rows: list[NDArray[np.intp]] = []
        columns: list[NDArray[np.intp]] = []
        for r, slot in enumerate(slots):
            if not self._available[slot]:
                block[r] = 0
                continue
            own = int(self._company[slot])
            for company in (own, *self._avoid.ids(slot)):
                if self._ranges is not None:
                    block[r, self._ranges[0][company]:self._ranges[1][company]] = 0
                else:   # a product, not a masked store: four times faster over 100,000 slots
                    np.multiply(block[r, :self.size], self._company[:self.size] != company, out=block[r, :self.size])
            for found in (self._avoiding(own), self.apart(slot)):
                if len(found):
                    rows.append(np.full(len(found), r, np.intp))
                    columns.append(found)
        if rows:
            block[np.concatenate(rows), np.concatenate(columns)] = 0

    def arrays(self) -> RuleArrays:
        """What ``exclude`` reads, as arrays, for slots sorted by company (``sort_by_company``)."""
        if self._ranges is None:
            raise ValueError("slots are not sorted by company")
        languages: dict[int, int] = {}
        language_set = np.fromiter((languages.setdefault(int(bits), len(languages))
                                    for bits in self._languages[:self.size]), np.int64, self.size)
        return RuleArrays(
            open_rows=np.stack([self.open_to(bits) for bits in languages] or [np.zeros(self.capacity, np.uint8)]),
            language_set=language_set,
            available=self._available.copy(),
            company=self._company.astype(np.int64),
            company_from=self._ranges[0].astype(np.int64),
            company_to=self._ranges[1].astype(np.int64),
            avoid=self._avoid.csr(),
            avoiders=self._avoiders_csr(),
            apart=self._links.linked_slots(LINK_MET | LINK_DECLINED, self._slot_of, self.size))

    def _avoiders_csr(self) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """For each company id, the slots avoiding it, ascending, as (starts, values) like ``Rows.csr``."""
        companies = self._avoid.values
        order = np.argsort(companies, kind="stable")
        starts = np.zeros(len(self._company_id) + 1, np.int64)
        np.cumsum(np.bincount(companies, minlength=len(self._company_id)), out=starts[1:])
        return starts, self._avoid.slots_at(order).astype(np.int64)

    def mask(self, slot: int) -> NDArray[np.bool_]:
        """Which slots may be matched with ``slot``: ``exclude`` applied to a row of ones."""
        row = np.ones((1, self.capacity), np.uint8)
        self.exclude([slot], row)
        return row[0, :self.size].astype(np.bool_)
