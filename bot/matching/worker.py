"""Rounds planned in a process of their own, so that a round never stalls the bot.

Two ways in: ``RoundWorker.plan(candidates, history)`` plans a round from data the caller read, and
``RoundWorker.run(job, order)`` runs a coroutine function of ``bot.matching.service`` there on an order (the
database's path, the server, the moment): the bot makes its rounds, their previews and the start of their
delivery that way, so the worker reads and writes the database on a connection of its own and only a small
answer comes back. What follows applies to both.

``plan_round``'s compiled kernels release the GIL, but the Python between them holds it, and so does
loading the kernels from numba's cache (and, after a fresh install, compiling them: from seconds to a
minute, by the machine and its load), and so does the cycle collector walking the bot's heap when the
round's allocations set it off. ``RoundWorker`` plans rounds in one worker process instead: started on
the first round (tests start many bots, and most never plan one), kept for the next (the kernels stay
loaded there) until it has been idle for a while, replaced when it dies.

The worker is spawned, not forked: a fork of a process running an event loop and threads copies locks
other threads may hold. Spawning runs the bot's main module again in the worker, as ``__mp_main__``,
unless it is a package's ``__main__`` (``python -m bot``): a script that starts the bot must do so only
under ``if __name__ == "__main__":``, or the worker would start a second bot. The worker inherits the
environment, so ``NUMBA_CACHE_DIR`` chooses where its kernels are cached (beside ``kernels.py`` when
unset), and a fresh cache costs the worker's time, not the bot's.

What crosses between the processes is pickled in chunks of ``_CHUNK`` objects (arrays in chunks of
``_ARRAY_CHUNK`` bytes), in a thread. Pickling is one C call that holds the GIL from start to end, whatever
thread makes it: 100,000 candidates at once take 0.3-1.1 s on a 2-core machine, which the event loop would
wait out, but a chunk of 2,000 takes about 3 ms, and the GIL changes hands between chunks. (And the mapping
proxies a ``RoundPlan`` holds cannot be pickled as they are; a ``History`` crosses as its pairs in arrays,
``Links``.)
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import logging
import math
import multiprocessing
import multiprocessing.connection
import os
import pickle
import threading
from collections import defaultdict
from collections.abc import Callable, Coroutine, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, fields
from multiprocessing.process import BaseProcess
from types import MappingProxyType
from typing import Any, Final, TypeAlias, TypeVar

import numpy as np

from bot.matching.index import MatchIndex
from bot.matching.model import Candidate, Group, History, LeftOut, RoundPlan
from bot.matching.slots import Links, history_links, linked_history

log = logging.getLogger(__name__)

# Objects pickled at once: about 3 ms a chunk of candidates, so that a thread pickling a round lets the
# event loop run between chunks (the interpreter hands the GIL over every 5 ms, but never inside one call
# into C such as pickle.dumps).
_CHUNK: Final = 2000
# The worker's scheduling priority, below the bot's. It made no difference measured with the bot idle (its
# loop's thread wakes briefly, and the kernel favours a thread that wakes); when the bot is busy while a
# round's threads fill the cores, it gives the bot the larger share.
_NICENESS: Final = 5

_Chunks: TypeAlias = tuple[bytes, ...]
_Order = TypeVar("_Order")
_Result = TypeVar("_Result")


@dataclass(frozen=True)
class PackedPool:
    """Candidates and their history in chunks (the candidates pickled, the history's pairs as arrays,
    ``Links``, packed as ``pack_index`` packs an index): a round's input on its way to the worker, and a
    server's history on its way back for its suggestion index (``bot.matching.service.read_history``). Made
    and read with ``pack_pool`` and ``unpack_pool``, in a thread."""

    candidates: _Chunks
    history: tuple[Any, ...]


@dataclass(frozen=True)
class _Plan:
    """A ``RoundPlan`` as pickled chunks: the groups, and the members left out as items."""

    groups: _Chunks
    left_out: _Chunks
    total: float
    bound: float


class RoundWorker:
    """Plans rounds in one worker process, started on first use; see the module's docstring.

    ``idle_timeout``: seconds after its last round that the worker is stopped (None: kept until
    ``close()``). Rounds are rare, and a worker keeps much of a large round's memory after it (about
    470 MB after a 100,000-member round, 160 MB after a small one); the next round starts another, which
    takes about a second more than a ready worker would. ``close_timeout``: how long ``close()`` lets an
    idle worker exit on its own before killing it (a worker planning a round is killed at once: its round
    would be of no use to a bot shutting down).
    """

    def __init__(self, *, idle_timeout: float | None = 600.0, close_timeout: float = 5.0) -> None:
        self._idle_timeout = idle_timeout
        self._close_timeout = close_timeout
        self._pool: ProcessPoolExecutor | None = None
        self._planning = 0
        self._idle: asyncio.TimerHandle | None = None
        self._closed = False

    @property
    def pid(self) -> int | None:
        """The worker process's id; None while there is none (before the first round, after a worker
        died or was stopped as idle until the next round, after ``close()``)."""
        if self._pool is None:
            return None
        # Read from the executor (Python 3.14 gives it terminate_workers(); 3.11 has only this).
        pids = list(self._pool._processes or ())
        return pids[0] if pids else None

    @property
    def busy(self) -> bool:
        """Whether a round is in the worker's hands (being planned, or waiting for the one being planned)."""
        return self._planning > 0

    async def plan(self, candidates: Sequence[Candidate], history: History) -> RoundPlan:
        """``plan_round(candidates, history)``, computed in the worker process. A worker that dies on the
        way (killed, out of memory) is replaced and the round planned once more; a second death raises
        ``BrokenProcessPool``. Raises ``RuntimeError`` once the worker is closed."""
        packed = await asyncio.to_thread(pack_pool, candidates, history)
        try:
            result = await self._run(_plan_in_worker, packed)
        except BrokenProcessPool:
            log.warning("The round worker died; planning the round again in a new one")
            result = await self._run(_plan_in_worker, packed)
        return await asyncio.to_thread(_unpacked_plan, result)

    async def run(self, job: Callable[[_Order], Coroutine[Any, Any, _Result]], order: _Order) -> _Result:
        """``job(order)`` run to its end on an event loop of the worker process's own: ``job`` a coroutine
        function of a module (pickled by its name), ``order`` and its result small (pickled whole). It is
        how a round is made and its delivery begun (``bot.matching.service.make_round``): the worker reads
        the database on a connection of its own, and the bot's process carries none of the round's data.
        A worker that dies on the way is replaced and ``job`` run once more (jobs are written to be run
        again: a round stored already is not stored twice); a second death raises ``BrokenProcessPool``."""
        try:
            return await self._run(_job_in_worker, job, order)
        except BrokenProcessPool:
            log.warning("The round worker died; running %s again in a new one", job.__name__)
            return await self._run(_job_in_worker, job, order)

    async def close(self) -> None:
        """Stop the worker: an idle one is asked to exit and given ``close_timeout``, one planning a round
        is killed. Rounds still waiting for it raise ``RuntimeError``. Idempotent."""
        self._closed = True
        self._not_idle()
        pool, self._pool = self._pool, None
        if pool is None:
            return
        processes = list((pool._processes or {}).values())
        if self._planning:
            _kill(processes)
        stopping = asyncio.ensure_future(asyncio.to_thread(pool.shutdown, wait=True))
        try:
            await asyncio.wait_for(asyncio.shield(stopping), self._close_timeout)
        except TimeoutError:
            log.warning("The round worker did not exit within %.0f s of being asked to; killing it",
                        self._close_timeout)
            _kill(processes)
            await stopping   # the executor's thread sees the process gone and returns at once

    async def _run(self, function: Callable[..., _Result], *args: Any) -> _Result:
        pool = self._started()
        self._not_idle()
        self._planning += 1
        try:
            # The executor's own threads pickle the arguments (cheap: bytes, or small) and unpickle the answer.
            return await asyncio.get_running_loop().run_in_executor(pool, function, *args)
        except BrokenProcessPool as died:
            if self._pool is pool:   # replaced once, however many rounds were waiting for it
                self._pool = None
                pool.shutdown(wait=False)
            if self._closed:
                raise RuntimeError("the round worker is closed") from died
            raise
        finally:
            self._planning -= 1
            if not self._planning and self._pool is not None and self._idle_timeout is not None:
                self._not_idle()
                self._idle = asyncio.get_running_loop().call_later(self._idle_timeout, self._stop_idle)

    def _started(self) -> ProcessPoolExecutor:
        if self._closed:
            raise RuntimeError("the round worker is closed")
        if self._pool is None:
            self._pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_start_worker)
        return self._pool

    def _not_idle(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None

    def _stop_idle(self) -> None:
        self._idle = None
        pool, self._pool = self._pool, None
        if pool is not None:
            log.debug("Stopping the round worker, idle for %.0f s", self._idle_timeout)
            pool.shutdown(wait=False)   # the executor's thread tells the worker to exit, and waits for it


def _kill(processes: Sequence[BaseProcess]) -> None:
    for process in processes:
        process.kill()   # a no-op for a process that has exited


# --- in a thread (packing and unpacking) ------------------------------------------------------------------

def pack_pool(candidates: Iterable[Candidate], history: History) -> PackedPool:
    return PackedPool(candidates=_pickled(candidates), history=_pack(history_links(history), {}))


def unpack_pool(packed: PackedPool) -> tuple[list[Candidate], History]:
    """``pack_pool``'s candidates and history again: a chunk at a time, so the GIL changes hands between. The
    history is read from the arrays it came in (``linked_history``): a 100,000-member server's, made into
    mappings of frozensets, would be some 60 MB of small objects, and the suggestion index keeps the arrays
    (``PreparedHistory.of`` takes them as they are)."""
    candidates: list[Candidate] = _unpickled(packed.candidates)
    links = _unpack(packed.history, {})
    if not isinstance(links, Links):
        raise TypeError(f"not a packed history: {type(links).__name__}")
    return candidates, linked_history(links)


# A suggestion index as pickled chunks (``pack_index``): its objects' attributes one by one, each list or dict
# among them a chunk of items at a time and each array (alone, or in a list of them) a chunk of bytes at a time,
# so that the bot, which unpacks it in a thread, never holds the GIL for more than a chunk (a 100,000-member index
# unpickled whole holds it 10-15 ms: 30 MB of arrays; 80-130 ms when it held objects a member). Every list, dict,
# array and object of the index's own classes is packed once and referred to after (``_SHARED``): the columns
# share their owner's ``Slots``.
_WHOLE, _LIST, _DICT, _OBJECT, _SHARED, _ARRAY, _ARRAYS = range(7)
_ARRAY_CHUNK: Final = 1 << 20   # bytes of an array copied at once: well under a millisecond
PackedIndex: TypeAlias = tuple[Any, ...]


def pack_index(index: MatchIndex) -> PackedIndex:
    """The index in chunks, its caches left behind (``MatchIndex.forget_caches``)."""
    index.forget_caches()
    return _pack(index, {})


def unpack_index(packed: PackedIndex) -> MatchIndex:
    """``pack_index``'s index again, a chunk at a time."""
    index = _unpack(packed, {})
    if not isinstance(index, MatchIndex):
        raise TypeError(f"not a packed index: {type(index).__name__}")
    return index


def _pack(value: Any, seen: dict[int, tuple[int, Any]]) -> PackedIndex:
    known = seen.get(id(value))
    if known is not None:
        return (_SHARED, known[0])
    ours = type(value).__module__.startswith("bot.matching.") and hasattr(value, "__dict__")
    if not (ours or isinstance(value, list | dict | np.ndarray)):
        return (_WHOLE, pickle.dumps(value, pickle.HIGHEST_PROTOCOL))
    key = len(seen)
    seen[id(value)] = (key, value)   # the value kept alive, so that its id is not another's meanwhile
    if isinstance(value, np.ndarray):
        flat = np.ascontiguousarray(value).reshape(-1)
        step = max(1, _ARRAY_CHUNK // flat.itemsize)
        return (_ARRAY, key, value.dtype, value.shape,
                tuple(flat[start:start + step].tobytes() for start in range(0, len(flat), step)))
    if isinstance(value, list) and any(isinstance(item, np.ndarray) for item in value):
        return (_ARRAYS, key, tuple(_pack(item, seen) for item in value))
    if isinstance(value, list):
        return (_LIST, key, _pickled(value))
    if isinstance(value, dict):
        factory = value.default_factory if isinstance(value, defaultdict) else None
        return (_DICT, key, factory, _pickled(value.items()))
    return (_OBJECT, key, type(value), tuple((name, _pack(each, seen)) for name, each in vars(value).items()))


def _unpack(packed: PackedIndex, made: dict[int, Any]) -> Any:
    kind = packed[0]
    if kind == _SHARED:
        return made[packed[1]]
    if kind == _WHOLE:
        return pickle.loads(packed[1])
    key = packed[1]
    if kind == _ARRAY:
        _, _, dtype, shape, chunks = packed
        flat = np.empty(math.prod(shape), dtype)
        at = 0
        for chunk in chunks:
            part = np.frombuffer(chunk, dtype)
            flat[at:at + len(part)] = part
            at += len(part)
        made[key] = array = flat.reshape(shape)
        return array
    if kind == _ARRAYS:
        arrays: list[Any] = made.setdefault(key, [])
        arrays.extend(_unpack(each, made) for each in packed[2])
        return arrays
    if kind == _LIST:
        items: list[Any] = made.setdefault(key, [])
        for chunk in packed[2]:
            items.extend(pickle.loads(chunk))
        return items
    if kind == _DICT:
        mapping: dict[Any, Any] = made.setdefault(key, {} if packed[2] is None else defaultdict(packed[2]))
        for chunk in packed[3]:
            mapping.update(pickle.loads(chunk))
        return mapping
    made[key] = made_object = packed[2].__new__(packed[2])
    for name, each in packed[3]:
        made_object.__dict__[name] = _unpack(each, made)   # frozen dataclasses too
    return made_object


def _unpacked_plan(plan: _Plan) -> RoundPlan:
    # Groups made here from their fields, not unpickled as objects: unpickling an object gives it a dict of
    # its own, one more object for the collector to count and walk (see _pickled).
    groups = tuple(Group(*values) for values in _unpickled(plan.groups))
    left_out = {user: LeftOut(why) for user, why in _unpickled(plan.left_out)}
    return RoundPlan(groups=groups, left_out=MappingProxyType(left_out), total=plan.total, bound=plan.bound)


def _pickled(items: Iterable[Any]) -> _Chunks:
    """The items in chunks, each pickled on its own. A chunk's list is made just before it is pickled: a
    list of all a history's pairs at once would live long enough for the collector to promote it to its
    oldest generation, and bring its next walk of the whole process's heap (a 100,000-member round's
    pool alone is about a million objects; 300 ms, the GIL held throughout) nearer."""
    chunks: list[bytes] = []
    rest = iter(items)
    while chunk := list(itertools.islice(rest, _CHUNK)):
        chunks.append(pickle.dumps(chunk, pickle.HIGHEST_PROTOCOL))
    return tuple(chunks)


def _unpickled(chunks: _Chunks) -> list[Any]:
    items: list[Any] = []
    for chunk in chunks:
        items.extend(pickle.loads(chunk))
    return items


# --- in the worker process --------------------------------------------------------------------------------

def _start_worker() -> None:
    """In the worker: below the bot in priority, and gone as soon as the bot is (a bot killed with SIGKILL
    cannot close its worker, which would otherwise wait for work for ever, holding its memory)."""
    with contextlib.suppress(OSError, AttributeError):   # os.nice: POSIX only
        os.nice(_NICENESS)
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(target=_exit_with, args=(parent.sentinel,), name="exit-with-the-bot", daemon=True).start()


def _exit_with(sentinel: int) -> None:
    multiprocessing.connection.wait([sentinel])
    os._exit(0)


def _job_in_worker(job: Callable[[_Order], Coroutine[Any, Any, _Result]], order: _Order) -> _Result:
    # A round read from the database makes over a million objects in a 100,000-member server (its profiles
    # and candidates), which the cycle collector would walk again and again on the way; see _plan_in_worker.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return asyncio.run(job(order))
    finally:
        if enabled:
            gc.enable()


def _plan_in_worker(packed: PackedPool) -> _Plan:
    # Unpickling 100,000 candidates makes over half a million objects, and the cycle collector would walk
    # them again and again on the way (1.3 s with it, 0.15 s without). The round makes few cycles, and
    # what it makes is collected after it, once the candidates are gone (so they are never walked).
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _planned(packed)
    finally:
        if enabled:
            gc.enable()


def _planned(packed: PackedPool) -> _Plan:
    # Imported where rounds are planned, not where this module is: the pairing's kernels bring numba and
    # LLVM, 58 MB of the bot's memory and a second of its start, which the bot's own process never uses.
    from bot.matching.pairing import plan_round
    plan = plan_round(*unpack_pool(packed))
    names = [each.name for each in fields(Group)]
    return _Plan(groups=_pickled(tuple(getattr(group, name) for name in names) for group in plan.groups),
                 left_out=_pickled((user, str(why)) for user, why in plan.left_out.items()),
                 total=plan.total, bound=plan.bound)
