"""The round: every available member placed in a pair, or in the one trio an odd count needs, with the
total score as high as it can be made, and an upper bound on it that says how close the round came.

How, for n members:

1. Candidates. Each member is scored against everyone (``kernels.scan``: scores in byte-sized units,
   the rule applied, compiled) and keeps their ``top_k`` best.
2. Prices. On the candidate graph (both directions of every candidate, plus "stay single" at 0), an
   auction (Bertsekas, with ε-scaling; ``kernels.auction``) assigns members to partners and leaves a
   price on each member: what others would give up to have them.
3. Candidates again, by score less the partner's price. Lists by score alone all hold the same few
   members who fit everyone; those are dear, and the second lists find who is worth more than their
   score says. On both lists together the auction runs again from the prices it left.
4. Pairs. Mutual choices are pairs; longer cycles of the assignment are cut into pairs (an even cycle
   keeps the better half of its edges, an odd one leaves out the member whose absence costs least).
5. Everyone placed. Members left single who have an eligible partner look further down their lists,
   and are placed by the best short exchange, else by an augmenting path (Edmonds' blossoms); one left
   over makes the trio, by joining a pair or by taking a place in one whose member moves on.
6. Small rounds: with up to ``_EXACT_UP_TO`` members who have a partner the plan is found by trying
   every one; up to ``_POLISH_UP_TO`` members it is polished by local search.
7. Bound. The final prices give an upper bound on any round's total (``_Scan.bound``), so each round
   says how close to the best it came. It needs each member's best partner at those prices; the second
   lists and a few rows more give it without scanning everyone again (``_Scan.bound_from``).

The compiled kernels release the GIL and the scans share rows among threads; the Python between them
lets the event loop run, when the bot calls this from a worker thread.
"""

from __future__ import annotations

import functools
import itertools
import math
import os
from collections import deque
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from bot.matching import kernels
from bot.matching.index import Members
from bot.matching.model import Candidate, Group, History, LeftOut, RoundPlan
from bot.matching.rules import eligible
from bot.matching.score import UNITS, ScoreArrays, score

# The auction's ε, phase by phase, in score points; the last one bounds how far its total can fall
# short of the best assignment on the candidates: by ε per member at most.
_EPSILONS: Final = np.array([1.0, 0.1])
# The second auction starts from the first one's prices, close to the end already.
_WARM_EPSILONS: Final = np.array([0.1, 0.01])
# Threads the scans share rows among (the kernels release the GIL), and the fewest rows worth a thread.
_THREADS: Final = min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)
_ROWS_PER_THREAD: Final = 2000
# The share of members whose price fell most that ``_Scan.bound_from`` measures against everyone.
_CHECKED_SHARE: Final = 0.05
# An augmenting path search gives up after visiting this many members: a member nobody can be moved
# for in a search this large is reported as left out rather than holding up the round.
_SEARCH_BUDGET: Final = 2000
# The last few members left single may look through every eligible partner for a short move.
_LAST_FEW: Final = 4
# How far down their list members left single after the assignment look for a way in.
_WIDER: Final = 200
# Rearrangements tried to make room for a trio, when no single member can simply join a pair.
_TRIO_TRIES: Final = 200
# What ``mate`` holds for a member without a partner, and for the members of the trio.
_SINGLE: Final = -1
_IN_TRIO: Final = -2
# Rounds with this few members who have a partner are solved exactly (``_exact``); up to the next
# size, the assignment's plan is polished by local search (``_polish``).
_EXACT_UP_TO: Final = 10
_POLISH_UP_TO: Final = 400
_POLISH_SWEEPS: Final = 20


