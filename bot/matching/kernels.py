"""The round's hot loops, compiled with numba: members scored against everyone with the best few kept
(``scan``), and the auction (``auction``).

``scan`` computes, row by row, what ``Members.rows`` computes (``ScoreColumns.units``, then
``RuleColumns.exclude``) from the same columns as arrays (``ScoreColumns.arrays``,
``RuleColumns.arrays``); each row is a few passes the compiler turns into vector instructions, and only
what the round needs of it is kept: its ``k`` best entries after prices, or its best. The unit tests hold
it to ``Members.rows`` entry for entry. Both kernels release the GIL: the round runs ``scan`` in several
threads at once, and the bot's event loop goes on meanwhile.

Compiled on first use and cached beside this file, so later processes load them in a fraction of a
second.
"""

from __future__ import annotations

from typing import Final

import numpy as np
from numba import njit

from bot.matching.score import INTEREST_UNITS, MOST_INTERESTS, OFFER_UNITS, THREAD_UNITS, UNITS

# Prices are given to ``scan`` in units of 1 / (UNITS * PRICE_SCALE) points, values computed in them:
# a score of at most 255 units and a price of at most as much fit 16 bits either way.
PRICE_SCALE: Final = 64
# A scanned entry the rule excludes: below any other.
NONE: Final = -32768
# Entries are taken in runs of this many; a run's highest says whether it can hold one of the best.
RUN: Final = 64
# The most members ``candidate_graph`` takes.
MOST_MEMBERS: Final = 1 << 23
_MOST_TAG_UNITS: Final = INTEREST_UNITS * MOST_INTERESTS
# Run bests are counted in levels of 64 values: shifted to be at least 0, then cut to 512 levels.
_LEVEL_BITS: Final = 6
_LEVEL_SHIFT: Final = 255 * PRICE_SCALE + 1
_LEVELS: Final = (2 * _LEVEL_SHIFT >> _LEVEL_BITS) + 1


@njit(nogil=True, cache=True)
def _same(values, a_from, a_to, b_from, b_to):  # type: ignore[no-untyped-def]
    if a_to - a_from != b_to - b_from:
        return False
    for i in range(a_to - a_from):  # noqa: SIM110 (compiled: a plain loop)
        if values[a_from + i] != values[b_from + i]:
            return False
    return True


@njit(nogil=True, cache=True)
def _any_of(out, ids, value, postings):  # type: ignore[no-untyped-def]
    """``value`` in ``out`` where a slot holds any of ``ids``, else 0 (``_Postings.any_into``)."""
    dense_of, dense, sparse_at, sparse = postings
    out[:] = 0
    for key in ids:
        d = dense_of[key]
        if d >= 0:
            row = dense[d]
            for j in range(out.shape[0]):
                out[j] = max(out[j], row[j])
        else:
            for at in range(sparse_at[key], sparse_at[key + 1]):
                out[sparse[at]] = value


@njit(nogil=True, cache=True)
def _units(slot, score, rule, wanted, offered, tag_sum, units):  # type: ignore[no-untyped-def]
    """Row ``slot`` of ``Members.rows`` into ``units``; ``wanted`` holds what each slot's offers give
    this slot's seeks, ``offered`` what this slot's offers give each slot's seeks."""
    base, zone, tags, threads = score.base, score.zone, score.tags, score.threads
    available, company, company_from, company_to = rule.available, rule.company, rule.company_from, rule.company_to
    avoid, avoiders, apart = rule.avoid, rule.avoiders, rule.apart
    dense_of, dense, sparse_at, sparse = score.tag_postings
    tag_sum[:] = 0
    for at in range(tags[0][slot], tags[0][slot + 1]):
        key = tags[1][at]
        d = dense_of[key]
        if d >= 0:
            row = dense[d]
            for j in range(units.shape[0]):
                tag_sum[j] += row[j]
        else:
            for p in range(sparse_at[key], sparse_at[key + 1]):
                tag_sum[sparse[p]] += INTEREST_UNITS
    own_base = base[zone[slot]]
    is_open = rule.open_rows[rule.language_set[slot]]
    for j in range(units.shape[0]):
        units[j] = (own_base[j] + wanted[j] + offered[j] + min(tag_sum[j], _MOST_TAG_UNITS)) * is_open[j]
    if not available[slot]:
        units[:] = 0
        return
    for at in range(threads[0][slot], threads[0][slot + 1]):
        other = threads[1][at]
        if units[other]:
            units[other] += THREAD_UNITS
    own = company[slot]
    units[company_from[own]:company_to[own]] = 0
    for at in range(avoid[0][slot], avoid[0][slot + 1]):
        units[company_from[avoid[1][at]]:company_to[avoid[1][at]]] = 0
    for at in range(avoiders[0][own], avoiders[0][own + 1]):
        units[avoiders[1][at]] = 0
    for at in range(apart[0][slot], apart[0][slot + 1]):
        units[apart[1][at]] = 0


