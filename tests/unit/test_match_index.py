"""Suggestions: only members the rule allows, best first, the same scores as the scalar score, and still so
after profiles change. (Their reasons are given by the service, from candidates read fresh.)"""

from __future__ import annotations

import itertools
import pickle
import random
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.matching import worker
from bot.matching.index import MatchIndex, PreparedHistory
from bot.matching.model import Candidate, History
from bot.matching.rules import linked, why_not
from bot.matching.score import score
from bot.matching.slots import Linked
from bot.matching.worker import pack_index, pack_pool, unpack_index, unpack_pool
from tests.unit.test_match_kernels import large_community
from tests.unit.test_matching_rules import COMPANIES, PHRASES, TAGS, both_ways, communities, member


def expected(index_members: list[Candidate], history: History, user_id: int, k: int,
             exclude: frozenset[int] = frozenset()) -> list[tuple[int, float]]:
    asker = next(c for c in index_members if c.user_id == user_id)
    found = [(-score(asker, other, history), other.user_id) for other in index_members
             if other.user_id not in exclude and why_not(asker, other, history) is None]
    return [(user, -negative) for negative, user in sorted(found)[:k]]


def test_suggests_the_best_fits() -> None:
    asker = member(1, "sony", interests=frozenset({"ai", "fintech"}))
    others = [
        member(2, "toyota", interests=frozenset({"ai", "fintech"})),
        member(3, "rakuten", interests=frozenset({"ai"})),
        member(4, "sony", interests=frozenset({"ai", "fintech"})),      # same company
        member(5, "mercari"),
        member(6, "line", interests=frozenset({"ai", "fintech"})),      # met recently
    ]
    history = History(met=both_ways((1, 6)))
    index = MatchIndex([asker, *others], history)
    found = index.suggest(1, k=3)
    assert [s.user_id for s in found] == [2, 3, 5]
    assert [s.score for s in found] == [5.0, 3.0, 1.0] and all(s.reasons == () for s in found)
    assert index.history == history and 1 in index and 99 not in index
    assert (index.available(1), index.available(99)) == (True, None)
    assert [s.user_id for s in index.suggest(1, k=3, exclude={2})] == [3, 5]
    assert index.suggest(99) == [] and index.suggest(1, k=0) == []


def test_ties_go_to_the_lower_user_id() -> None:
    index = MatchIndex([member(5, "a"), member(9, "b"), member(3, "c"), member(7, "d")], History())
    assert [s.user_id for s in index.suggest(5, k=3)] == [3, 7, 9]


def test_profile_changes_and_leaving_take_effect() -> None:
    index = MatchIndex([member(1, "sony"), member(2, "toyota"), member(3, "rakuten")], History())
    index.upsert(member(2, "sony"))                       # moved to the asker's company
    assert [s.user_id for s in index.suggest(1)] == [3]
    index.upsert(member(3, "rakuten", available=False))   # paused
    assert index.suggest(1) == [] and index.available(3) is False
    index.upsert(member(4, "mercari", interests=frozenset({"ai"})))
    index.upsert(member(1, "sony", interests=frozenset({"ai"})))
    assert [(s.user_id, s.score) for s in index.suggest(1)] == [(4, 3.0)]
    index.remove(4)
    index.remove(4)
    assert index.suggest(1) == [] and 4 not in index and index.available(4) is None and len(index) == 3
    index.set_history(History(met=MappingProxyType({1: frozenset({2})})))
    index.upsert(member(2, "toyota"))
    assert index.suggest(1) == [] and index.suggest(2) == []   # they met


def test_many_edits_leave_the_answers_and_say_when_to_build_again() -> None:
    people = [member(i, f"company {i % 7}", interests=frozenset({f"tag {i % 5}"})) for i in range(1, 60)]
    index = MatchIndex(people, History())
    assert not index.sparse
    for round_ in range(60):
        for person in people:
            index.upsert(Candidate(**{**person.__dict__, "utc_offset": float(round_ % 3)}))
    assert len(index) == len(people) and index.sparse
    final = [Candidate(**{**p.__dict__, "utc_offset": 2.0}) for p in people]
    for user in (1, 17, 33):
        got = [(s.user_id, s.score) for s in index.suggest(user, k=5)]
        assert got == expected(final, History(), user, 5)
        assert got == [(s.user_id, s.score) for s in MatchIndex(final, History()).suggest(user, k=5)]