def plan_round(candidates: Sequence[Candidate], history: History, *, top_k: int = 50) -> RoundPlan:
    """Pairs (and one trio when needed) of the available ``candidates``; see the module's docstring.

    Deterministic: the same candidates and history give the same plan, whatever their order.
    """
    taking_part = sorted((c for c in candidates if c.available), key=lambda c: (c.company, c.user_id))
    if len({c.user_id for c in taking_part}) != len(taking_part):
        raise ValueError("a member appears twice")
    n = len(taking_part)
    if n == 0:
        return RoundPlan(groups=(), left_out=MappingProxyType({}), total=0.0, bound=0.0)
    members = Members(taking_part, history, capacity=n)
    # Slots hold companies in runs (sorted above, ids given in order of appearance), so the rule
    # excludes a company with one slice.
    members.rules.sort_by_company()
    scan = _Scan(members, n)
    # Candidates by score alone; the auction on them prices every member ...
    lists = scan.best(np.zeros(n), top_k)
    placeable = lists.best > kernels.NONE
    graph = _Graph.of(scan.scores, [lists])
    prices = np.zeros(n)
    kernels.auction(graph.indptr, graph.columns, graph.weights, placeable, prices, _EPSILONS, graph.no_second)
    prices = _balanced(graph, prices)
    # ... and candidates by score less the partner's price find who is worth more than their score
    # says: a member whom everyone's best lists share is dear, one nobody listed is cheap.
    del graph
    listed_at = prices.copy()
    second = scan.best(prices, top_k)
    graph = _Graph.of(scan.scores, [lists, second])
    partner = kernels.auction(graph.indptr, graph.columns, graph.weights, placeable, prices, _WARM_EPSILONS,
                              graph.no_second)
    # The bound's kernels run beside the pairing's Python: they release the GIL.
    with ThreadPoolExecutor(1) as background:
        bounding = background.submit(scan.bound_from, graph, _balanced(graph, prices), placeable, second, listed_at,
                                     int(_CHECKED_SHARE * n))
        groups = _grouped(graph, partner, scan, members, placeable, taking_part, history)
        bound = bounding.result()
    placed = {user for group in groups for user in group.members}
    left_out = {
        c.user_id: LeftOut.NO_GROUP if placeable[i] else LeftOut.NO_PARTNER
        for i, c in enumerate(taking_part) if c.user_id not in placed
    }
    total = math.fsum(group.score for group in groups)
    return RoundPlan(groups=tuple(groups), left_out=MappingProxyType(dict(sorted(left_out.items()))),
                     total=total, bound=bound)


def _grouped(graph: _Graph, partner: NDArray[np.int64], scan: _Scan, members: Members,
             placeable: NDArray[np.bool_], taking_part: Sequence[Candidate], history: History) -> list[Group]:
    """The round's groups from the assignment: pairs, everyone placed who can be, the trio, and for small
    rounds the exact plan or a polished one (steps 4 to 6 of the module's docstring)."""
    n = len(taking_part)
    mate = _pairs(graph, partner)
    single = np.flatnonzero(placeable & (mate == _SINGLE)).tolist()
    if len(single) > 1:
        graph = graph.widened(scan, members, single, _WIDER)
    _place_everyone(graph, mate, placeable)
    single = np.flatnonzero(placeable & (mate == _SINGLE)).tolist()
    if 1 < len(single) <= _LAST_FEW:
        graph = graph.widened(scan, members, single, n - 1)
        _place_everyone(graph, mate, placeable)
    fit = _Fit(graph, taking_part, history)
    trio = _trio(graph, mate, placeable, fit)
    chosen: list[tuple[int, ...]] = [(a, int(mate[a])) for a in range(n) if a < mate[a]]
    if trio is not None:
        chosen.append(trio.members)
    if np.count_nonzero(placeable) <= _EXACT_UP_TO:
        chosen = _exact(fit, np.flatnonzero(placeable).tolist())
    elif n <= _POLISH_UP_TO:
        chosen = _polish(graph, fit, chosen, np.flatnonzero(placeable & (mate == _SINGLE)).tolist())
    pairs = np.array([group for group in chosen if len(group) == 2], np.intp).reshape(-1, 2)
    scores = dict(zip(map(tuple, pairs.tolist()), graph.pair_weights(pairs[:, 0], pairs[:, 1]).tolist(), strict=True))
    groups = sorted(
        (Group(members=tuple(sorted(taking_part[i].user_id for i in group)),
               score=scores[group] if group in scores and not math.isnan(scores[group]) else fit.value(group))
         for group in chosen if len(group) > 1),
        key=lambda group: group.members)
    return groups


def _row_order(members: Members, n: int) -> NDArray[np.int64]:
    """Rows ordered so that neighbours share languages, seeks, offers and time zone: a row scanned after
    one that seeks and offers the same reuses what the scan computed for it."""
    keys = members.scores.shared_keys()[:n]
    rank = {key: r for r, key in enumerate(sorted(set(keys)))}
    shared = np.fromiter((rank[key] for key in keys), np.intp, n)
    languages = np.fromiter((members.rules.languages(i) for i in range(n)), np.int64, n)
    return np.lexsort((np.arange(n), shared, languages)).astype(np.int64)


@dataclass(frozen=True)
class _Lists:
    positions: NDArray[np.int64]   # n × k, the candidates of each row, best first; -1 past the last
    units: NDArray[np.uint8]       # their scores in units
    best: NDArray[np.int64]        # each row's highest value (kernels.NONE: nobody eligible)


