"""The arrays the suggestion index and the round keep members in (bot/matching/slots.py), held to plain Python
models of them: lists a slot, each member's slot, and a history's pairs both ways round."""

from __future__ import annotations

import itertools
from types import MappingProxyType

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.matching.model import History
from bot.matching.slots import (
    LINK_DECLINED,
    LINK_MET,
    LINK_THREAD,
    Linked,
    Links,
    Rows,
    Slots,
    history_links,
    linked_history,
)

ids = st.lists(st.integers(0, 40), max_size=4)


@given(st.lists(st.lists(ids, max_size=5), max_size=6))
def test_rows_hold_each_slots_list_however_they_were_appended(batches: list[list[list[int]]]) -> None:
    rows = Rows()
    lists: list[list[int]] = []
    for batch in batches:
        rows.extend(batch)
        lists += batch
    assert rows.size == len(lists)
    assert [rows.ids(slot) for slot in range(len(lists))] == [tuple(each) for each in lists] == rows.all_ids()
    starts, values = rows.csr()
    assert [values[start:end].tolist() for start, end in itertools.pairwise(starts)] == lists
    positions = np.arange(len(values))
    assert rows.slots_at(positions).tolist() == [slot for slot, each in enumerate(lists) for _ in each]


@settings(max_examples=60)
@given(st.lists(st.tuples(st.booleans(), st.lists(st.integers(1, 30), max_size=4, unique=True)), max_size=12))
def test_slots_find_each_members_latest_slot(steps: list[tuple[bool, list[int]]]) -> None:
    slots = Slots()
    model: dict[int, int] = {}
    owners: list[int] = []
    for adding, users in steps:
        if adding:
            slots.add(np.array(users, np.int64))
            model.update((user, len(owners) + i) for i, user in enumerate(users))
            owners += users
        else:
            for user in users:
                slots.remove(user)
                model.pop(user, None)
        assert dict(slots) == model and len(slots) == len(model)
        assert slots.user_ids[:slots.size].tolist() == owners
        everyone = np.arange(0, 32, dtype=np.int64)
        assert slots.slots(everyone).tolist() == [model.get(user, -1) for user in range(32)]
        assert all((user in slots) == (user in model) for user in range(32))
    with pytest.raises(KeyError):
        slots[99]


def pairs(most: int) -> st.SearchStrategy[dict[int, frozenset[int]]]:
    """Pairs given one way or the other, and now and then a member linked to themselves."""
    return st.dictionaries(st.integers(1, 12), st.frozensets(st.integers(1, 12), min_size=1, max_size=4),
                           max_size=most)


def closure(*maps: dict[int, frozenset[int]]) -> dict[int, frozenset[int]]:
    """The pairs of ``maps`` both ways round, with nobody linked to themselves."""
    found: dict[int, set[int]] = {}
    for linked in maps:
        for user, others in linked.items():
            for other in others - {user}:
                found.setdefault(user, set()).add(other)
                found.setdefault(other, set()).add(user)
    return {user: frozenset(others) for user, others in found.items()}


@settings(max_examples=60)
@given(pairs(8), pairs(4), pairs(8))
def test_links_keep_a_historys_pairs_both_ways_round(met: dict[int, frozenset[int]],
                                                     declined: dict[int, frozenset[int]],
                                                     threads: dict[int, frozenset[int]]) -> None:
    history = History(met=MappingProxyType(met), declined=MappingProxyType(declined), threads=MappingProxyType(threads))
    links = history_links(history)
    read = linked_history(links)
    assert dict(read.met) == closure(met) and dict(read.declined) == closure(declined)
    assert dict(read.threads) == closure(threads)
    apart = closure(met, declined)
    for user in range(14):
        assert sorted(links.linked(user, LINK_MET | LINK_DECLINED).tolist()) == sorted(apart.get(user, ()))
    assert history_links(read) is links   # read from arrays already: taken as they are


@settings(max_examples=60)
@given(pairs(8), pairs(8), st.lists(st.integers(1, 14), max_size=10, unique=True), st.data())
def test_links_reach_the_slots_of_members_held(met: dict[int, frozenset[int]], threads: dict[int, frozenset[int]],
                                               users: list[int], data: st.DataObject) -> None:
    links = Links.of(((LINK_MET, met), (LINK_THREAD, threads)))
    slots = Slots()
    slots.add(np.array(users, np.int64))
    moved = data.draw(st.lists(st.sampled_from(users), unique=True)) if users else []
    slots.add(np.array(moved, np.int64))   # their first slots are retired, their new ones at the end
    for kinds, linked in ((LINK_MET, closure(met)), (LINK_THREAD, closure(threads)),
                          (LINK_MET | LINK_THREAD, closure(met, threads))):
        starts, values = links.linked_slots(kinds, slots, slots.size)
        for slot in range(slots.size):
            user = int(slots.user_ids[slot])
            expected = {slots[other] for other in linked.get(user, ()) if other in slots} - {slot}
            assert sorted(values[starts[slot]:starts[slot + 1]].tolist()) == sorted(expected)


def test_a_linked_view_is_a_mapping_of_frozensets() -> None:
    links = Links.of(((LINK_MET, {1: frozenset({2})}), (LINK_DECLINED, {3: frozenset({1})})))
    met = Linked(links, LINK_MET)
    assert met[1] == frozenset({2}) and met[2] == frozenset({1}) and 3 not in met and met.get(3, ()) == ()
    assert sorted(met) == [1, 2] and len(met) == 2
    assert met == MappingProxyType({1: frozenset({2}), 2: frozenset({1})})
    assert dict(Linked(Links.of(()), LINK_MET)) == {}