@njit(nogil=True, cache=True)
def _scratch(capacity):  # type: ignore[no-untyped-def]
    """What working out a row takes, for every kernel that does: wanted, offered, tag sums and the row."""
    return (np.zeros(capacity, np.uint8), np.zeros(capacity, np.uint8), np.zeros(capacity, np.uint8),
            np.zeros(capacity, np.uint8))


@njit(nogil=True, cache=True)
def _row(slot, previous, score, rule, wanted, offered, tag_sum, units):  # type: ignore[no-untyped-def]
    """Row ``slot`` of ``Members.rows`` into ``units``. ``previous`` is the row worked out last with these
    buffers (-1: none): rows come sorted by what they seek and offer, so what that row's seeks and offers
    got from each slot is often this row's too, and is kept."""
    seeks, offers = score.seeks, score.offers
    if previous < 0 or not _same(seeks[1], seeks[0][slot], seeks[0][slot + 1],
                                 seeks[0][previous], seeks[0][previous + 1]):
        _any_of(wanted, seeks[1][seeks[0][slot]:seeks[0][slot + 1]], OFFER_UNITS, score.offer_postings)
    if previous < 0 or not _same(offers[1], offers[0][slot], offers[0][slot + 1],
                                 offers[0][previous], offers[0][previous + 1]):
        _any_of(offered, offers[1][offers[0][slot]:offers[0][slot + 1]], OFFER_UNITS, score.seek_postings)
    _units(slot, score, rule, wanted, offered, tag_sum, units)


@njit(nogil=True, cache=True)
def rows(slots, score, rule, out):  # type: ignore[no-untyped-def]
    """``Members.rows`` for ``slots``, into ``out`` (a row each): what ``scan`` scores, for the tests."""
    wanted, offered, tag_sum, _ = _scratch(out.shape[1])
    previous = -1
    for r in range(slots.shape[0]):
        _row(slots[r], previous, score, rule, wanted, offered, tag_sum, out[r])
        previous = slots[r]


