"""The round: every available member placed in a pair, or in the one trio an odd count needs, with the
total score as high as it can be made, and an upper bound on it that says how close the round came.

How, for n members:

1. Candidates. Each member is scored against everyone at once, a few rows at a time (``Members.rows``:
   scores in byte-sized units, the rule applied), and keeps their ``top_k`` best (``best_in_rows``).
2. Assignment. On the candidate graph (both directions of every candidate, plus "stay single" at 0),
   an auction (Bertsekas, with ε-scaling) assigns members to partners for a near-maximum total, and
   leaves prices that bound how far from the best any round can be (``_bound``).
3. Pairs. Mutual choices are pairs; longer cycles of the assignment are cut into pairs (an even cycle
   keeps the better half of its edges, an odd one leaves out the member whose absence costs least).
4. Everyone placed. Members left single who have an eligible partner look further down their lists,
   and are placed by the best short exchange, else by an augmenting path (Edmonds' blossoms); one left
   over makes the trio, by joining a pair or by taking a place in one whose member moves on.
5. Small rounds: with up to ``_EXACT_UP_TO`` members who have a partner the plan is found by trying
   every one; up to ``_POLISH_UP_TO`` members it is polished by local search.
6. Bound. Up to ``_PRICED_BOUND_UP_TO`` members, a second pass over all rows turns the prices into an
   upper bound on any round's total (``_bound``); beyond, the bound is each member's best score, halved.

Numpy does the work over rows and edges and releases the GIL while it does; the Python loops between
its calls let the event loop run, when the bot calls this from a worker thread.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

import numpy as np
from numpy.typing import NDArray

from bot.matching.index import Members
from bot.matching.model import Candidate, Group, History, LeftOut, RoundPlan
from bot.matching.rules import eligible
from bot.matching.score import UNITS, best_in_rows, score

# Rows are scored a block at a time (a block stays in a core's cache), in an order that lets neighbours
# share work.
_BLOCK_BYTES: Final = 262144
_MOST_ROWS: Final = 64
# The auction's ε, phase by phase, in score points; the last one bounds how far its total can fall
# short of the best assignment on the candidates: by ε per member at most.
_EPSILONS: Final = (1.0, 0.1, 0.01)
# An augmenting path search gives up after visiting this many members: a member nobody can be moved
# for in a search this large is reported as left out rather than holding up the round.
_SEARCH_BUDGET: Final = 2000
# The last few members left single may look through every eligible partner for a short move.
_LAST_FEW: Final = 4
# How far down their list members left single after the assignment look for a way in.
_WIDER: Final = 200
_FEW_BIDDERS: Final = 32
_BIDDERS_AT_ONCE: Final = 8192
_EDGES_AT_ONCE: Final = 1 << 20
# Above this many members, the round's bound is the plain one (each member's best score, halved):
# the priced bound scores every row a second time.
_PRICED_BOUND_UP_TO: Final = 40_000
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
    members.scores.prepare()
    order = _row_order(members, n)
    lists = _candidate_lists(members, n, top_k, order)
    graph = _Graph.of(members, lists)
    placeable = lists.best > 0
    partner, prices = _auction(graph, placeable)
    mate = _pairs(graph, partner)
    single = np.flatnonzero(placeable & (mate == _SINGLE)).tolist()
    if len(single) > 1:
        graph = graph.widened(members, single, _WIDER)
    _place_everyone(graph, mate, placeable)
    single = np.flatnonzero(placeable & (mate == _SINGLE)).tolist()
    if 1 < len(single) <= _LAST_FEW:
        graph = graph.widened(members, single, members.capacity)
        _place_everyone(graph, mate, placeable)
    trio = _trio(graph, mate, placeable, taking_part, history)
    # Each member's best score bounds what they can bring (half of it, as a pair's score counts for
    # both); the prices bound it better, at the cost of scoring every row a second time.
    bound = math.fsum(lists.best[placeable].tolist()) / UNITS / 2
    if n <= _PRICED_BOUND_UP_TO:
        bound = min(bound, _bound(members, n, _balanced(graph, prices), placeable, order))

    fit = _Fit(graph, taking_part, history)
    chosen: list[tuple[int, ...]] = [(a, int(mate[a])) for a in range(n) if a < mate[a]]
    if trio is not None:
        chosen.append(trio.members)
    if np.count_nonzero(placeable) <= _EXACT_UP_TO:
        chosen = _exact(fit, np.flatnonzero(placeable).tolist())
    elif n <= _POLISH_UP_TO:
        chosen = _polish(graph, fit, chosen, np.flatnonzero(placeable & (mate == _SINGLE)).tolist())
    groups = sorted(
        (Group(members=tuple(sorted(taking_part[i].user_id for i in group)), score=fit.value(group))
         for group in chosen if len(group) > 1),
        key=lambda group: group.members)
    placed = {user for group in groups for user in group.members}
    left_out = {
        c.user_id: LeftOut.NO_GROUP if placeable[i] else LeftOut.NO_PARTNER
        for i, c in enumerate(taking_part) if c.user_id not in placed
    }
    total = math.fsum(group.score for group in groups)
    return RoundPlan(groups=tuple(groups), left_out=MappingProxyType(dict(sorted(left_out.items()))),
                     total=total, bound=bound)


def _row_order(members: Members, n: int) -> NDArray[np.intp]:
    """Rows ordered so that neighbours share languages (``exclude`` takes them together), seeks, offers
    and time zone (``units`` computes what they share once)."""
    keys = [members.scores.shared_key(i) for i in range(n)]
    rank = {key: r for r, key in enumerate(sorted(set(keys)))}
    shared = np.fromiter((rank[key] for key in keys), np.intp, n)
    languages = np.fromiter((members.rules.languages(i) for i in range(n)), np.int64, n)
    return np.lexsort((np.arange(n), shared, languages)).astype(np.intp)


def _block_rows(capacity: int) -> int:
    """How many rows to score at once: a block of rows stays in a core's cache, and each numpy call
    covers many rows of a small round."""
    return max(1, min(_MOST_ROWS, _BLOCK_BYTES // capacity))


@dataclass(frozen=True)
class _Lists:
    positions: NDArray[np.int32]   # n × k, the candidates of each row, best first; -1 past the last
    units: NDArray[np.uint8]       # their scores in units
    best: NDArray[np.uint8]        # each row's best score in units (0: nobody eligible)


def _candidate_lists(members: Members, n: int, k: int, order: NDArray[np.intp]) -> _Lists:
    k = max(1, min(k, n - 1)) if n > 1 else 1
    positions = np.full((n, k), -1, np.int32)
    units = np.zeros((n, k), np.uint8)
    best = np.zeros(n, np.uint8)
    users = members.user_ids.astype(np.int64)

    rotate = (users[:n] * 0x9E3779B1) & 0xFFFFFFFF   # where each member's ties start: fixed, well mixed
    size = _block_rows(members.capacity)

    def scan(rows: NDArray[np.intp]) -> None:
        block = np.empty((size, members.capacity), np.uint8)
        memo: dict[object, NDArray[np.uint8]] = {}
        for start in range(0, len(rows), size):
            slots = rows[start:start + size]
            part = members.rows(slots.tolist(), block[:len(slots)], memo)
            found, values = best_in_rows(part, k, rotate[slots])
            found[values == 0] = -1
            positions[slots] = found
            units[slots] = values
            best[slots] = values[:, 0]

    scan(order)
    return _Lists(positions, units, best)


@dataclass(frozen=True)
class _Graph:
    """The candidate graph, both ways round, as compressed rows sorted by column; each row also holds
    the member itself ("stay single", weight 0), as the assignment needs."""

    indptr: NDArray[np.intp]
    columns: NDArray[np.intp]
    weights: NDArray[np.float64]
    # Rows given more partners after the assignment (``widened``), whole, in place of their slice.
    wider: dict[int, tuple[NDArray[np.intp], NDArray[np.float64]]] = field(default_factory=dict)

    @classmethod
    def of(cls, members: Members, lists: _Lists) -> _Graph:
        n = len(lists.positions)
        held = lists.positions >= 0
        a = np.repeat(np.arange(n), held.sum(axis=1))
        return cls.build(members, n, a, lists.positions[held].astype(np.intp), lists.units[held])

    @classmethod
    def build(cls, members: Members, n: int, a: NDArray[np.intp], b: NDArray[np.intp], units: NDArray[np.uint8],
              ) -> _Graph:
        # Scores are symmetric, units too: each edge once per direction, then the members themselves,
        # as sorted keys (row, column, units) packed in one integer: sorted in place, without an index.
        keys = np.concatenate([(a * n + b) << 8 | units, (b * n + a) << 8 | units, (np.arange(n) * (n + 1)) << 8])
        keys.sort()
        keys = keys[np.concatenate([[True], (keys[1:] >> 8) != (keys[:-1] >> 8)])]
        unit_of = (keys & 0xFF).astype(np.uint8)
        keys >>= 8
        rows = (keys // n).astype(np.intp)
        columns = (keys % n).astype(np.intp)
        del keys
        weights = np.empty(len(rows))
        for start in range(0, len(rows), _EDGES_AT_ONCE):
            part = slice(start, start + _EDGES_AT_ONCE)
            weights[part] = members.scores.exact_pairs(rows[part], columns[part], unit_of[part])
        weights[rows == columns] = 0.0
        indptr = np.zeros(n + 1, np.intp)
        np.cumsum(np.bincount(rows, minlength=n), out=indptr[1:])
        return cls(indptr, columns, weights)

    def widened(self, members: Members, slots: list[int], k: int) -> _Graph:
        """The graph with up to ``k`` more partners for each of ``slots`` (both ways round): members
        still single after the assignment look further down their lists for a way in."""
        added: dict[int, dict[int, float]] = {}
        block = np.empty((1, members.capacity), np.uint8)
        for slot in slots:
            members.rows([slot], block)
            positions, values = best_in_rows(block, k, np.zeros(1, np.int64))
            held = values[0] > 0
            others = positions[0][held].astype(np.intp)
            weights = members.scores.exact(slot, others, values[0][held])
            for other, weight in zip(others.tolist(), weights.tolist(), strict=True):
                if not self.has(slot, other):
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

    def row(self, a: int) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
        """a's partners in the graph (sorted) and the weights of those pairs."""
        found = self.wider.get(a)
        if found is not None:
            return found
        start, end = int(self.indptr[a]), int(self.indptr[a + 1])
        return self.columns[start:end], self.weights[start:end]

    def neighbours(self, a: int) -> NDArray[np.intp]:
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


