"""A large server's suggestion index kept in the database, so that a restart has it at once.

Building the index of a server of 100,000 from its profiles takes the round worker about 5 s (the pool read,
3.4 s of it, and the index made and packed); a ``/match suggest`` sent meanwhile waits. The worker therefore
stores each index it builds (``bot.matching.service.build_index``), pickled whole with when paused members
come back, and the company aliases it was built with beside it; the bot loads it before it connects to the
gateway (``MatchService.load_indexes``): about 30 MB at 100,000, read and unpickled in well under a second.

What changed after the build is read afresh on loading, member by member (``MatchService._load``): those
whose profile was saved (``intro_profiles.updated_at``), whose part in rounds, pause or avoid list changed
(``match_members.updated_at``, which removing an avoided company touches too, and ``match_avoid.created_at``),
and those whose profile was shown or hidden (the active ids against the index's). Times are compared
``CLOCK_SKEW`` earlier than the build began, for the clocks of other processes. A snapshot whose aliases
differ from the server's, or with more than ``LOAD_AT_MOST`` changed members, or of other code, is not used:
the index is built anew, as without one. The history the index keeps (who met, declined or shared a prompt
thread) is the build's: it is read again in the worker ``HISTORY_AFTER_LOAD`` after loading, at the next
suggestion (not at the start, the bot's busiest moment); meanwhile each suggestion reads its asker's own
history fresh, as always, so nobody is suggested someone they met.

A snapshot holds every member's columns (company, languages, tags), so a member's erasure deletes it in
the same transaction (``MatchStore.forget``); the bot builds and stores another in the worker soon after
(``MatchService.keep_snapshots``), as it does for one older than ``RENEW_AFTER``. It is pickled: only the
bot's own database is ever read, never anything a member sends.
"""

from __future__ import annotations

import hashlib
import pickle
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Final

import numpy as np

from bot.matching import index, model, rules, score, slots, terms, worker
from bot.matching.index import MatchIndex


def _format() -> str:
    """A digest of the code that lays an index out and packs it, and of what unpickles it: a snapshot written
    by other code (an upgrade, an edit) is not read, and the index is built anew once."""
    digest = hashlib.sha256(f"{sys.version_info[:2]} numpy {np.__version__}".encode())
    for module in (index, model, rules, score, slots, terms, worker):
        digest.update(Path(module.__file__ or "").read_bytes())
    return digest.hexdigest()[:32]


FORMAT: Final = _format()
CLOCK_SKEW: Final = timedelta(minutes=10)   # changes this much before the build began are read again too
LOAD_AT_MOST: Final = 2000     # changed members read afresh on loading; more, and the index is built anew
RENEW_AFTER: Final = timedelta(hours=6)    # a snapshot older than this is built again while the bot runs
HISTORY_AFTER_LOAD: Final = 60.0   # seconds after loading before the index's history is read again


@dataclass(frozen=True)
class Snapshot:
    index: MatchIndex
    pauses: dict[int, datetime]      # when paused members come back, as of the build


def encode(snapshot: Snapshot) -> bytes:
    """The index pickled whole (its caches left behind): its columns are arrays, so loading it makes them
    straight from the bytes, and at its peak the bot holds the bytes and the index, nothing more. (Unlike
    the index the worker sends while the bot serves, chunked by ``pack_index``: this one is loaded before
    the bot connects, when holding the GIL for the tens of milliseconds it takes keeps nobody waiting.)"""
    snapshot.index.forget_caches()
    return pickle.dumps(snapshot, pickle.HIGHEST_PROTOCOL)


def decode(data: bytes) -> tuple[MatchIndex, dict[int, datetime]]:
    """The index and pauses of ``encode``'s bytes; in a thread."""
    snapshot = pickle.loads(data)
    if not isinstance(snapshot, Snapshot) or not isinstance(snapshot.index, MatchIndex):
        raise TypeError(f"not a suggestion snapshot: {type(snapshot).__name__}")
    return snapshot.index, snapshot.pauses