@njit(nogil=True, cache=True)
def scan(slots, score, rule, prices, k, rotate, positions, units_out, best):  # type: ignore[no-untyped-def]
    """For each row ``slots[r]``: entries valued ``units * PRICE_SCALE - prices`` (``prices`` at most
    ``255 * PRICE_SCALE``), the
    ``k`` highest into ``positions[r]`` (highest first, -1 past the last eligible) with their units in
    ``units_out[r]``, and the highest value into ``best[r]`` (``NONE`` for a row nobody may meet).
    With ``k`` 0, only ``best``.

    Ties at the cut are taken from column ``rotate[r]`` on, around the row, so that members with the same
    scores do not all keep the same partners.
    """
    capacity = prices.shape[0]
    runs = capacity // RUN
    wanted, offered, tag_sum, units = _scratch(capacity)
    values = np.empty(capacity, np.int16)
    run_best = np.empty(runs, np.int16)
    levels = np.zeros(_LEVELS, np.int64)
    kept_at = np.empty(capacity, np.int64)
    kept_value = np.empty(capacity, np.int16)
    previous = -1
    for r in range(slots.shape[0]):
        slot = slots[r]
        _row(slot, previous, score, rule, wanted, offered, tag_sum, units)
        previous = slot
        # Typed int16 throughout, so that the compiler keeps to 16-bit lanes (8 times the work per
        # instruction that numba's default int64 would give).
        none = np.int16(NONE)
        scale = np.int16(PRICE_SCALE)
        highest = none
        for run in range(runs):
            top = none
            for j in range(run * RUN, run * RUN + RUN):
                unit = np.int16(units[j])
                value = np.int16(unit * scale - prices[j])
                value = value if unit != 0 else none
                values[j] = value
                top = value if value > top else top
            run_best[run] = top
            highest = top if top > highest else highest
        best[r] = highest
        if k == 0:
            continue
        # The cut: the lowest value in the level of the k-th highest run best. At least k entries reach
        # it (one in each of those runs), and every entry above it lies in a run whose best is above it,
        # so the k highest entries all lie in runs that reach the cut.
        levels[:] = 0
        for run in range(runs):
            if run_best[run] > NONE:
                levels[(run_best[run] + _LEVEL_SHIFT) >> _LEVEL_BITS] += 1
        cut = -_LEVEL_SHIFT
        count = 0
        for level in range(_LEVELS - 1, -1, -1):
            count += levels[level]
            if count >= k:
                cut = (level << _LEVEL_BITS) - _LEVEL_SHIFT
                break
        kept = 0
        for run in range(runs):
            if run_best[run] >= cut:
                for j in range(run * RUN, run * RUN + RUN):
                    if values[j] >= cut:
                        kept_at[kept] = j
                        kept_value[kept] = values[j]
                        kept += 1
        # Among those kept: the k-th highest value, everything above it, and the ties at it from
        # column rotate[r] on.
        ranked = np.argsort(-kept_value[:kept].astype(np.int64), kind="mergesort")
        taken = min(k, kept)
        last = kept_value[ranked[taken - 1]] if taken else none
        count = 0
        for i in range(kept):
            if kept_value[i] > last:
                positions[r, count] = kept_at[i]
                count += 1
        ties = taken - count
        start = 0
        while start < kept and kept_at[start] < rotate[r] % capacity:
            start += 1
        for step in range(kept):
            if ties == 0:
                break
            i = (start + step) % kept
            if kept_value[i] == last:
                positions[r, count] = kept_at[i]
                count += 1
                ties -= 1
        # Highest first (equal values in the order taken): an insertion sort of k entries.
        for i in range(1, taken):
            at = positions[r, i]
            j = i - 1
            while j >= 0 and values[positions[r, j]] < values[at]:
                positions[r, j + 1] = positions[r, j]
                j -= 1
            positions[r, j + 1] = at
        for i in range(taken):
            units_out[r, i] = units[positions[r, i]]
        for i in range(taken, k):
            positions[r, i] = -1
            units_out[r, i] = 0


@njit(nogil=True, cache=True)
def column_best(slots, score, rule, prices, best):  # type: ignore[no-untyped-def]
    """For every column ``i``: ``best[i]`` raised to the highest ``units * PRICE_SCALE - prices[s]`` over
    the ``slots`` s that may meet it. Rows are symmetric (the score and the rule are), so row s is column
    s: this is the best each member could do with one of ``slots``, at a row's cost per slot."""
    capacity = best.shape[0]
    wanted, offered, tag_sum, units = _scratch(capacity)
    previous = -1
    for r in range(slots.shape[0]):
        slot = slots[r]
        _row(slot, previous, score, rule, wanted, offered, tag_sum, units)
        previous = slot
        price = np.int64(prices[slot])
        for j in range(capacity):
            if units[j]:
                best[j] = max(best[j], np.int64(units[j]) * PRICE_SCALE - price)


@njit(nogil=True, cache=True)
def auction(indptr, columns, weights, active, price, epsilons, no_second):  # type: ignore[no-untyped-def]
    """Bertsekas' auction on the candidate graph (compressed rows, each holding the member itself at
    weight 0): each active member bids for the partner (or staying single) worth most to them at current
    prices, raising its price by their margin over their second choice plus ε; whoever held it bids
    again. Phase by phase ε shrinks, prices are kept and everyone bids afresh; the last phase leaves
    every member within ε of their best choice, so the assignment is within ε per member of the best on
    the candidates, and the prices (``price``, updated in place) bound every assignment's value.

    Returns the partner each member holds (itself to stay single; inactive members hold themselves).
    """
    n = indptr.shape[0] - 1
    chosen = np.empty(n, np.int64)
    holder = np.empty(n, np.int64)
    queue = np.empty(n + 1, np.int64)
    for epsilon in epsilons:
        head = 0
        tail = 0
        for i in range(n):
            if active[i]:
                chosen[i] = -1
                holder[i] = -1
                queue[tail] = i
                tail += 1
            else:
                chosen[i] = i
                holder[i] = i
        while head != tail:
            bidder = queue[head]
            head = (head + 1) % (n + 1)
            first = -np.inf
            second = -np.inf
            target = -1
            for edge in range(indptr[bidder], indptr[bidder + 1]):
                value = weights[edge] - price[columns[edge]]
                if value > first:
                    second = first
                    first = value
                    target = columns[edge]
                elif value > second:
                    second = value
            if second == -np.inf:
                second = first - no_second
            price[target] += first - second + epsilon
            previous = holder[target]
            if previous >= 0:
                chosen[previous] = -1
                queue[tail] = previous
                tail = (tail + 1) % (n + 1)
            holder[target] = bidder
            chosen[bidder] = target
    return chosen