def _auction(graph: _Graph, active: NDArray[np.bool_]) -> tuple[NDArray[np.intp], NDArray[np.float64]]:
    """Each active member bids for the partner (or for staying single) worth most to them at current
    prices; the highest bid for a partner wins them and sets their price. A bid raises the price by the
    bidder's margin over their second choice, plus ε, so this ends; ε shrinks phase by phase, and the
    assignments that remain within ε of the best are kept from one phase to the next.

    Many bidders bid at once, in numpy; the last few, one at a time (a round of numpy calls for one or
    two bidders costs more than their bids).

    Returns the partner each member chose (itself for staying single) and the final prices.
    """
    n = len(graph.indptr) - 1
    indptr, columns, weights = graph.indptr, graph.columns, graph.weights
    degree = np.diff(indptr)
    # A member with one option bids as if the next were worth this much less than nothing.
    no_second = 1.0 + float(np.max(weights, initial=0.0))
    price = np.zeros(n)
    chosen = np.arange(n)          # member -> the partner they hold (itself while single, or inactive)
    holder = np.arange(n)          # partner -> the member holding them, -1 for nobody
    edge_of = indptr[:-1].copy()   # member -> the edge they hold
    held = np.zeros(n, np.bool_)
    held[~active] = True
    for phase, epsilon in enumerate(_EPSILONS):
        if phase:
            values = weights - price[columns]
            best = np.maximum.reduceat(values, indptr[:-1])
            slack = active & held & (values[edge_of] < best - epsilon)
            held[slack] = False
            holder[chosen[slack]] = -1
        else:
            held[active] = False
            holder[active] = -1
        bidders = np.flatnonzero(~held)
        while len(bidders) > _FEW_BIDDERS:
            targets, bids, picked = _bids(graph, degree, price, bidders, epsilon, no_second)
            ranked = np.lexsort((bidders, -bids, targets))
            ranked_targets = targets[ranked]
            winners = ranked[np.concatenate([[True], ranked_targets[1:] != ranked_targets[:-1]])]
            won = targets[winners]
            displaced = holder[won]
            displaced = displaced[displaced >= 0]
            held[displaced] = False
            price[won] = bids[winners]
            holder[won] = bidders[winners]
            chosen[bidders[winners]] = won
            edge_of[bidders[winners]] = picked[winners]
            held[bidders[winners]] = True
            lost = np.ones(len(bidders), np.bool_)
            lost[winners] = False
            bidders = np.concatenate([bidders[lost], displaced])
        queue = deque(bidders.tolist())
        while queue:
            bidder = queue.popleft()
            start, end = int(indptr[bidder]), int(indptr[bidder + 1])
            values = weights[start:end] - price[columns[start:end]]
            first = int(np.argmax(values))
            best_value = float(values[first])
            values[first] = -np.inf
            next_value = float(values.max()) if end - start > 1 else best_value - no_second
            target = int(columns[start + first])
            price[target] += best_value - next_value + epsilon
            previous = int(holder[target])
            if previous >= 0:
                held[previous] = False
                queue.append(previous)
            holder[target] = bidder
            chosen[bidder] = target
            edge_of[bidder] = start + first
            held[bidder] = True
    return chosen, price


