"""bot/heap.py: the collector paused while something large is built, and what was built frozen."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Iterator

import pytest

from bot import heap


@pytest.fixture(autouse=True)
def collector() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.enable()
    yield
    gc.unfreeze()
    if not enabled:
        gc.disable()


def test_the_collector_is_paused_while_building_and_what_was_built_is_frozen() -> None:
    gc.unfreeze()
    with heap.building("a test index"):
        assert not gc.isenabled()
        built = [{n} for n in range(1000)]
    assert gc.isenabled()
    assert gc.get_freeze_count() >= len(built)
    watched = {id(each) for each in gc.get_objects()}   # what the collector's runs walk
    assert all(gc.is_tracked(each) and id(each) not in watched for each in built)


def test_overlapping_builds_resume_the_collector_once_the_last_ends() -> None:
    outer = heap.building("one server's index")
    inner = heap.building("another server's history")
    outer.__enter__()
    inner.__enter__()
    outer.__exit__(None, None, None)    # the first to begin ends first
    assert not gc.isenabled()
    inner.__exit__(None, None, None)
    assert gc.isenabled()


def test_a_failed_build_ends_the_pause_and_freezes_nothing() -> None:
    gc.unfreeze()
    with pytest.raises(RuntimeError), heap.building("a build that fails"):
        raise RuntimeError("the database went away")
    assert gc.isenabled()
    assert gc.get_freeze_count() == 0


def test_a_collector_switched_off_before_stays_off() -> None:
    gc.disable()
    with heap.building("an index"):
        pass
    assert not gc.isenabled()


def test_released_gives_everything_frozen_back_to_the_collector() -> None:
    heap.settled("a member list")
    assert gc.get_freeze_count() > 0
    heap.released()
    assert gc.get_freeze_count() == 0


class Node:
    """An object that can be in a reference cycle and be watched with a weak reference."""

    def __init__(self) -> None:
        self.other: object = None


@pytest.mark.parametrize("how", ["frozen while alive", "made garbage while building"])
async def test_keep_settled_frees_cycles_that_were_frozen(how: str) -> None:
    cycle = Node()
    cycle.other = cycle
    watched = weakref.ref(cycle)
    if how == "frozen while alive":
        heap.settled("a member list")
        del cycle   # the old member list of a session that could not be resumed
    else:
        with heap.building("a history"):
            del cycle   # garbage made anywhere while the collector is paused
    gc.collect()
    assert watched() is not None   # frozen: the collector's runs skip it
    keeper = asyncio.create_task(heap.keep_settled(0.01))
    try:
        for _ in range(100):
            await asyncio.sleep(0.01)
            if watched() is None:
                break
    finally:
        keeper.cancel()
        await asyncio.gather(keeper, return_exceptions=True)
    assert watched() is None
    assert gc.get_freeze_count() > 0   # what is alive is frozen again
