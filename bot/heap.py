"""Long-lived objects kept out of the cycle collector's way.

A full run of Python's cycle collector walks every object it tracks while holding the GIL. In a server of
100,000 members the bot holds over a million long-lived objects (discord.py's member cache, the suggestion
index, the history of who met whom): a full run stalls the event loop for half a second to a second, at a
moment set by allocations anywhere in the bot (bench/interactions_during_round.py saw it while a round's
delivery began). Two tools:

- ``settled(what)`` moves the objects alive now to the collector's permanent generation (``gc.freeze``),
  which its runs skip, so later runs walk only what was made since. The bot calls it when something large
  that lives long was just built outside its own code: a server's member list, complete.
- ``building(what)`` pauses the collector while the bot builds something large and long-lived itself (a
  suggestion index, a server's history: hundreds of thousands of containers, which the collector would
  otherwise walk again and again as they pile up), and freezes it once built. Pauses may overlap (one
  server's index and another's history): the collector runs again when the last one ends.

What is frozen is still freed as usual once nothing refers to it (reference counting); only a cycle of
frozen objects that becomes garbage stays until the process ends. The bot's large structures (member
objects, an index's arrays and maps, sets of member ids) are not cycles, and a cycle frozen by chance is
small. Cycles made by other code while the collector is paused are collected after the pause.
"""

from __future__ import annotations

import contextlib
import gc
import logging
from collections.abc import Iterator

log = logging.getLogger(__name__)

_pauses = 0                   # building() blocks under way
_was_enabled = False          # whether the collector ran before the first of them


def settled(what: str) -> None:
    """The objects alive now are long-lived (``what`` was just built): the collector's runs skip them.

    Constant time (a list spliced). Counting what was frozen is not (``gc.get_freeze_count`` walks the
    whole list: some 100 ms at 2.8 million objects), so it is not counted here."""
    gc.freeze()
    log.debug("%s: the objects alive now are out of the cycle collector's runs", what)


def released() -> None:
    """Everything frozen is the collector's again (``gc.unfreeze``): for a bot that closes in a process
    that goes on (tests and benchmarks start one bot after another), so the closed bot's cycles are
    collected."""
    gc.unfreeze()


@contextlib.contextmanager
def building(what: str) -> Iterator[None]:
    """The collector paused while ``what`` is built, and what is alive when it is built frozen (``settled``);
    after a failure, only the pause ends."""
    global _pauses, _was_enabled
    if _pauses == 0:
        _was_enabled = gc.isenabled()
        gc.disable()
    _pauses += 1
    try:
        yield
        settled(what)
    finally:
        _pauses -= 1
        if _pauses == 0 and _was_enabled:
            gc.enable()