def _bids(graph: _Graph, degree: NDArray[np.intp], price: NDArray[np.float64], bidders: NDArray[np.intp],
          epsilon: float, no_second: float) -> tuple[NDArray[np.intp], NDArray[np.float64], NDArray[np.intp]]:
    """What each bidder bids for, how much, and the edge: computed a slice of bidders at a time, so that
    the first rounds, when everyone bids, do not hold every edge's temporaries at once."""
    targets, bids, picked = [], [], []
    for first in range(0, len(bidders), _BIDDERS_AT_ONCE):
        some = bidders[first:first + _BIDDERS_AT_ONCE]
        lengths = degree[some]
        starts = np.cumsum(lengths) - lengths
        edges = np.repeat(graph.indptr[some] - starts, lengths) + np.arange(int(lengths.sum()))
        values = graph.weights[edges] - price[graph.columns[edges]]
        top = np.maximum.reduceat(values, starts)
        hits = np.flatnonzero(values == np.repeat(top, lengths))
        segment = np.repeat(np.arange(len(some)), lengths)[hits]
        firsts = hits[np.concatenate([[True], segment[1:] != segment[:-1]])]
        values[firsts] = -np.inf
        second = np.maximum.reduceat(values, starts)
        second = np.where(np.isfinite(second), second, top - no_second)
        chosen = graph.columns[edges[firsts]]
        targets.append(chosen)
        bids.append(price[chosen] + (top - second) + epsilon)
        picked.append(edges[firsts])
    return np.concatenate(targets), np.concatenate(bids), np.concatenate(picked)


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
    moves = []
    for u in single:
        best: tuple[tuple[float, int, int, int], list[tuple[int, int]]] | None = None
        partners, weights = graph.row(u)
        keep = partners != u
        partners, weights = partners[keep], weights[keep]
        direct = free[partners]
        if direct.any():
            at = int(np.argmax(np.where(direct, weights, -np.inf)))
            option = ((-float(weights[at]), u, int(partners[at]), -1), [(u, int(partners[at]))])
            if best is None or option[0] < best[0]:
                best = option
        for a, with_a in zip(partners.tolist(), weights.tolist(), strict=True):
            b = int(mate[a])
            if b < 0:
                continue
            others, with_b = graph.row(b)
            ok = free[others] & (others != u)
            if not ok.any():
                continue
            at = int(np.argmax(np.where(ok, with_b, -np.inf)))
            gain = with_a + float(with_b[at]) - graph.weight(a, b)
            option = ((-gain, u, a, int(others[at])), [(u, a), (b, int(others[at]))])
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


