"""The compiled kernels of the round (bot/matching/kernels.py) against the numpy columns and the rule
and score themselves, on random communities small (hypothesis) and large enough to hold tags and terms
as dense rows."""

from __future__ import annotations

import itertools
import random
from types import MappingProxyType

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.matching import kernels
from bot.matching.index import Members
from bot.matching.model import Candidate, History
from bot.matching.rules import eligible
from bot.matching.score import UNITS, score
from tests.unit.test_matching_rules import COMPANIES, LANGUAGES, OFFSETS, PHRASES, TAGS, communities


def sorted_members(candidates: list[Candidate], history: History) -> Members:
    members = Members(sorted(candidates, key=lambda c: (c.company, c.user_id)), history, capacity=len(candidates))
    members.rules.sort_by_company()
    return members


def numpy_rows(members: Members) -> np.ndarray:
    size = members.rules.size
    block = np.zeros((size, members.capacity), np.uint8)
    for slot in range(size):
        members.rows([slot], block[slot:slot + 1])
    return block


def kernel_rows(members: Members) -> np.ndarray:
    size = members.rules.size
    block = np.zeros((size, members.capacity), np.uint8)
    kernels.rows(np.arange(size, dtype=np.int64), members.scores.arrays(), members.rules.arrays(), block)
    return block


