"""The round on plain data: what must hold for any community (nobody twice, never an ineligible pair,
one trio only for an odd count, the total within its bound), and small rounds against brute force."""

from __future__ import annotations

import itertools
import math
import random
from functools import cache

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.matching.index import Members
from bot.matching.model import Candidate, History, LeftOut, RoundPlan
from bot.matching.pairing import _Graph, _Scan, plan_round
from bot.matching.rules import eligible
from bot.matching.score import score
from tests.unit.test_matching_rules import both_ways, communities, member


def check(plan: RoundPlan, candidates: list[Candidate], history: History) -> None:
    """What every plan must satisfy."""
    by_id = {c.user_id: c for c in candidates if c.available}
    seen: set[int] = set()
    trios = 0
    for group in plan.groups:
        assert len(group.members) in (2, 3)
        assert not seen & set(group.members)
        seen |= set(group.members)
        people = [by_id[user] for user in group.members]
        for a, b in itertools.combinations(people, 2):
            assert eligible(a, b, history), (a, b)
        if len(people) == 2:
            assert group.score == score(people[0], people[1], history)
        else:
            trios += 1
            halves = math.fsum(score(a, b, history) for a, b in itertools.combinations(people, 2)) / 2
            assert math.isclose(group.score, halves, rel_tol=1e-12)
    assert trios <= 1 and (trios == 1) == (plan.placed % 2 == 1)
    assert plan.placed == len(seen)
    assert set(plan.left_out) == set(by_id) - seen
    for user, why in plan.left_out.items():
        has_partner = any(eligible(by_id[user], other, history) for other in by_id.values())
        assert why == (LeftOut.NO_GROUP if has_partner else LeftOut.NO_PARTNER)
    assert math.isclose(plan.total, math.fsum(g.score for g in plan.groups), rel_tol=1e-12)
    assert plan.total <= plan.bound + 1e-9


def brute_force(candidates: list[Candidate], history: History) -> tuple[int, float]:
    """The most members placed, and with that the best total, over every plan (pairs, one trio at most)."""
    people = [c for c in candidates if c.available]
    n = len(people)
    weight = {(i, j): score(people[i], people[j], history)
              for i, j in itertools.combinations(range(n), 2) if eligible(people[i], people[j], history)}

    @cache
    def best(free: frozenset[int], trio_left: bool) -> tuple[int, float]:
        if not free:
            return (0, 0.0)
        i = min(free)
        rest = free - {i}
        options = [best(rest, trio_left)]
        for j in rest:
            if (i, j) in weight:
                placed, total = best(rest - {j}, trio_left)
                options.append((placed + 2, total + weight[i, j]))
                if trio_left:
                    for k in rest - {j}:
                        if k > j and (i, k) in weight and (min(j, k), max(j, k)) in weight:
                            placed, total = best(rest - {j, k}, False)
                            trio = (weight[i, j] + weight[i, k] + weight[min(j, k), max(j, k)]) / 2
                            options.append((placed + 3, total + trio))
        return max(options, key=lambda option: (option[0], round(option[1], 9)))

    return best(frozenset(range(n)), True)


def test_nobody_and_one_member() -> None:
    assert plan_round([], History()) == RoundPlan((), {}, 0.0, 0.0)
    plan = plan_round([member(1)], History())
    assert plan.groups == () and plan.left_out == {1: LeftOut.NO_PARTNER} and plan.bound == 0.0


def test_colleagues_are_never_paired() -> None:
    plan = plan_round([member(1, "sony"), member(2, "sony"), member(3, "toyota", available=False)], History())
    assert plan.groups == () and plan.left_out == {1: LeftOut.NO_PARTNER, 2: LeftOut.NO_PARTNER}


def test_three_who_all_fit_make_the_trio() -> None:
    people = [member(1, "a"), member(2, "b"), member(3, "c", interests=frozenset({"ai"}))]
    plan = plan_round(people, History())
    assert [g.members for g in plan.groups] == [(1, 2, 3)] and plan.total == 1.5 and plan.left_out == {}


def test_the_best_pairs_win() -> None:
    people = [member(1, "a", interests=frozenset({"ai"})), member(2, "b", interests=frozenset({"web3"})),
              member(3, "c", interests=frozenset({"ai"})), member(4, "d", interests=frozenset({"web3"}))]
    plan = plan_round(people, History())
    assert [g.members for g in plan.groups] == [(1, 3), (2, 4)] and plan.total == 6.0
    # The bound is the auction's, within its last ε (0.01) per member of the best.
    assert 6.0 <= plan.bound <= 6.0 + 4 * 0.01


def test_history_changes_the_pairs() -> None:
    people = [member(1, "a", interests=frozenset({"ai"})), member(2, "b"), member(3, "c", interests=frozenset({"ai"}))
              , member(4, "d")]
    plan = plan_round(people, History(met=both_ways((1, 3))))
    assert (1, 3) not in [g.members for g in plan.groups] and plan.placed == 4