def _trio(graph: _Graph, mate: NDArray[np.intp], placeable: NDArray[np.bool_], taking_part: Sequence[Candidate],
          history: History) -> _Trio | None:
    """The one trio a round may have, to place one more member. A trio's score is half the sum of its
    three pairs' (each member counts the mean of their two).

    Best: a member still single joins a pair whose two members they both fit, the way that adds most.
    Failing that, a member x who fits both members of another pair joins it, and x's partner, single
    now, is placed by an augmenting path: a trio can place a member it does not contain.
    """
    def third(x: int, y: int) -> float | None:
        if graph.has(x, y):
            return graph.weight(x, y)
        if eligible(taking_part[x], taking_part[y], history):
            return score(taking_part[x], taking_part[y], history)
        return None

    def joined(x: int, a: int, b: int, with_b: float) -> _Trio:
        return _Trio((x, a, b), (graph.weight(x, a) + with_b + graph.weight(a, b)) / 2)

    single = np.flatnonzero(placeable & (mate < 0)).tolist()
    best: tuple[tuple[float, int, int, int], _Trio] | None = None
    for x in single:
        for a in graph.neighbours(x).tolist():
            b = int(mate[a])
            if a == x or b < 0:
                continue
            with_b = third(x, b)
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
            with_b = third(x, b)
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
    worth instead. Any prices make a valid bound (``_bound``); these make a tighter one.
    """
    profit = np.maximum.reduceat(graph.weights - prices[graph.columns], graph.indptr[:-1])
    balanced: NDArray[np.float64] = (profit + prices) / 2
    return balanced


def _bound(members: Members, n: int, prices: NDArray[np.float64], placeable: NDArray[np.bool_],
           order: NDArray[np.intp]) -> float:
    """An upper bound on the total of any round of these members, from the auction's prices.

    Why it holds. Write w(i, j) for the score of an eligible pair. A round's pairs and trio define an
    assignment σ of members to members (a pair {i, j}: i → j and j → i; a trio {a, b, c}: a → b → c → a;
    anyone left out: i → i, worth 0), and the round's total is exactly half the assignment's value
    Σ_i w(i, σ(i)): a pair counts w(i, j) twice, a trio each of its three pairs once, and its score is
    half that sum. For any prices p, let π_i = max(-p_i, max over j eligible with i of w(i, j) - p_j).
    Then π_i + p_σ(i) >= w(i, σ(i)) for every i, and since σ is a permutation,
    Σ_i w(i, σ(i)) <= Σ_i π_i + Σ_j p_j. So every round's total is at most (Σ π + Σ p) / 2.

    The maximum runs over every eligible pair, not just the candidates: each row is scored again in
    full. Units are rounded up and prices down (``units >= 12 w``, ``floor(12 p) <= 12 p``), so each
    π computed is at least the true one, and the bound stays valid. Members without any eligible
    partner are i → i in every round and add π_i + p_i = 0 (their price is 0).
    """
    price_units = np.zeros(members.capacity, np.int16)
    price_units[:n] = np.clip(np.floor(prices * UNITS), 0, (1 << 14)).astype(np.int16)
    profit = np.zeros(n)

    size = _block_rows(members.capacity)

    def scan(rows: NDArray[np.intp]) -> None:
        block = np.empty((size, members.capacity), np.uint8)
        signed = np.empty((size, members.capacity), np.int16)
        memo: dict[object, NDArray[np.uint8]] = {}
        rows = rows[placeable[rows]]
        for start in range(0, len(rows), size):
            slots = rows[start:start + size]
            part, margin = block[:len(slots)], signed[:len(slots)]
            members.rows(slots.tolist(), part, memo)
            # An excluded entry is 0 here, so it counts as an option worth -p_j: a maximum over more
            # than the eligible pairs is still at least the true π_i, and -p_j is below any option a
            # member who has one ever takes.
            np.subtract(part, price_units, out=margin, dtype=np.int16)
            profit[slots] = np.maximum(-prices[slots], margin.max(axis=1) / UNITS)

    scan(order)
    return (math.fsum(profit[placeable].tolist()) + math.fsum(prices[placeable].tolist())) / 2