@njit(nogil=True, cache=True)
def candidate_graph(positions, units, score):  # type: ignore[no-untyped-def]
    """The candidate graph from each row's candidates (``positions[i]``, -1 for none, with the pair's
    ``units``): each pair both ways round, once, and each member with itself (weight 0), as compressed
    rows sorted by column. Weights are the float scores, restored from units and the two time zones as
    ``ScoreColumns.exact_pairs`` does. Up to ``MOST_MEMBERS`` rows (a column and its units share 32 bits).

    Returns (indptr, columns, weights).
    """
    zone, zone_units, zone_scores = score.zone, score.zone_units, score.zone_scores
    n, k = positions.shape
    # A candidate is packed as column << 8 | units, so that sorting them sorts by column. Those that
    # name each row (the transpose) are laid out row by row, in ascending order as they are visited.
    named_at = np.zeros(n + 1, np.int64)
    for i in range(n):
        for c in range(k):
            j = positions[i, c]
            if j >= 0:
                named_at[j + 1] += 1
    for j in range(n):
        named_at[j + 1] += named_at[j]
    named = np.empty(named_at[n], np.int32)
    fill = named_at[:n].copy()
    for i in range(n):
        for c in range(k):
            j = positions[i, c]
            if j >= 0:
                named[fill[j]] = np.int32(i) << 8 | np.int32(units[i, c])
                fill[j] += 1
    # Each row: its own candidates and the member itself, sorted, merged with those that name it,
    # repeats dropped.
    indptr = np.zeros(n + 1, np.int64)
    columns = np.empty(2 * named_at[n] + n, np.int32)
    pair_units = np.empty(2 * named_at[n] + n, np.uint8)
    own = np.empty(k + 1, np.int32)
    at = 0
    for i in range(n):
        own[0] = np.int32(i) << 8
        m = 1
        for c in range(k):
            j = positions[i, c]
            if j >= 0:
                own[m] = np.int32(j) << 8 | np.int32(units[i, c])
                m += 1
        mine = np.sort(own[:m])
        a = 0
        b = named_at[i]
        last = -1
        while a < m or b < named_at[i + 1]:
            if b == named_at[i + 1] or (a < m and mine[a] <= named[b]):
                packed = mine[a]
                a += 1
            else:
                packed = named[b]
                b += 1
            if packed >> 8 != last:
                last = packed >> 8
                columns[at] = last
                pair_units[at] = packed & 255
                at += 1
        indptr[i + 1] = at
    columns = columns[:at].copy()
    weights = np.empty(at, np.float64)
    for i in range(n):
        zi = zone[i]
        for e in range(indptr[i], indptr[i + 1]):
            j = columns[e]
            if j == i:
                weights[e] = 0.0
            else:
                zj = zone[j]
                whole = (np.int64(pair_units[e]) - np.int64(zone_units[zi, zj])) // UNITS
                weights[e] = whole + zone_scores[zi, zj]
    return indptr, columns, weights


@njit(nogil=True, cache=True)
def row_best(indptr, columns, weights, prices):  # type: ignore[no-untyped-def]
    """Each row's highest ``weights[e] - prices[columns[e]]`` (rows are never empty: each holds the
    member itself), without the graph-sized arrays numpy would make for it."""
    n = indptr.shape[0] - 1
    best = np.empty(n, np.float64)
    for i in range(n):
        top = -np.inf
        for e in range(indptr[i], indptr[i + 1]):
            top = max(top, weights[e] - prices[columns[e]])
        best[i] = top
    return best


@njit(nogil=True, cache=True)
def pair_weights(indptr, columns, weights, a, b):  # type: ignore[no-untyped-def]
    """The weight of each pair ``a[i]``, ``b[i]`` in the graph (NaN where it holds no such edge)."""
    found = np.full(a.shape[0], np.nan)
    for i in range(a.shape[0]):
        lo, hi = indptr[a[i]], indptr[a[i] + 1]
        while lo < hi:
            mid = (lo + hi) // 2
            if columns[mid] < b[i]:
                lo = mid + 1
            else:
                hi = mid
        if lo < indptr[a[i] + 1] and columns[lo] == b[i]:
            found[i] = weights[lo]
    return found
