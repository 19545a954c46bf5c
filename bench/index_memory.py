"""What a server's suggestion index costs the bot: its memory once unpacked, and again once its history is read
after a round (issue 18).

    python bench/index_memory.py [--sizes 20000,100000] [--seed N] [--queries 2000]

For each size n: bench/matching.py's synthetic community of n members, and the history a round of them leaves
(the community's own history, and every available member grouped in pairs, the odd one out in a trio: at 100,000,
about 47,500 groups). The bench's process builds two indexes as the round worker does (``MatchIndex``, then
``pack_index``) and writes them packed to files: one without a history (a server's first round not made yet),
one with the round's. Then each is measured in a fresh process, as the bot gets it: the packed index read
(the executor's answer, unpickled), ``unpack_index``, the packed copy dropped and the heap collected. For the
index built without a history, the round's history then comes as ``MatchService._refresh_history`` brings it
(``unpack_pool`` of a packed ``History``, ``PreparedHistory.of``, ``MatchIndex.use_history``), and is measured
again. Each fresh process runs twice: once for the resident set (VmRSS, from /proc) and the timings, once under
``tracemalloc`` (what Python and numpy hold, without the allocator's slack; tracemalloc costs memory of its own,
hence a run of its own).

Printed: build and pack times and the packed size; the unpack time and the longest a 1 ms ticker thread waited
meanwhile (the GIL held in one go: the unpacking thread hands it over between chunks); RSS growth and
tracemalloc's count after unpacking and after the history; ``MatchIndex.suggest``'s median and p99 against the
unpacked index (after 200 warm-up queries), after the history, and after 2,000 profiles were edited (each
``MatchIndex.upsert`` timed).
"""

from __future__ import annotations

import argparse
import gc
import json
import pickle
import random
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections import defaultdict
from pathlib import Path
from types import MappingProxyType

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.matching import community, latency
from bot.matching.index import MatchIndex, PreparedHistory
from bot.matching.model import Candidate, History
from bot.matching.worker import PackedIndex, pack_index, pack_pool, unpack_index, unpack_pool

MB = 1 << 20


def after_a_round(members: list[Candidate], history: History, seed: int) -> History:
    """``history`` with a round of ``members`` added to who met: the available ones shuffled and grouped in
    pairs, the odd one out joining the last pair."""
    rng = random.Random(seed)
    taking_part = [member.user_id for member in members if member.available]
    rng.shuffle(taking_part)
    groups = [taking_part[i:i + 2] for i in range(0, len(taking_part) - 1, 2)]
    if len(taking_part) % 2 and groups:
        groups[-1].append(taking_part[-1])
    met: defaultdict[int, set[int]] = defaultdict(set)
    for user, others in history.met.items():
        met[user].update(others)
    for group in groups:
        for user in group:
            met[user].update(other for other in group if other != user)
    return History(met=MappingProxyType({user: frozenset(others) for user, others in met.items()}),
                   declined=history.declined, threads=history.threads)


def rss() -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def held() -> int:
    """What the process holds now: its resident set, or what tracemalloc counts when it traces."""
    gc.collect()
    return tracemalloc.get_traced_memory()[0] if tracemalloc.is_tracing() else rss()


def longest_hold(work: threading.Thread) -> float:
    """The longest a thread sleeping 1 ms at a time waited for its turn while ``work`` ran (started here)."""
    worst = 0.0
    work.start()
    while work.is_alive():
        before = time.perf_counter()
        time.sleep(0.001)
        worst = max(worst, time.perf_counter() - before - 0.001)
    work.join()
    return worst


