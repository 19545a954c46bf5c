"""Long-lived objects kept out of the cycle collector's way.

A full run of Python's cycle collector walks every object it tracks while holding the GIL. In a server of
100,000 members the bot holds over a million long-lived objects (discord.py's member cache, the suggestion
index, the history of who met whom): a full run stalls the event loop for half a second to a second, at a
moment set by allocations anywhere in the bot (bench/interactions_during_round.py saw it while a round's
delivery began). Three tools:

- ``settled(what)`` moves the objects alive now to the collector's permanent generation (``gc.freeze``),
  which its runs skip, so later runs walk only what was made since. The bot calls it when something large
  that lives long was just built outside its own code: a server's member list, complete.
- ``building(what)`` pauses the collector while the bot builds something large and long-lived itself (a
  suggestion index, a server's history: hundreds of thousands of containers, which the collector would
  otherwise walk again and again as they pile up), and freezes what is alive once it is built. Pauses may
  overlap (one server's index and another's history): the collector runs again when the last one ends.
  (Collecting before freezing would free the few garbage cycles made meanwhile, but it walks everything
  just built: a 50-80 ms stall after each history read, measured. ``keep_settled`` frees them instead.)
- ``keep_settled(interval)`` (a task the bot runs) gives everything frozen back to the collector once an
  hour, collects in full, and freezes what is left: garbage cycles frozen by ``building`` and objects frozen
  while alive that have since become garbage cycles (a server's old member list after a gateway session
  that could not be resumed: discord.py drops it, and a member and its server refer to each other) are
  freed within the hour. That one full run is the stall the rest avoids, once an hour instead of whenever
  allocations set it off.

What is frozen is still freed as usual once nothing refers to it (reference counting); only cycles wait for
``keep_settled``.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import time
from collections.abc import Iterator
from typing import Final

log = logging.getLogger(__name__)

SETTLE_EVERY: Final = 3600.0   # seconds between two full collections of everything frozen

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
    """The collector paused while ``what`` is built, and what is alive once it is built frozen (garbage
    cycles made meanwhile, anywhere, wait for ``keep_settled``). After a failure, only the pause ends."""
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


async def keep_settled(interval: float = SETTLE_EVERY) -> None:
    """Every ``interval`` seconds, everything frozen collected in full, and what is left frozen again."""
    while True:
        await asyncio.sleep(interval)
        started = time.perf_counter()
        gc.unfreeze()
        found = gc.collect()
        gc.freeze()
        log.info("Collected %d unreachable objects among everything frozen in %.0f ms", found,
                 (time.perf_counter() - started) * 1e3)
