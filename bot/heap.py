"""Long-lived objects kept out of the cycle collector's way.

A full run of Python's cycle collector walks every object it tracks while holding the GIL. In a server of
100,000 members the bot holds over a million long-lived objects (discord.py's member cache, the suggestion
index): a full run stalls the event loop for half a second to a second, at a moment set by allocations
anywhere in the bot (bench/interactions_during_round.py saw it while a round's delivery began). ``settled``
moves the objects alive now to the collector's permanent generation (``gc.freeze``), which its runs skip,
so later runs walk only what was made since. The bot calls it when it has just built something large that
lives long: a server's member list complete, a server's suggestion index built.

What is frozen is still freed as usual once nothing refers to it (reference counting); only a cycle of
frozen objects that becomes garbage stays until the process ends. The bot's large structures (member
objects, an index's arrays and maps) are not cycles, and a cycle frozen by chance is small.
"""

from __future__ import annotations

import gc
import logging

log = logging.getLogger(__name__)


def settled(what: str) -> None:
    """The objects alive now are long-lived (``what`` was just built): the collector's runs skip them."""
    before = gc.get_freeze_count()
    gc.freeze()
    log.debug("%s: %d objects moved out of the cycle collector's runs (%d in all)", what,
              gc.get_freeze_count() - before, gc.get_freeze_count())