def test_a_star_places_one_partner_and_says_why_the_others_wait() -> None:
    # Only the centre speaks both languages; nobody else can meet anyone but the centre.
    centre = member(1, "a", languages=frozenset({"ja", "en"}))
    leaves = [member(2, "b", languages=frozenset({"ja"})), member(3, "b", languages=frozenset({"ja"})),
              member(4, "c", languages=frozenset({"en"}))]
    plan = plan_round([centre, *leaves], History())
    assert len(plan.groups) == 1 and plan.placed == 2
    assert set(plan.left_out.values()) == {LeftOut.NO_GROUP}


def test_everyone_is_placed_when_everyone_fits_everyone() -> None:
    for size in range(2, 40):
        people = [member(i, f"company {i}", interests=frozenset({f"t{i % 4}", f"t{i % 3}"}), utc_offset=float(i % 5))
                  for i in range(1, size + 1)]
        plan = plan_round(people, History())
        check(plan, people, History())
        assert plan.placed == size and sum(len(g.members) == 3 for g in plan.groups) == size % 2


def test_the_same_round_whatever_the_order() -> None:
    rng = random.Random(7)
    people = [member(i, f"c{rng.randrange(6)}", languages=frozenset(rng.sample(["ja", "en", "other"], 2)),
                     interests=frozenset(rng.sample(["ai", "hr", "web3", "iot", "ux"], 2)),
                     utc_offset=rng.choice([9.0, 0.0, -5.0, None])) for i in range(1, 80)]
    history = History(met=both_ways(*((rng.randrange(1, 80), rng.randrange(1, 80)) for _ in range(40))))
    plan = plan_round(people, history)
    check(plan, people, history)
    shuffled = people[:]
    rng.shuffle(shuffled)
    assert plan_round(shuffled, history) == plan


@settings(max_examples=50)
@given(communities(most=14))
def test_any_round_keeps_the_rules(community: tuple[list[Candidate], History]) -> None:
    candidates, history = community
    check(plan_round(candidates, history), candidates, history)


@settings(max_examples=10)
@given(communities(least=20, most=60, available=0.95))
def test_larger_rounds_keep_the_rules_with_few_candidates_each(community: tuple[list[Candidate], History]) -> None:
    candidates, history = community
    check(plan_round(candidates, history, top_k=3), candidates, history)


@settings(max_examples=60)
@given(communities(least=2, most=8))
def test_small_rounds_are_as_good_as_brute_force(community: tuple[list[Candidate], History]) -> None:
    candidates, history = community
    plan = plan_round(candidates, history)
    placed, total = brute_force(candidates, history)
    assert plan.placed == placed
    assert plan.total >= 0.995 * total - 1e-9
    assert total <= plan.bound + 1e-9


@settings(max_examples=40)
@given(communities(least=2, most=40, available=1.0), st.integers(1, 6), st.integers(0, 5),
       st.integers(0, 2**32 - 1))
def test_the_bound_from_lists_is_the_bound_of_a_full_scan_or_tighter(community: tuple[list[Candidate], History],
                                                                     k: int, checked: int, seed: int) -> None:
    # Any prices make a valid bound; the round's way of finding it (lists from earlier prices, a few rows
    # checked against everyone, some rows scanned again) must never give more than scanning every row,
    # nor less than the best round.
    candidates, history = community
    taking_part = sorted(candidates, key=lambda c: (c.company, c.user_id))
    n = len(taking_part)
    members = Members(taking_part, history, capacity=n)
    members.rules.sort_by_company()
    scan = _Scan(members, n)
    rng = np.random.default_rng(seed)
    # Final prices near the earlier ones, some lower, as the auction leaves them.
    earlier = rng.integers(0, 12 * 12, n) / 12
    final = np.maximum(0.0, earlier - rng.integers(-12, 24, n) / 12)
    lists = scan.best(earlier, k)
    placeable = scan.best(np.zeros(n), 1).best > -32768
    graph = _Graph.of(scan.scores, [lists])
    found = scan.bound_from(graph, final, placeable, lists, earlier, checked)
    assert found <= scan.bound(final, placeable) + 1e-9
    # At least the bound from exact scores (each member's best partner at the final prices, or staying
    # single): the same prices, no rounding.
    profit = [max([-final[a]] + [score(x, y, history) - final[b] for b, y in enumerate(taking_part)
                                 if b != a and eligible(x, y, history)])
              for a, x in enumerate(taking_part) if placeable[a]]
    assert found >= (math.fsum(profit) + math.fsum(final[placeable].tolist())) / 2 - 1e-9
    if n <= 10:
        assert found >= brute_force(candidates, history)[1] - 1e-9