def edits(index: MatchIndex, n: int, seed: int, count: int = 2000) -> tuple[float, float]:
    """``count`` profiles edited (a time zone changed, so each moves to a new slot), one ``upsert`` each: the
    median and the longest."""
    rng = random.Random(seed)
    members = community(n, seed)[0]
    times = []
    for member in rng.sample(members, count):
        edited = Candidate(**{**member.__dict__, "utc_offset": rng.choice((None, 9.0, -5.0))})
        started = time.perf_counter()
        index.upsert(edited)
        times.append(time.perf_counter() - started)
    times.sort()
    return times[len(times) // 2], times[-1]


def child(index_file: str, history_file: str | None, traced: bool, n: int, queries: int, seed: int) -> None:
    """In a fresh process: the packed index unpacked, measured, and (given one) a history read into it."""
    if traced:
        tracemalloc.start()
    base = held()
    with open(index_file, "rb") as file:
        packed = pickle.load(file)
    out: dict[str, float] = {}
    made: list[MatchIndex] = []

    def unpack(packed: PackedIndex) -> None:
        made.append(unpack_index(packed))

    started = time.perf_counter()
    out["gil_ms"] = 1e3 * longest_hold(threading.Thread(target=unpack, args=(packed,)))
    out["unpack_ms"] = 1e3 * (time.perf_counter() - started)
    index = made.pop()
    del packed
    out["index_mb"] = (held() - base) / MB
    if not traced:
        users = [user for user in range(1, n + 1) if user in index]
        out["p50_ms"], out["p99_ms"] = (1e3 * t for t in latency(index, users, queries, seed))
    if history_file is not None:
        with open(history_file, "rb") as file:
            packed_history = pickle.load(file)
        started = time.perf_counter()
        _, history = unpack_pool(packed_history)
        prepared = PreparedHistory.of(history)
        out["prepare_ms"] = 1e3 * (time.perf_counter() - started)
        index.use_history(prepared)
        del packed_history, history, prepared
        out["history_mb"] = (held() - base) / MB
        if not traced:
            out["p50_after_ms"], out["p99_after_ms"] = (1e3 * t for t in latency(index, users, queries, seed))
    if not traced:
        out["upsert_p50_ms"], out["upsert_max_ms"] = (1e3 * t for t in edits(index, n, seed))
        out["p50_edited_ms"], out["p99_edited_ms"] = (1e3 * t for t in latency(index, users, queries, seed))
    print(json.dumps(out))


def in_child(n: int, index_file: Path, history_file: Path | None, traced: bool, args: argparse.Namespace,
             ) -> dict[str, float]:
    command = [sys.executable, __file__, "--child", str(index_file), "--n", str(n), "--queries", str(args.queries),
               "--seed", str(args.seed)]
    if history_file is not None:
        command += ["--history", str(history_file)]
    if traced:
        command.append("--traced")
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def measure(n: int, args: argparse.Namespace, folder: Path) -> None:
    members, history = community(n, args.seed)
    rounds = after_a_round(members, history, args.seed)
    pairs = sum(map(len, rounds.met.values())) // 2
    print(f"\nn = {n:,}: a round's history of {len(rounds.met):,} members who met ({pairs:,} pairs), "
          f"{len(rounds.threads):,} who shared a prompt thread")
    files: dict[str, Path] = {}
    for name, given in (("without history", History()), ("with a round's history", rounds)):
        started = time.perf_counter()
        index = MatchIndex(members, given)
        built = time.perf_counter() - started
        started = time.perf_counter()
        packed = pack_index(index)
        packing = time.perf_counter() - started
        files[name] = folder / f"index-{n}-{len(files)}.pickle"
        files[name].write_bytes(data := pickle.dumps(packed, pickle.HIGHEST_PROTOCOL))
        print(f"  built {name}: {built:.2f} s, packed in {packing * 1e3:.0f} ms, {len(data) / MB:.1f} MB packed")
        del index, packed, data
    history_file = folder / f"history-{n}.pickle"
    history_file.write_bytes(pickle.dumps(pack_pool((), rounds), pickle.HIGHEST_PROTOCOL))
    del members, history, rounds
    gc.collect()
    for name, file in files.items():
        given = history_file if name == "without history" else None
        plain, traced = in_child(n, file, given, False, args), in_child(n, file, given, True, args)
        print(f"  unpacked, {name}: {plain['unpack_ms']:.0f} ms (longest GIL hold {plain['gil_ms']:.1f} ms); "
              f"RSS +{plain['index_mb']:.1f} MB, tracemalloc {traced['index_mb']:.1f} MB; "
              f"suggest p50 {plain['p50_ms']:.2f} ms, p99 {plain['p99_ms']:.2f} ms")
        if given is not None:
            print(f"  then the round's history read into it ({plain['prepare_ms']:.0f} ms to prepare): "
                  f"RSS +{plain['history_mb']:.1f} MB in all, tracemalloc {traced['history_mb']:.1f} MB; "
                  f"suggest p50 {plain['p50_after_ms']:.2f} ms, p99 {plain['p99_after_ms']:.2f} ms")
        print(f"  then 2,000 profiles edited: upsert p50 {plain['upsert_p50_ms']:.3f} ms, longest "
              f"{plain['upsert_max_ms']:.1f} ms; suggest p50 {plain['p50_edited_ms']:.2f} ms, "
              f"p99 {plain['p99_edited_ms']:.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="20000,100000")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--queries", type=int, default=2000)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--n", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--history", help=argparse.SUPPRESS)
    parser.add_argument("--traced", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.history, args.traced, args.n, args.queries, args.seed)
        return
    with tempfile.TemporaryDirectory() as folder:
        for n in (int(size) for size in args.sizes.split(",")):
            measure(n, args, Path(folder))


if __name__ == "__main__":
    main()