@settings(max_examples=35)
@given(communities(least=2, most=14), st.data())
def test_suggestions_agree_with_the_rule_and_the_score(community: tuple[list[Candidate], History],
                                                       data: st.DataObject) -> None:
    candidates, history = community
    index = MatchIndex(candidates[::2], history)
    for candidate in candidates[1::2]:
        index.upsert(candidate)
    held = list(candidates)
    for _ in range(data.draw(st.integers(0, 3))):
        changed = data.draw(st.sampled_from(held))
        edited = Candidate(**{**changed.__dict__, "company": data.draw(st.sampled_from(COMPANIES)),
                              "available": data.draw(st.booleans())})
        index.upsert(edited)
        held = [edited if c.user_id == edited.user_id else c for c in held]
    k = data.draw(st.integers(1, 5))
    hidden = frozenset(data.draw(st.lists(st.sampled_from([c.user_id for c in held]), max_size=2)))
    for asker in held:
        got = index.suggest(asker.user_id, k=k, exclude=hidden)
        assert [(s.user_id, s.score) for s in got] == expected(held, history, asker.user_id, k, hidden)
        assert index.available(asker.user_id) == asker.available


@settings(max_examples=25)
@given(communities(least=2, most=14), st.data())
def test_an_index_packed_for_another_process_comes_back_the_same_and_still_follows_edits(
        community: tuple[list[Candidate], History], data: st.DataObject) -> None:
    candidates, history = community
    index = MatchIndex(candidates, history)
    packed = pickle.loads(pickle.dumps(pack_index(index)))   # as the round worker sends it
    back = unpack_index(packed)
    assert back.history == index.history
    users = [c.user_id for c in candidates]
    for name in ("met", "declined", "threads"):   # kept both ways round, as the rule and the reasons read them
        for a, b in itertools.permutations(users, 2):
            assert linked(getattr(back.history, name), a, b) == linked(getattr(history, name), a, b)
    asker = candidates[0].user_id
    assert back.suggest(asker, k=5) == index.suggest(asker, k=5)
    edited = Candidate(**{**candidates[-1].__dict__, "company": data.draw(st.sampled_from(COMPANIES))})
    for each in (index, back):
        each.upsert(edited)
        each.remove(candidates[1].user_id)
    held = [edited if c.user_id == edited.user_id else c for c in candidates if c.user_id != candidates[1].user_id]
    for user in [c.user_id for c in held]:
        got = [(s.user_id, s.score) for s in back.suggest(user, k=5)]
        assert got == [(s.user_id, s.score) for s in index.suggest(user, k=5)] == expected(held, history, user, 5)


def test_an_index_edited_many_times_answers_as_one_built_afresh() -> None:
    """Enough members for common tags and terms to be rows of bytes, and enough edits for the rare ones'
    lists to be turned round several times, some ids becoming common on the way."""
    people, history = large_community(600, seed=11)
    index = MatchIndex(people[:300], history)
    rng = random.Random(4)
    held = {person.user_id: person for person in people[:300]}
    for person in people[300:] + rng.choices(people, k=1500):
        edited = Candidate(**{**person.__dict__, "interests": frozenset(rng.sample(TAGS, rng.randint(0, 4))),
                              "seeks": tuple(rng.sample(PHRASES, rng.randint(0, 2)))})
        index.upsert(edited)
        held[edited.user_id] = edited
    fresh = MatchIndex(held.values(), history)
    for user in rng.sample(sorted(held), 60):
        assert index.suggest(user, k=5) == fresh.suggest(user, k=5)


def test_an_index_is_packed_an_array_chunk_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(worker, "_ARRAY_CHUNK", 256)
    people, history = large_community(300, seed=12)
    index = MatchIndex(people, history)
    packed = pack_index(index)
    arrays = arrays_in(packed)
    chunks = [chunk for array in arrays for chunk in array[4]]
    assert max(map(len, chunks)) <= 256 and any(len(array[4]) > 1 for array in arrays)
    back = unpack_index(pickle.loads(pickle.dumps(packed)))
    assert all(back.suggest(person.user_id) == index.suggest(person.user_id) for person in people)


def arrays_in(packed: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """The arrays among a packed object's attributes (alone or in lists), and theirs."""
    if packed[0] == worker._ARRAY:
        return [packed]
    if packed[0] == worker._ARRAYS:
        return [found for each in packed[2] for found in arrays_in(each)]
    if packed[0] == worker._OBJECT:
        return [found for _, each in packed[3] for found in arrays_in(each)]
    return []


def test_a_history_packed_for_another_process_comes_back_as_the_arrays_the_index_keeps() -> None:
    people, history = large_community(200, seed=13)
    _, back = unpack_pool(pickle.loads(pickle.dumps(pack_pool((), history))))   # as read_history sends it
    assert back == MatchIndex([], history).history
    prepared = PreparedHistory.of(back)
    assert isinstance(back.met, Linked) and prepared.links is back.met.links   # taken as they are
    index = MatchIndex(people, History())
    index.use_history(prepared)
    built = MatchIndex(people, history)
    assert all(index.suggest(person.user_id) == built.suggest(person.user_id) for person in people)
