"""The delivery plan of a round (bot/matching/delivery.py), on plain data: the room for threads, which
groups get one, what a refused thread or a closed DM means, and departures before the introduction."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bot.matching.delivery import (
    THREAD_CAP,
    THREAD_MARGIN,
    GroupState,
    PlannedGroup,
    ThreadRefusal,
    Way,
    after_dms,
    choose_ways,
    interleaved,
    progress_bar,
    regroup,
    thread_refused,
    thread_room,
    time_left,
)


def pairs(n: int) -> list[PlannedGroup]:
    return [PlannedGroup(i + 1, (100 + 2 * i, 101 + 2 * i)) for i in range(n)]


def test_the_room_is_the_cap_less_active_threads_and_the_margin_never_below_zero() -> None:
    assert thread_room(0) == THREAD_CAP - THREAD_MARGIN
    assert thread_room(300) == THREAD_CAP - THREAD_MARGIN - 300
    assert thread_room(THREAD_CAP - THREAD_MARGIN) == 0
    assert thread_room(THREAD_CAP + 5) == 0
    assert thread_room(997, margin=0) == 3


def test_threads_go_first_to_groups_whose_members_have_dms_closed_then_in_order() -> None:
    groups = pairs(8)
    closed = {113, 114, 115, 101}   # group 7 (113), group 8 (114, 115), group 1 (101)
    ways = choose_ways(groups, closed, room=3)
    assert [g for g, way in ways.items() if way is Way.THREAD] == [1, 7, 8]
    assert sum(1 for way in ways.values() if way is Way.DM) == 5
    # With room for everyone, everyone gets a thread; with none, nobody does.
    assert set(choose_ways(groups, closed, room=100).values()) == {Way.THREAD}
    assert set(choose_ways(groups, closed, room=0).values()) == {Way.DM}


def test_threads_and_dms_are_spread_through_the_round_in_their_own_order() -> None:
    groups = pairs(8)
    ways = {g.id: Way.THREAD if g.id <= 2 else Way.DM for g in groups}
    order = [g.id for g in interleaved(groups, ways)]
    assert sorted(order) == [g.id for g in groups]
    assert [g for g in order if g <= 2] == [1, 2] and [g for g in order if g > 2] == [3, 4, 5, 6, 7, 8]
    assert order.index(1) < order.index(5) < order.index(2)   # not all threads first
    assert interleaved([], {}) == []


@given(st.integers(0, 30), st.integers(-5, 40), st.sets(st.integers(100, 170)))
def test_never_more_threads_than_room_and_every_group_has_one_way(n: int, room: int, closed: set[int]) -> None:
    groups = pairs(n)
    ways = choose_ways(groups, closed, room)
    assert set(ways) == {g.id for g in groups}
    threads = [g for g in groups if ways[g.id] is Way.THREAD]
    assert len(threads) == min(n, max(0, room))
    # No group left to DMs has more closed members than a group given a thread.
    dm_closed = [sum(u in closed for u in g.members) for g in groups if ways[g.id] is Way.DM]
    thread_closed = [sum(u in closed for u in g.members) for g in threads]
    if dm_closed and thread_closed:
        assert max(dm_closed) <= min(thread_closed)


def test_the_cap_and_missing_permissions_mean_dms_anything_else_a_retry() -> None:
    assert thread_refused(160006, 400) is ThreadRefusal.FULL
    assert thread_refused(50013, 403) is ThreadRefusal.NO_PERMISSION
    assert thread_refused(50001, 403) is ThreadRefusal.NO_PERMISSION
    assert thread_refused(0, 500) is ThreadRefusal.RETRY
    assert thread_refused(0, 502) is ThreadRefusal.RETRY


def test_after_dms_partners_of_someone_unreached_are_told_and_nobody_reached_takes_a_spare_thread() -> None:
    everyone = after_dms([1, 2], [], spare_threads=0)
    assert everyone.state is GroupState.DELIVERED and everyone.tell == () and not everyone.use_thread
    one_closed = after_dms([1], [2], spare_threads=5)
    assert one_closed.state is GroupState.DELIVERED and one_closed.tell == (1,) and not one_closed.use_thread
    nobody = after_dms([], [1, 2], spare_threads=1)
    assert nobody.use_thread and nobody.state is GroupState.PLANNED
    nobody_no_room = after_dms([], [1, 2], spare_threads=0)
    assert not nobody_no_room.use_thread and nobody_no_room.state is GroupState.CANCELLED


def test_a_member_left_alone_joins_a_pair_they_fit_else_is_told() -> None:
    groups = [PlannedGroup(1, (1, 2)), PlannedGroup(2, (3, 4)), PlannedGroup(3, (5, 6, 7)), PlannedGroup(4, (8, 9))]
    present = {1, 3, 4, 5, 6, 8, 9}   # 2 and 7 left
    regrouped = regroup(groups, present, fits=lambda user, members: 3 not in members)
    assert regrouped.moved_to == {1: 4}           # not with (3, 4): the rule says no
    assert regrouped.cancelled == (1,) and regrouped.alone == ()
    assert {g.id: g.members for g in regrouped.groups} == {2: (3, 4), 3: (5, 6), 4: (8, 9, 1)}
    assert regrouped.left == {1: (2,), 3: (7,)}
    nowhere = regroup(groups, present, fits=lambda user, members: False)
    assert nowhere.alone == (1,) and nowhere.moved_to == {}


def test_a_pair_takes_at_most_one_newcomer_and_a_group_that_lost_someone_takes_none() -> None:
    groups = [PlannedGroup(1, (1, 2)), PlannedGroup(2, (3, 4)), PlannedGroup(3, (5, 6)), PlannedGroup(4, (7, 8, 9))]
    regrouped = regroup(groups, {1, 3, 5, 6, 7, 8}, fits=lambda user, members: True)
    # 1 and 3 are alone; (7, 8) lost 9 so takes nobody; (5, 6) takes the first; the second stays alone.
    assert regrouped.moved_to == {1: 3} and regrouped.alone == (3,)
    assert all(len(g.members) <= 3 for g in regrouped.groups)


@given(st.lists(st.integers(2, 3), max_size=20), st.sets(st.integers(0, 70)))
def test_regrouping_keeps_everyone_present_once_and_nobody_gone(sizes: list[int], gone: set[int]) -> None:
    groups, user = [], 0
    for i, size in enumerate(sizes):
        groups.append(PlannedGroup(i + 1, tuple(range(user, user + size))))
        user += size
    present = {u for g in groups for u in g.members if u not in gone}
    regrouped = regroup(groups, present, fits=lambda u, members: (u + sum(members)) % 2 == 0)
    placed = [u for g in regrouped.groups for u in g.members]
    assert len(placed) == len(set(placed))
    assert set(placed) | set(regrouped.alone) == present
    assert all(2 <= len(g.members) <= 3 for g in regrouped.groups)


def test_progress_bar_and_time_left() -> None:
    assert progress_bar(0, 10, width=10) == "▱" * 10
    assert progress_bar(5, 10, width=10) == "▰" * 5 + "▱" * 5
    assert progress_bar(0, 0, width=4) == "▰" * 4
    assert time_left(0, 10, 5.0) is None
    assert time_left(5, 10, 10.0) == 10.0
    assert time_left(10, 10, 10.0) == 0.0