class _Scan:
    """Every member against every member (``kernels.scan``), rows shared out among threads."""

    def __init__(self, members: Members, n: int) -> None:
        self._n = n
        self._capacity = members.capacity
        self.scores = members.scores.arrays()
        self._rule = members.rules.arrays()
        self._order = _row_order(members, n)
        # Contiguous parts keep the rows that share work together.
        self._parts = self._split(self._order)
        users = members.user_ids[:n].astype(np.int64)
        self._rotate = (users * 0x9E3779B1) & 0xFFFFFFFF   # where each row's ties start: fixed, well mixed

    @staticmethod
    def _split(rows: NDArray[np.int64]) -> list[NDArray[np.int64]]:
        return np.array_split(rows, max(1, min(_THREADS, len(rows) // _ROWS_PER_THREAD)))

    def _prices(self, prices: NDArray[np.float64]) -> NDArray[np.int16]:
        # Rounded down (and capped): a value computed with them is never below the true one.
        units = np.zeros(self._capacity, np.int16)
        units[:self._n] = np.clip(np.floor(prices * (UNITS * kernels.PRICE_SCALE)), 0, 255 * kernels.PRICE_SCALE)
        return units

    def _run(self, prices: NDArray[np.float64], k: int, parts: list[NDArray[np.int64]] | None = None) -> _Lists:
        """Rows by ``parts`` (default: every row), a part to a thread; rows not in them are left empty."""
        parts = self._parts if parts is None else parts
        price_units = self._prices(prices)
        positions = np.full((self._n, k), -1, np.int64)
        units = np.zeros((self._n, k), np.uint8)
        best = np.zeros(self._n, np.int64)

        def part(rows: NDArray[np.int64]) -> None:
            found = np.empty((len(rows), k), np.int64)
            found_units = np.empty((len(rows), k), np.uint8)
            highest = np.empty(len(rows), np.int64)
            kernels.scan(rows, self.scores, self._rule, price_units, k, self._rotate[rows], found, found_units,
                         highest)
            positions[rows], units[rows], best[rows] = found, found_units, highest

        if len(parts) == 1:
            part(parts[0])
        else:
            with ThreadPoolExecutor(len(parts)) as pool:
                list(pool.map(part, parts))
        return _Lists(positions, units, best)

    def rows(self, slots: NDArray[np.int64], k: int) -> _Lists:
        """The ``k`` candidates of highest score of a few members (a row each, in the order given)."""
        k = max(1, min(k, self._n - 1))
        positions = np.empty((len(slots), k), np.int64)
        units = np.empty((len(slots), k), np.uint8)
        best = np.empty(len(slots), np.int64)
        kernels.scan(slots, self.scores, self._rule, self._prices(np.zeros(self._n)), k, self._rotate[slots],
                     positions, units, best)
        return _Lists(positions, units, best)

    def best(self, prices: NDArray[np.float64], k: int) -> _Lists:
        """Each member's ``k`` candidates of highest score less the candidate's price."""
        return self._run(prices, max(1, min(k, self._n - 1)))

    def bound(self, prices: NDArray[np.float64], placeable: NDArray[np.bool_]) -> float:
        """An upper bound on the total of any round of these members, from any prices ``p`` (>= 0).

        Why it holds. Write w(i, j) for the score of an eligible pair. A round's pairs and trio define
        an assignment σ of members to members (a pair {i, j}: i → j and j → i; a trio {a, b, c}:
        a → b → c → a; anyone left out: i → i, worth 0), and the round's total is exactly half the
        assignment's value Σ_i w(i, σ(i)): a pair counts w(i, j) twice, a trio each of its three pairs
        once, and its score is half that sum. Let π_i = max(-p_i, max over j eligible with i of
        w(i, j) - p_j). Then π_i + p_σ(i) >= w(i, σ(i)) for every i, and since σ is a permutation,
        Σ_i w(i, σ(i)) <= Σ_i π_i + Σ_j p_j. So every round's total is at most (Σ π + Σ p) / 2.

        The maximum runs over every eligible pair: a scan of every row. Units are rounded up and prices
        down, so each π computed is at least the true one, and the bound stays valid. Members without
        any eligible partner are i → i in every round and add nothing (their price is 0).

        The round finds the same π with far fewer rows (``bound_from``); the tests hold the two together.
        """
        best = self._run(prices, 0).best
        profit = np.maximum(-prices, np.where(best > kernels.NONE, best / (UNITS * kernels.PRICE_SCALE), -np.inf))
        return (math.fsum(profit[placeable].tolist()) + math.fsum(prices[placeable].tolist())) / 2

    def bound_from(self, graph: _Graph, prices: NDArray[np.float64], placeable: NDArray[np.bool_], lists: _Lists,
                   listed_at: NDArray[np.float64], checked: int) -> float:
        """``bound`` for ``prices``, the same, without scanning every row again.

        ``lists`` hold each member's best candidates by score less the prices ``listed_at``, so anyone
        not on i's list was worth at most its last entry to i then, and is worth more now only by as much
        as their price fell since. The ``checked`` members whose price fell most are measured against
        everyone (a row each: rows are symmetric, so a row is also a column); for the others, the
        largest fall among them is added to the last entry. Where that estimate does not stay below
        what the graph (which holds every list) gives exactly, the row is scanned.
        """
        n = self._n
        scale = UNITS * kernels.PRICE_SCALE
        price_units = self._prices(prices)
        now = price_units[:n].astype(np.int64)
        then = self._prices(listed_at)[:n].astype(np.int64)
        listed = kernels.row_best(graph.indptr, graph.columns, graph.weights, prices)
        fall = then - now
        order = np.argsort(-fall, kind="stable")
        few = order[:min(checked, int(np.count_nonzero(fall > 0)))].astype(np.int64)
        beyond = np.full(n, kernels.NONE, np.int64)
        if len(few):
            parts = np.array_split(few, max(1, min(_THREADS, len(few) // 64)))
            found = [np.full(self._capacity, kernels.NONE, np.int64) for _ in parts]

            def part(at: int) -> None:
                kernels.column_best(parts[at], self.scores, self._rule, price_units, found[at])

            with ThreadPoolExecutor(len(parts)) as pool:
                list(pool.map(part, range(len(parts))))
            beyond = np.maximum.reduce(found)[:n]
        known = np.maximum(listed, np.where(beyond > kernels.NONE, beyond / scale, -np.inf))
        last = lists.positions[:, -1]
        estimate = np.full(n, -np.inf)
        if len(few) < n:
            full = last >= 0
            cut = lists.units[:, -1].astype(np.int64) * kernels.PRICE_SCALE - then[np.maximum(last, 0)]
            estimate[full] = (cut[full] + int(fall[order[len(few)]])) / scale
        unsure = np.flatnonzero(placeable & (estimate > known)).astype(np.int64)
        profit = known
        if len(unsure):
            scanned = self._run(prices, 0, self._split(self._order[np.isin(self._order, unsure)])).best[unsure]
            profit[unsure] = np.maximum(known[unsure], np.where(scanned > kernels.NONE, scanned / scale, -np.inf))
        return (math.fsum(profit[placeable].tolist()) + math.fsum(prices[placeable].tolist())) / 2


@dataclass(frozen=True)
class _Graph:
    """The candidate graph, both ways round, as compressed rows sorted by column; each row also holds
    the member itself ("stay single", weight 0), as the assignment needs."""

    indptr: NDArray[np.int64]
    columns: NDArray[np.int32]
    weights: NDArray[np.float64]
    # Rows given more partners after the assignment (``widened``), whole, in place of their slice.
    wider: dict[int, tuple[NDArray[np.intp], NDArray[np.float64]]] = field(default_factory=dict)

    @classmethod
    def of(cls, scores: ScoreArrays, lists: Sequence[_Lists]) -> _Graph:
        """The graph of the candidates in ``lists``, both ways round."""
        positions = np.hstack([found.positions for found in lists])
        if len(positions) > kernels.MOST_MEMBERS:
            raise ValueError(f"a round takes at most {kernels.MOST_MEMBERS} members")
        units = np.hstack([found.units for found in lists])
        indptr, columns, weights = kernels.candidate_graph(positions, units, scores)
        return cls(indptr, columns, weights)

    @property
    def no_second(self) -> float:
        """What a member with one option bids as if the next were worth less than nothing."""
        return 1.0 + float(np.max(self.weights, initial=0.0))

    def widened(self, scan: _Scan, members: Members, slots: list[int], k: int) -> _Graph:
        """The graph with up to ``k`` more partners for each of ``slots`` (both ways round): members
        still single after the assignment look further down their lists for a way in."""
        added: dict[int, dict[int, float]] = {}
        found = scan.rows(np.array(slots, np.int64), k)
        for r, slot in enumerate(slots):
            held = found.positions[r] >= 0
            others = found.positions[r][held].astype(np.intp)
            weights = members.scores.exact(slot, others, found.units[r][held])
            fresh = ~np.isin(others, self.row(slot)[0])
            for other, weight in zip(others[fresh].tolist(), weights[fresh].tolist(), strict=True):
                added.setdefault(slot, {})[other] = weight
                added.setdefault(other, {})[slot] = weight
        wider = dict(self.wider)
        for row, extra in added.items():
            columns, weights = self.row(row)
            merged_columns = np.concatenate([columns, np.fromiter(extra, np.intp, len(extra))])
            merged_weights = np.concatenate([weights, np.fromiter(extra.values(), np.float64, len(extra))])
            order = np.argsort(merged_columns, kind="stable")
            wider[row] = (merged_columns[order], merged_weights[order])
        return _Graph(self.indptr, self.columns, self.weights, wider)

    def row(self, a: int) -> tuple[NDArray[np.signedinteger[Any]], NDArray[np.float64]]:
        """a's partners in the graph (sorted) and the weights of those pairs."""
        found = self.wider.get(a)
        if found is not None:
            return found
        start, end = int(self.indptr[a]), int(self.indptr[a + 1])
        return self.columns[start:end], self.weights[start:end]

    def pair_weights(self, a: NDArray[np.intp], b: NDArray[np.intp]) -> NDArray[np.float64]:
        """The weight of each pair ``a[i]``, ``b[i]`` (NaN where the graph holds no such pair)."""
        found: NDArray[np.float64] = kernels.pair_weights(self.indptr, self.columns, self.weights, a, b)
        # A widened row holds its slice's pairs and more: only pairs not found there need it.
        for i in np.flatnonzero(np.isnan(found) & np.isin(a, list(self.wider))).tolist():
            found[i] = self.weight(int(a[i]), int(b[i])) if self.has(int(a[i]), int(b[i])) else np.nan
        return found

    def neighbours(self, a: int) -> NDArray[np.signedinteger[Any]]:
        return self.row(a)[0]

    def weight(self, a: int, b: int) -> float:
        columns, weights = self.row(a)
        at = int(np.searchsorted(columns, b))
        if at >= len(columns) or columns[at] != b:
            raise KeyError((a, b))
        return float(weights[at])

    def has(self, a: int, b: int) -> bool:
        columns = self.row(a)[0]
        at = int(np.searchsorted(columns, b))
        return at < len(columns) and int(columns[at]) == b


def _pairs(graph: _Graph, partner: NDArray[np.intp]) -> NDArray[np.intp]:
    """The assignment's cycles as pairs: ``mate[a]`` is a's partner, or -1."""
    n = len(partner)
    index = np.arange(n)
    mate = np.full(n, -1, np.intp)
    mutual = (partner[partner] == index) & (partner != index)
    mate[mutual] = partner[mutual]
    seen = mutual | (partner == index)
    for start in np.flatnonzero(~seen).tolist():
        if seen[start]:
            continue
        cycle = [start]
        seen[start] = True
        while not seen[partner[cycle[-1]]]:
            cycle.append(int(partner[cycle[-1]]))
            seen[cycle[-1]] = True
        _cut(graph, cycle, mate)
    return mate


def _cut(graph: _Graph, cycle: list[int], mate: NDArray[np.intp]) -> None:
    """Pairs from a cycle of three or more (``cycle[i]`` chose ``cycle[i + 1]``)."""
    size = len(cycle)
    edge = np.array([graph.weight(cycle[i], cycle[(i + 1) % size]) for i in range(size)])
    if size % 2 == 0:
        first = 0 if math.fsum(edge[0::2]) >= math.fsum(edge[1::2]) else 1
    else:
        # Leaving out member t keeps edges t+1, t+3, ..., t+size-2: sums of every other edge, read off
        # prefix sums of the cycle taken twice.
        twice = np.concatenate([edge, edge, [0.0]])
        every_other = np.zeros(len(twice) + 2)
        for parity in (0, 1):
            every_other[parity + 2::2] = np.cumsum(twice[parity::2])[:len(every_other[parity + 2::2])]
        t = np.arange(size)
        kept = every_other[t + size] - every_other[t + 1]   # edges t+1, t+3, ..., t+size-2
        first = (int(np.argmax(kept)) + 1) % size
    stop = size - (size % 2)
    for i in range(0, stop, 2):
        a, b = cycle[(first + i) % size], cycle[(first + i + 1) % size]
        mate[a], mate[b] = b, a


def _place_everyone(graph: _Graph, mate: NDArray[np.intp], placeable: NDArray[np.bool_]) -> None:
    """Place members left single who have an eligible partner, one more pair at a time: the best of
    the short moves first (two singles who fit; or single u takes a, whose partner b takes single v),
    then any augmenting path (which moves more members, and looks at nothing but placing them)."""
    while True:
        single = np.flatnonzero(placeable & (mate < 0))
        if len(single) < 2:
            return
        moves = _short_moves(graph, mate, placeable, single.tolist())
        if not moves:
            break
        # The best moves first; one that touches a member an earlier one moved waits for the next turn.
        touched: set[int] = set()
        for _, pairs in sorted(moves):
            members = {x for pair in pairs for x in pair}
            members |= {int(mate[x]) for x in members if mate[x] >= 0}
            if members & touched:
                continue
            touched |= members
            for a, b in pairs:
                mate[a], mate[b] = b, a
    single = np.flatnonzero(placeable & (mate < 0))
    for root in single.tolist():
        # A path ends at another single member: with one left, there is none to find.
        if mate[root] < 0 and np.count_nonzero(mate[single] < 0) > 1:
            _augment(graph, mate, root)


def _short_moves(graph: _Graph, mate: NDArray[np.intp], placeable: NDArray[np.bool_], single: list[int],
                 ) -> list[tuple[tuple[float, int, int, int], list[tuple[int, int]]]]:
    """For each single u, the move that places u and another single and costs least (adds most), with
    its rank and its new pairs: either they fit each other, or u - a = b - v, where u takes a and a's
    partner b takes v."""
    free = placeable & (mate == _SINGLE)
    n = len(mate)
    # Singles are few: for every member, the two singles that fit them best (two, so that u can look
    # past itself), read off the singles' own rows (the graph is symmetric).
    near: list[NDArray[np.intp]] = []
    by: list[NDArray[np.intp]] = []
    worth: list[NDArray[np.float64]] = []
    for lone in single:
        columns, weights = graph.row(lone)
        keep = columns != lone
        near.append(columns[keep].astype(np.intp))
        by.append(np.full(int(keep.sum()), lone, np.intp))
        worth.append(weights[keep])
    first_v = np.full(n, -1, np.intp)
    first_w = np.full(n, -np.inf)
    second_v = np.full(n, -1, np.intp)
    second_w = np.full(n, -np.inf)
    if near:
        x, v, w = np.concatenate(near), np.concatenate(by), np.concatenate(worth)
        order = np.lexsort((v, -w, x))
        x, v, w = x[order], v[order], w[order]
        starts = np.flatnonzero(np.concatenate([[True], x[1:] != x[:-1]]))
        first_v[x[starts]], first_w[x[starts]] = v[starts], w[starts]
        has_second = np.append(starts[1:], len(x)) - starts > 1
        seconds = starts[has_second] + 1
        second_v[x[seconds]], second_w[x[seconds]] = v[seconds], w[seconds]
    paired = np.flatnonzero(mate >= 0)
    current = np.full(n, np.nan)
    current[paired] = graph.pair_weights(paired, mate[paired])
    moves = []
    for u in single:
        best: tuple[tuple[float, int, int, int], list[tuple[int, int]]] | None = None
        partners, weights = graph.row(u)
        keep = partners != u
        partners, weights = partners[keep].astype(np.intp), weights[keep]
        direct = free[partners]
        if direct.any():
            at = int(np.argmax(np.where(direct, weights, -np.inf)))
            best = ((-float(weights[at]), u, int(partners[at]), -1), [(u, int(partners[at]))])
        b = mate[partners]
        held = b >= 0
        if held.any():
            a, with_a, b = partners[held], weights[held], b[held]
            v = np.where(first_v[b] == u, second_v[b], first_v[b])
            with_v = np.where(first_v[b] == u, second_w[b], first_w[b])
            gain = with_a + with_v - current[a]
            ok = v >= 0
            if ok.any():
                a, v, b, gain = a[ok], v[ok], b[ok], gain[ok]
                at = int(np.lexsort((v, a, -gain))[0])
                option = ((-float(gain[at]), u, int(a[at]), int(v[at])), [(u, int(a[at])), (int(b[at]), int(v[at]))])
                if best is None or option[0] < best[0]:
                    best = option
        if best is not None:
            moves.append(best)
    return moves


def _augment(graph: _Graph, mate: NDArray[np.intp], root: int) -> bool:
    """Edmonds' search for an augmenting path from the single ``root``, blossoms shrunk; flips it when
    found. Works on dicts, so a search costs what it visits, not the size of the round."""
    parent: dict[int, int] = {}
    base: dict[int, int] = {}
    outer = {root}
    queue = deque([root])

    def base_of(v: int) -> int:
        return base.get(v, v)

    def common_base(a: int, b: int) -> int:
        path: set[int] = set()
        while True:
            a = base_of(a)
            path.add(a)
            if mate[a] < 0:
                break
            a = parent[int(mate[a])]
        while True:
            b = base_of(b)
            if b in path:
                return b
            b = parent[int(mate[b])]

    def mark(v: int, stop: int, child: int, blossom: set[int]) -> None:
        while base_of(v) != stop:
            blossom.add(base_of(v))
            blossom.add(base_of(int(mate[v])))
            parent[v] = child
            child = int(mate[v])
            v = parent[child]

    while queue:
        v = queue.popleft()
        for to in graph.neighbours(v).tolist():
            if to == v or base_of(v) == base_of(to) or mate[v] == to or mate[to] == _IN_TRIO:
                continue
            if to == root or (mate[to] >= 0 and int(mate[to]) in parent):
                stop = common_base(v, to)
                blossom: set[int] = set()
                mark(v, stop, to, blossom)
                mark(to, stop, v, blossom)
                for u in list(outer | parent.keys()):
                    if base_of(u) in blossom:
                        base[u] = stop
                        if u not in outer:
                            outer.add(u)
                            queue.append(u)
            elif to not in parent:
                parent[to] = v
                if mate[to] < 0:
                    while to >= 0:
                        back = parent[to]
                        further = int(mate[back])
                        mate[to], mate[back] = back, to
                        to = further
                    return True
                outer.add(int(mate[to]))
                queue.append(int(mate[to]))
        if len(outer) + len(parent) > _SEARCH_BUDGET:
            return False
    return False


class _Fit:
    """Scores of pairs as the round knows them: from the candidate graph, or (for a pair the graph does
    not hold, as the third pair of a trio may be) from the rule and the score themselves."""

    def __init__(self, graph: _Graph, taking_part: Sequence[Candidate], history: History) -> None:
        self._graph = graph
        self._taking_part = taking_part
        self._history = history
        self._known: dict[tuple[int, int], float | None] = {}
        self._rows: dict[int, dict[int, float]] = {}

    def __call__(self, a: int, b: int) -> float | None:
        """The score of a and b, or None when the rule keeps them apart."""
        row = self._rows.get(a)
        if row is None:
            columns, weights = self._graph.row(a)
            row = self._rows[a] = dict(zip(columns.tolist(), weights.tolist(), strict=True))
        found = row.get(b)
        if found is not None or b in row:
            return found
        key = (min(a, b), max(a, b))
        if key not in self._known:
            x, y = self._taking_part[a], self._taking_part[b]
            self._known[key] = score(x, y, self._history) if eligible(x, y, self._history) else None
        return self._known[key]

    def value(self, group: Sequence[int]) -> float:
        """A group's score: its pair's, or half the sum of its three pairs'; 0 for one member alone.
        Raises ValueError for a group with a pair the rule keeps apart."""
        if len(group) < 2:
            return 0.0
        scores = [self(a, b) for a, b in itertools.combinations(group, 2)]
        if any(pair is None for pair in scores):
            raise ValueError(group)
        found = [pair for pair in scores if pair is not None]
        return found[0] if len(found) == 1 else math.fsum(found) / 2

    def allowed(self, group: Sequence[int]) -> bool:
        return all(self(a, b) is not None for a, b in itertools.combinations(group, 2))


def _exact(fit: _Fit, people: list[int]) -> list[tuple[int, ...]]:
    """The best plan for a handful of members, by trying them all: most members placed, then the
    highest total."""
    @functools.cache
    def best(free: int, trio_left: bool) -> tuple[int, float, tuple[tuple[int, ...], ...]]:
        if not free:
            return (0, 0.0, ())
        first = (free & -free).bit_length() - 1
        rest = free & ~(1 << first)
        options = [best(rest, trio_left)]
        others = [i for i in range(len(people)) if rest >> i & 1]
        for j in others:
            pair = fit(people[first], people[j])
            if pair is None:
                continue
            placed, total, groups = best(rest & ~(1 << j), trio_left)
            options.append((placed + 2, total + pair, ((people[first], people[j]), *groups)))
            if not trio_left:
                continue
            for k in others:
                if k <= j:
                    continue
                trio = (people[first], people[j], people[k])
                if fit.allowed(trio):
                    placed, total, groups = best(rest & ~(1 << j) & ~(1 << k), False)
                    options.append((placed + 3, total + fit.value(trio), (trio, *groups)))
        return max(options, key=lambda option: (option[0], option[1]))

    return list(best((1 << len(people)) - 1, True)[2])


def _polish(graph: _Graph, fit: _Fit, groups: list[tuple[int, ...]], single: list[int]) -> list[tuple[int, ...]]:
    """Local search for small rounds: two groups that hold neighbours in the candidate graph (a member
    left single counts as a group of one) are split again the best way into groups of the same sizes,
    until no such change adds anything. The assignment is near the best already; this mends what cutting
    its odd cycles and placing everyone cost."""
    current: list[tuple[int, ...]] = [*groups, *((member,) for member in single)]
    group_of = {member: g for g, group in enumerate(current) for member in group}
    value = [fit.value(group) for group in current]
    for _ in range(_POLISH_SWEEPS):
        changed = False
        for g in range(len(current)):
            near = sorted({group_of.get(neighbour, g) for member in current[g]
                           for neighbour in graph.neighbours(member).tolist()} - {g})
            for h in near:
                if len(current[g]) + len(current[h]) < 3:
                    continue
                union = current[g] + current[h]
                before = value[g] + value[h]
                best: tuple[float, tuple[int, ...], tuple[int, ...]] | None = None
                for first in itertools.combinations(union, len(current[g])):
                    second = tuple(x for x in union if x not in first)
                    if fit.allowed(first) and fit.allowed(second):
                        after = fit.value(first) + fit.value(second)
                        if after > before + 1e-9 and (best is None or after > best[0]):
                            best = (after, first, second)
                if best is not None:
                    current[g], current[h] = best[1], best[2]
                    value[g], value[h] = fit.value(best[1]), fit.value(best[2])
                    group_of.update((x, g) for x in best[1])
                    group_of.update((x, h) for x in best[2])
                    changed = True
        if not changed:
            break
    return [group for group in current if len(group) > 1]


@dataclass(frozen=True)
class _Trio:
    members: tuple[int, int, int]
    score: float


def _trio(graph: _Graph, mate: NDArray[np.intp], placeable: NDArray[np.bool_], fit: _Fit) -> _Trio | None:
    """The one trio a round may have, to place one more member. A trio's score is half the sum of its
    three pairs' (each member counts the mean of their two).

    Best: a member still single joins a pair whose two members they both fit, the way that adds most.
    Failing that, a member x who fits both members of another pair joins it, and x's partner, single
    now, is placed by an augmenting path: a trio can place a member it does not contain.
    """
    def joined(x: int, a: int, b: int, with_b: float) -> _Trio:
        return _Trio((x, a, b), (graph.weight(x, a) + with_b + graph.weight(a, b)) / 2)

    single = np.flatnonzero(placeable & (mate < 0)).tolist()
    best: tuple[tuple[float, int, int, int], _Trio] | None = None
    for x in single:
        for a in graph.neighbours(x).tolist():
            b = int(mate[a])
            if a == x or b < 0:
                continue
            with_b = fit(x, b)
            if with_b is None:
                continue
            trio = joined(x, a, b, with_b)
            rank = (graph.weight(a, b) - trio.score, x, min(a, b), max(a, b))   # most added first
            if best is None or rank < best[0]:
                best = (rank, trio)
    if best is not None:
        trio = best[1]
        mate[list(trio.members)] = _IN_TRIO
        return trio
    if not single:
        return None
    tries = 0
    for x in range(len(mate)):
        partner = int(mate[x])
        if partner < 0:
            continue
        for a in graph.neighbours(x).tolist():
            b = int(mate[a])
            if a in (x, partner) or b < 0 or b in (x, partner) or a > b:
                continue
            with_b = fit(x, b)
            if with_b is None:
                continue
            tries += 1
            if tries > _TRIO_TRIES:
                return None
            # x leaves their partner for the trio {x, a, b}; the partner must find a place.
            saved = mate.copy()
            mate[[x, a, b]] = _IN_TRIO
            mate[partner] = _SINGLE
            if _augment(graph, mate, partner):
                return joined(x, a, b, with_b)
            mate[:] = saved
    return None


def _balanced(graph: _Graph, prices: NDArray[np.float64]) -> NDArray[np.float64]:
    """Prices that bound as well on the candidates and better beyond them.

    With π_i = max over i's candidates of w(i, j) - p_j, both π_i + p_j and π_j + p_i are at least
    w(i, j) (scores are symmetric), so u = (π + p) / 2 satisfies u_i + u_j >= w(i, j) on every candidate
    pair, with the same sum. The auction leaves members nobody competed for at a price near 0, which a
    member who scores them just below their own candidates would gain by; u gives each member half their
    worth instead. Any prices make a valid bound (``_Scan.bound``); these make a tighter one.
    """
    profit = kernels.row_best(graph.indptr, graph.columns, graph.weights, prices)
    balanced: NDArray[np.float64] = (profit + prices) / 2
    return balanced