def large_community(n: int, seed: int) -> tuple[list[Candidate], History]:
    """Many members over few tags and phrases: most tags and terms are held as dense rows."""
    rng = random.Random(seed)
    members = [
        Candidate(user_id=user, company=rng.choice(COMPANIES),
                  languages=frozenset(rng.sample(LANGUAGES, rng.randint(1, 3))),
                  interests=frozenset(rng.sample(TAGS, rng.randint(0, 5))),
                  offers=tuple(rng.sample(PHRASES, rng.randint(0, 2))),
                  seeks=tuple(rng.sample(PHRASES, rng.randint(0, 2))),
                  utc_offset=rng.choice(OFFSETS),
                  avoid=frozenset(rng.sample(COMPANIES, 1)) if rng.random() < 0.1 else frozenset(),
                  available=rng.random() < 0.9)
        for user in range(1, n + 1)
    ]

    def pairs(count: int) -> MappingProxyType[int, frozenset[int]]:
        linked: dict[int, set[int]] = {}
        for _ in range(count):
            a, b = rng.randint(1, n), rng.randint(1, n)
            if a != b:
                linked.setdefault(a, set()).add(b)
                linked.setdefault(b, set()).add(a)
        return MappingProxyType({user: frozenset(others) for user, others in linked.items()})

    return members, History(met=pairs(n), declined=pairs(n // 10), threads=pairs(n))


@settings(max_examples=40)
@given(communities(least=1, most=30))
def test_kernel_rows_are_the_numpy_rows(community: tuple[list[Candidate], History]) -> None:
    members = sorted_members(*community)
    assert np.array_equal(kernel_rows(members), numpy_rows(members))


def test_kernel_rows_are_the_numpy_rows_with_dense_postings() -> None:
    members = sorted_members(*large_community(700, seed=3))
    assert members.scores.arrays().tag_postings.dense_of.max() >= 0   # the dense path is taken
    assert np.array_equal(kernel_rows(members), numpy_rows(members))


@settings(max_examples=40)
@given(communities(least=1, most=30))
def test_kernel_rows_are_symmetric(community: tuple[list[Candidate], History]) -> None:
    # The round reads a row as a column too (kernels.column_best).
    members = sorted_members(*community)
    size = members.rules.size
    square = kernel_rows(members)[:, :size]
    assert np.array_equal(square, square.T)


def test_kernel_rows_are_symmetric_with_dense_postings() -> None:
    members = sorted_members(*large_community(700, seed=4))
    square = kernel_rows(members)[:, :members.rules.size]
    assert np.array_equal(square, square.T)


@settings(max_examples=30)
@given(communities(least=2, most=30), st.integers(0, 2**32 - 1))
def test_column_best_is_the_best_each_member_does_with_the_slots_given(community: tuple[list[Candidate], History],
                                                                       seed: int) -> None:
    members = sorted_members(*community)
    size = members.rules.size
    rng = np.random.default_rng(seed)
    slots = rng.choice(size, rng.integers(0, size + 1), replace=False).astype(np.int64)
    prices = np.zeros(members.capacity, np.int16)
    prices[:size] = rng.integers(0, 255 * kernels.PRICE_SCALE, size)
    best = np.full(members.capacity, kernels.NONE, np.int64)
    kernels.column_best(slots, members.scores.arrays(), members.rules.arrays(), prices, best)
    rows = numpy_rows(members).astype(np.int64)
    for column in range(size):
        values = [row_units * kernels.PRICE_SCALE - prices[slot]
                  for slot in slots.tolist() if (row_units := rows[slot, column]) > 0]
        assert best[column] == max(values, default=kernels.NONE)


def scanned(members: Members, prices: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    size = members.rules.size
    slots = np.arange(size, dtype=np.int64)
    positions = np.empty((size, max(k, 1)), np.int64)
    units = np.empty((size, max(k, 1)), np.uint8)
    best = np.empty(size, np.int64)
    kernels.scan(slots, members.scores.arrays(), members.rules.arrays(), prices, k, slots * 7919, positions, units,
                 best)
    return positions, units, best


@settings(max_examples=30)
@given(communities(least=2, most=40), st.integers(1, 12), st.integers(0, 2**32 - 1))
def test_the_scan_keeps_the_highest_values_after_prices(community: tuple[list[Candidate], History], k: int,
                                                         seed: int) -> None:
    members = sorted_members(*community)
    rows = numpy_rows(members).astype(np.int64)
    prices = np.zeros(members.capacity, np.int16)
    prices[:members.rules.size] = np.random.default_rng(seed).integers(0, 255 * kernels.PRICE_SCALE,
                                                                      members.rules.size)
    positions, units, best = scanned(members, prices, k)
    for slot, row in enumerate(rows):
        values = np.where(row > 0, row * kernels.PRICE_SCALE - prices, kernels.NONE)
        eligible_count = int(np.count_nonzero(row))
        assert best[slot] == values.max()
        kept = positions[slot][positions[slot] >= 0]
        assert len(kept) == min(k, eligible_count) and len(set(kept.tolist())) == len(kept)
        assert (row[kept] > 0).all() and np.array_equal(units[slot][:len(kept)], row[kept])
        assert sorted(values[kept].tolist(), reverse=True) == values[kept].tolist()
        assert values[kept].tolist() == sorted(values[row > 0].tolist(), reverse=True)[:len(kept)]


def test_the_scan_on_a_large_community_keeps_the_highest_values() -> None:
    members = sorted_members(*large_community(900, seed=5))
    rows = numpy_rows(members).astype(np.int64)
    prices = np.zeros(members.capacity, np.int16)
    prices[:members.rules.size] = np.random.default_rng(5).integers(0, 8 * UNITS * kernels.PRICE_SCALE,
                                                                   members.rules.size)
    positions, _, best = scanned(members, prices, 25)
    for slot, row in enumerate(rows):
        values = np.where(row > 0, row * kernels.PRICE_SCALE - prices, kernels.NONE)
        kept = positions[slot][positions[slot] >= 0]
        assert best[slot] == values.max()
        assert values[kept].tolist() == sorted(values[row > 0].tolist(), reverse=True)[:len(kept)]


@settings(max_examples=30)
@given(communities(least=2, most=30), st.integers(1, 6))
def test_the_candidate_graph_holds_each_pair_both_ways_with_its_score(community: tuple[list[Candidate], History],
                                                                     k: int) -> None:
    candidates, history = community
    members = sorted_members(candidates, history)
    in_slots = sorted(candidates, key=lambda c: (c.company, c.user_id))   # as sorted_members puts them
    positions, units, _ = scanned(members, np.zeros(members.capacity, np.int16), k)
    indptr, columns, weights = kernels.candidate_graph(positions, units, members.scores.arrays())
    size = members.rules.size
    edges = {(a, int(columns[e])): float(weights[e]) for a in range(size) for e in range(indptr[a], indptr[a + 1])}
    assert len(edges) == len(columns)
    for a in range(size):
        row = columns[indptr[a]:indptr[a + 1]]
        assert (np.diff(row) > 0).all() and a in row and edges[a, a] == 0.0
    expected = {(a, int(b)) for a in range(size) for b in positions[a] if b >= 0}
    expected |= {(b, a) for a, b in expected} | {(a, a) for a in range(size)}
    assert set(edges) == expected
    for (a, b), weight in edges.items():
        if a != b:
            x, y = in_slots[a], in_slots[b]
            assert eligible(x, y, history)
            assert weight == score(x, y, history)


@settings(max_examples=60)
@given(st.integers(1, 7), st.integers(0, 2**32 - 1))
def test_the_auction_comes_within_epsilon_of_the_best_assignment_and_its_prices_bound_it(n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    weight = np.where(rng.random((n, n)) < 0.6, rng.integers(1, 30, (n, n)) / 4, -1.0)
    weight = np.triu(weight, 1)
    weight = weight + weight.T
    np.fill_diagonal(weight, 0.0)
    indptr = np.zeros(n + 1, np.int64)
    columns, weights = [], []
    for a in range(n):
        row = [b for b in range(n) if b == a or weight[a, b] > 0]
        columns += row
        weights += [weight[a, b] for b in row]
        indptr[a + 1] = len(columns)
    prices = np.zeros(n)
    epsilon = 0.001
    chosen = kernels.auction(indptr, np.array(columns, np.int32), np.array(weights), np.ones(n, np.bool_), prices,
                             np.array([1.0, 0.1, epsilon]), 100.0)
    assert sorted(chosen.tolist()) == list(range(n))
    assert all(chosen[a] == a or weight[a, chosen[a]] > 0 for a in range(n))
    value = sum(weight[a, chosen[a]] for a in range(n))
    best = max(sum(weight[a, p[a]] for a in range(n)) for p in itertools.permutations(range(n))
               if all(p[a] == a or weight[a, p[a]] > 0 for a in range(n)))
    assert value >= best - n * epsilon - 1e-9
    profit = [max(weights[e] - prices[columns[e]] for e in range(indptr[a], indptr[a + 1])) for a in range(n)]
    assert sum(profit) + prices.sum() >= best - 1e-9
