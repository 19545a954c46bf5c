"""The cycle through prompts: nothing repeats before everything has been posted once."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bot.prompts.model import QueueEntry
from bot.prompts.queue import next_entry, upcoming
from bot.prompts.render import choose_tag


class Queue:
    """The store's queue semantics in memory, to drive the rules through many steps."""

    def __init__(self, keys: list[str]) -> None:
        self.entries = {key: QueueEntry(key, position, 0) for position, key in enumerate(keys, start=1)}
        self.cycle = 1

    def add(self, key: str) -> None:
        self.entries[key] = QueueEntry(key, self._end(), 0)

    def take(self, wanted: str | None = None) -> str:
        entry, self.cycle = next_entry(list(self.entries.values()), self.cycle, self.entries)
        assert entry is not None
        key = wanted or entry.prompt_key
        self.entries[key] = QueueEntry(key, self._end(), self.cycle)
        return key

    def _end(self) -> int:
        return max((e.position for e in self.entries.values()), default=0) + 1


def test_two_slots_post_two_different_prompts_and_the_third_cycles() -> None:
    queue = Queue(["essay:a", "essay:b"])
    assert [queue.take(), queue.take(), queue.take(), queue.take()] == ["essay:a", "essay:b", "essay:a", "essay:b"]


def test_skip_moves_the_next_one_to_the_end() -> None:
    queue = Queue(["a", "b", "c"])
    assert queue.take() == "a"  # skipped
    assert [e.prompt_key for e in upcoming(list(queue.entries.values()), queue.cycle, queue.entries, 5)] == [
        "b", "c", "a"]


def test_a_prompt_added_mid_cycle_comes_before_anything_repeats() -> None:
    queue = Queue(["a", "b"])
    queue.take()
    queue.take()
    queue.add("custom:1")
    assert [queue.take(), queue.take(), queue.take(), queue.take()] == ["custom:1", "a", "b", "custom:1"]


def test_prompts_no_longer_shipped_are_left_out() -> None:
    queue = Queue(["a", "gone", "b"])
    known = {"a", "b"}
    entry, _ = next_entry(list(queue.entries.values()), 1, known)
    assert entry is not None and entry.prompt_key == "a"
    assert [e.prompt_key for e in upcoming(list(queue.entries.values()), 1, known, 5)] == ["a", "b"]


@given(st.integers(1, 8), st.lists(st.one_of(st.none(), st.integers(0, 7)), max_size=60))
def test_nothing_repeats_before_every_prompt_was_posted_once(count: int, steps: list[int | None]) -> None:
    """Whatever mix of scheduled posts (None) and posts of a chosen prompt: between two posts of the same
    scheduled prompt, every prompt was posted (the cycle is complete)."""
    keys = [f"p{n}" for n in range(count)]
    queue = Queue(keys)
    posted_in_cycle: set[str] = set()
    for step in steps:
        wanted = None if step is None or step >= count else keys[step]
        before = queue.cycle
        key = queue.take(wanted)
        if queue.cycle != before:
            # A new cycle begins only once every prompt was posted in the last one.
            assert posted_in_cycle == set(keys)
            posted_in_cycle = set()
        if wanted is None:
            assert key not in posted_in_cycle
        posted_in_cycle.add(key)


def test_the_discussion_tag_is_chosen_when_present() -> None:
    tags = [(1, "News", False), (2, "議論", False), (3, "Discussion", False)]
    assert choose_tag(tags, required=True) == 2
    assert choose_tag(tags, required=False) == 2


def test_otherwise_the_first_tag_only_when_one_is_required() -> None:
    tags = [(1, "Staff only", True), (2, "News", False)]
    assert choose_tag(tags, required=True) == 2  # a moderated tag needs Manage Threads: last resort
    assert choose_tag(tags, required=False) is None
    assert choose_tag([], required=True) is None


def test_a_post_is_recognised_by_the_marker_on_its_last_line_in_any_language() -> None:
    from bot.i18n import default_catalog
    from bot.prompts.render import marker, marks

    catalog = default_catalog()
    for language in ("en", "ja"):
        content = f"Summary…\n\n1. A question?\n{marker(language, 12, catalog)}"
        assert marks(content, 12) and marks(content + "\n", 12)
        assert not marks(content, 2) and not marks(content, 112)
    assert not marks("a member quoting #12", 12)
