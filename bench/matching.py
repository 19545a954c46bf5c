"""Benchmark of the matching round and of suggestions on synthetic communities.

    python bench/matching.py [--sizes 1000,20000,100000] [--seed N] [--quick]
                             [--interactions-members 100000] [--no-interactions | --only-interactions]

Generated here, not in the bot: a community of n members with Zipf-sized companies (one holding 10 %),
interest tags and offer/seek phrases of Zipf popularity, three languages, twelve time zones, some avoid
lists, some history. See bench/README.md for what is compared and measured.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import itertools
import json
import logging
import math
import os
import pickle
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Awaitable, Iterator
from pathlib import Path
from types import MappingProxyType
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.matching.index import MatchIndex
from bot.matching.model import Candidate, History, LeftOut
from bot.matching.pairing import plan_round
from bot.matching.rules import eligible, why_not
from bot.matching.score import score
from bot.matching.worker import _CHUNK, RoundWorker

TAGS = (
    "ai", "saas", "fintech", "supply chain", "marketing", "sales", "hr", "recruiting", "design", "ux",
    "data", "cloud", "security", "iot", "robotics", "healthcare", "biotech", "energy", "mobility", "retail",
    "e-commerce", "gaming", "media", "education", "real estate", "legal", "accounting", "consulting",
    "manufacturing", "semiconductors", "logistics", "travel", "food", "agritech", "climate", "web3",
    "startups", "investing", "public sector", "nonprofit",
)
# Offer/seek topics, each in the ways members write it (English and Japanese).
TOPICS = (
    ("Vietnam market entry", "ベトナム進出", "ベトナム市場参入"),
    ("hiring engineers", "エンジニア採用", "engineer hiring"),
    ("fundraising", "資金調達", "seed fundraising"),
    ("cloud migration", "クラウド移行"),
    ("data analysis", "データ分析", "data analytics"),
    ("UX design review", "UXデザイン"),
    ("Japan market entry", "日本市場参入", "日本進出"),
    ("sales partnerships", "販売パートナー"),
    ("mentoring", "メンタリング"),
    ("security audit", "セキュリティ監査"),
    ("marketing strategy", "マーケティング戦略"),
    ("legal advice", "法務相談"),
    ("manufacturing partners", "製造パートナー"),
    ("translation", "翻訳"),
    ("public speaking", "登壇機会"),
    ("investor introductions", "投資家紹介"),
)
ZONES = (9.0, 8.0, 7.0, 5.5, 3.0, 1.0, 0.0, 2.0, -3.0, -5.0, -8.0, 10.0)
ZONE_WEIGHTS = (40, 10, 6, 5, 3, 6, 8, 3, 3, 8, 6, 2)


def _zipf(count: int, s: float = 1.0) -> list[float]:
    return [1.0 / (rank + 1) ** s for rank in range(count)]


def _sample_distinct(rng: random.Random, population: int, weights: list[float], k: int) -> list[int]:
    chosen: list[int] = []
    while len(chosen) < k:
        pick = rng.choices(range(population), weights)[0]
        if pick not in chosen:
            chosen.append(pick)
    return chosen


def community(n: int, seed: int) -> tuple[list[Candidate], History]:
    """A synthetic community of ``n`` members (user ids 1..n) and its history, the same for a seed."""
    rng = random.Random(seed * 1_000_003 + n)
    companies = max(2, n // 8)
    company_weights = [0.0, *_zipf(companies - 1, 1.1)]
    scale = 0.9 / sum(company_weights)
    company_weights = [0.1, *(w * scale for w in company_weights[1:])]
    company_of = rng.choices(range(companies), company_weights, k=n)
    tag_weights = _zipf(len(TAGS))
    topic_weights = _zipf(len(TOPICS), 0.8)
    members: list[Candidate] = []
    for i in range(n):
        languages = {lang for lang, p in (("ja", 0.6), ("en", 0.7), ("other", 0.15)) if rng.random() < p}
        if not languages:
            languages = {rng.choices(("ja", "en", "other"), (0.6, 0.7, 0.15))[0]}
        tags = _sample_distinct(rng, len(TAGS), tag_weights, rng.randint(1, 6))
        offers = [rng.choice(TOPICS[t]) for t in _sample_distinct(rng, len(TOPICS), topic_weights,
                                                                   rng.choice((0, 1, 1, 2)))]
        seeks = [rng.choice(TOPICS[t]) for t in _sample_distinct(rng, len(TOPICS), topic_weights,
                                                                  rng.choice((0, 1, 1, 2)))]
        avoid: frozenset[str] = frozenset()
        if rng.random() < 0.03:
            avoid = frozenset(f"co{c}" for c in rng.choices(range(companies), company_weights, k=rng.randint(1, 3)))
        members.append(Candidate(
            user_id=i + 1,
            company=f"co{company_of[i]}",
            languages=frozenset(languages),
            interests=frozenset(TAGS[t] for t in tags),
            offers=tuple(dict.fromkeys(offers)),
            seeks=tuple(dict.fromkeys(seeks)),
            utc_offset=None if rng.random() < 0.05 else rng.choices(ZONES, ZONE_WEIGHTS)[0],
            avoid=avoid,
            available=rng.random() >= 0.05,
        ))

    def pairs(count: int) -> MappingProxyType[int, frozenset[int]]:
        linked: defaultdict[int, set[int]] = defaultdict(set)
        for _ in range(count):
            a, b = rng.randint(1, n), rng.randint(1, n)
            if a != b:
                linked[a].add(b)
                linked[b].add(a)
        return MappingProxyType({user: frozenset(others) for user, others in linked.items()})

    history = History(met=pairs(n), declined=pairs(max(1, n // 20)), threads=pairs(max(1, n // 4)))
    return members, history


# --- the algorithms, each run in a process of its own ----------------------------------------------------

EXACT_SECONDS = 60
EXACT_MOST_EDGES = 3_000_000   # past this, networkx's graph alone would not fit the machine


def available(members: list[Candidate]) -> list[Candidate]:
    return [member for member in members if member.available]


def run_kakehashi(members: list[Candidate], history: History) -> dict[str, object]:
    plan = plan_round(members, history)
    return {"groups": [list(group.members) for group in plan.groups], "total": plan.total, "bound": plan.bound,
            "placeable": plan.placed + sum(1 for why in plan.left_out.values() if why == LeftOut.NO_GROUP)}


def run_random(members: list[Candidate], history: History, tries: int = 10, seed: int = 0) -> dict[str, object]:
    """Donut-style: shuffle, pair each member with the next unpaired one the rule allows (a last one left
    over joins the last pair when it can), and shuffle again, a bounded number of times, keeping the
    shuffle that placed most."""
    rng = random.Random(seed)
    people = available(members)
    best: list[list[Candidate]] = []
    for _ in range(tries):
        rng.shuffle(people)
        paired = [False] * len(people)
        groups: list[list[Candidate]] = []
        for i, a in enumerate(people):
            if paired[i]:
                continue
            for j in range(i + 1, min(len(people), i + 200)):
                if not paired[j] and eligible(a, people[j], history):
                    paired[i] = paired[j] = True
                    groups.append([a, people[j]])
                    break
        left = [p for p, done in zip(people, paired, strict=True) if not done]
        if groups and len(left) == 1 and all(eligible(left[0], other, history) for other in groups[-1]):
            groups[-1].append(left[0])
        if sum(map(len, groups)) > sum(map(len, best)):
            best = groups
    total = math.fsum(group_score(group, history) for group in best)
    return {"groups": [[p.user_id for p in group] for group in best], "total": total}


def run_exact(members: list[Candidate], history: History) -> dict[str, object]:
    """networkx's maximum-weight matching on every eligible pair (pairs only: what a trio adds on top is
    bounded separately)."""
    import networkx as nx

    people = available(members)
    graph = nx.Graph()
    edges = 0
    for i, a in enumerate(people):
        for b in people[i + 1:]:
            if eligible(a, b, history):
                graph.add_edge(a.user_id, b.user_id, weight=score(a, b, history))
                edges += 1
                if edges > EXACT_MOST_EDGES:
                    return {"skipped": f"over {EXACT_MOST_EDGES:,} eligible pairs"}
    matching = nx.max_weight_matching(graph)
    by_id = {p.user_id: p for p in people}
    groups = [[a, b] for a, b in matching]
    total = math.fsum(score(by_id[a], by_id[b], history) for a, b in groups)
    return {"groups": groups, "total": total}


def group_score(group: list[Candidate], history: History) -> float:
    pairs = [score(a, b, history) for a, b in itertools.combinations(group, 2)]
    return pairs[0] if len(pairs) == 1 else math.fsum(pairs) / 2


ALGORITHMS = {"kakehashi": run_kakehashi, "random": run_random, "exact": run_exact}


def child(algorithm: str, n: int, seed: int) -> None:
    members, history = community(n, seed)
    started = time.perf_counter()
    result = ALGORITHMS[algorithm](members, history)
    result["seconds"] = time.perf_counter() - started
    result["peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def in_child(algorithm: str, n: int, seed: int, timeout: float | None) -> dict[str, object]:
    command = [sys.executable, __file__, "--child", algorithm, str(n), "--seed", str(seed)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=True)
    except subprocess.TimeoutExpired:
        return {"skipped": f"timed out ({timeout:.0f} s)"}
    except subprocess.CalledProcessError as error:
        return {"skipped": f"failed: {error.stderr.strip().splitlines()[-1:]}"}
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# --- measuring ---------------------------------------------------------------------------------------------

def violations(groups: list[list[int]], members: list[Candidate], history: History) -> int:
    by_id = {member.user_id: member for member in members}
    seen: set[int] = set()
    broken = 0
    for group in groups:
        broken += sum(1 for user in group if user in seen)
        seen.update(group)
        broken += sum(1 for a, b in itertools.combinations(group, 2)
                      if why_not(by_id[a], by_id[b], history) is not None)
    return broken


def trio_headroom(members: list[Candidate], history: History) -> float:
    """What a trio can add to the best pairs-only round, at most: a member's two pairs in a trio count
    half each, so at most their best score. Taken over the members of the round (one pass each)."""
    people = available(members)
    return max((max((score(a, b, history) for b in people if eligible(a, b, history)), default=0.0)
                for a in people), default=0.0)


def suggest_latency(n: int, seed: int, queries: int) -> tuple[float, float, float]:
    members, history = community(n, seed)
    started = time.perf_counter()
    index = MatchIndex(members, history)
    built = time.perf_counter() - started
    return (built, *latency(index, [member.user_id for member in members], queries, seed))


def latency(index: MatchIndex, users: list[int], queries: int, seed: int) -> tuple[float, float]:
    """The median and p99 of ``queries`` suggestions for members of ``users`` picked at random, after 200
    that warm the index up."""
    rng = random.Random(seed)
    askers = [rng.choice(users) for _ in range(queries + 200)]
    for user in askers[:200]:
        index.suggest(user)
    times = []
    for user in askers[200:]:
        started = time.perf_counter()
        index.suggest(user)
        times.append(time.perf_counter() - started)
    times.sort()
    return times[len(times) // 2], times[min(len(times) - 1, int(len(times) * 0.99))]


@contextlib.contextmanager
def collector_pauses() -> Iterator[list[float]]:
    """The cycle collector's runs in this process meanwhile, in seconds. A run walks the heap holding the
    GIL, whatever thread it runs in, so a full one in a process holding a 100,000-member community (about
    a million objects) holds up the event loop too, for about 0.3 s, whoever's allocation set it off."""
    pauses: list[float] = []
    started: dict[int, float] = {}

    def watch(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started[threading.get_ident()] = time.perf_counter()
        elif threading.get_ident() in started:
            pauses.append(time.perf_counter() - started.pop(threading.get_ident()))

    gc.callbacks.append(watch)
    try:
        yield pauses
    finally:
        gc.callbacks.remove(watch)


async def loop_lag(work: Awaitable[object]) -> tuple[float, float, float]:
    """The longest the event loop waited past a 10 ms tick while ``work`` ran, how long it ran, and the
    longest run of the cycle collector meanwhile (see ``collector_pauses``). The heap is collected first,
    so that a collection owed to building the community does not fall in the measurement."""
    gc.collect()
    worst = 0.0
    done = False

    async def ticker() -> None:
        nonlocal worst
        while not done:
            before = time.perf_counter()
            await asyncio.sleep(0.01)
            worst = max(worst, time.perf_counter() - before - 0.01)

    with collector_pauses() as pauses:
        tick = asyncio.create_task(ticker())
        started = time.perf_counter()
        await work
        took = time.perf_counter() - started
        done = True
        await tick
    return worst, took, max(pauses, default=0.0)


async def worker_lags(members: list[Candidate], history: History, *, cold: bool = False,
                      ) -> list[tuple[float, float, float]]:
    """``loop_lag`` while a new ``RoundWorker`` plans the round twice: the first time with the worker's start
    and its loading of the kernels, the second with the worker ready. ``cold``: once, with an empty
    kernel cache (``NUMBA_CACHE_DIR``), as after a fresh install: the worker compiles every kernel."""
    with tempfile.TemporaryDirectory() as empty:
        before = os.environ.get("NUMBA_CACHE_DIR")
        if cold:
            os.environ["NUMBA_CACHE_DIR"] = empty   # read by the worker when it starts (this process has
        worker = RoundWorker()                      # imported numba already, and keeps its own cache)
        try:
            lags = [await loop_lag(worker.plan(members, history))]
            if not cold:
                lags.append(await loop_lag(worker.plan(members, history)))
        finally:
            if cold:
                if before is None:
                    del os.environ["NUMBA_CACHE_DIR"]
                else:
                    os.environ["NUMBA_CACHE_DIR"] = before
            await worker.close()
    return lags


async def worker_start() -> float:
    """From a new worker's first call to its answer, for an empty round (no kernel is loaded for it)."""
    worker = RoundWorker()
    try:
        started = time.perf_counter()
        await worker.plan([], History())
        return time.perf_counter() - started
    finally:
        await worker.close()


def pickling(members: list[Candidate]) -> tuple[float, float, float]:
    """Pickling the candidates in one call (the GIL held throughout), in the worker's chunks, and the
    longest chunk."""
    started = time.perf_counter()
    pickle.dumps(members, pickle.HIGHEST_PROTOCOL)
    at_once = time.perf_counter() - started
    chunks: list[float] = []
    for start in range(0, len(members), _CHUNK):
        started = time.perf_counter()
        pickle.dumps(members[start:start + _CHUNK], pickle.HIGHEST_PROTOCOL)
        chunks.append(time.perf_counter() - started)
    return at_once, sum(chunks), max(chunks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1000,20000,100000")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="small sizes and fewer queries, for a smoke run")
    parser.add_argument("--interactions-members", type=int, default=100_000, metavar="N",
                        help="profiles in the server whose round /match suggest is timed against (default %(default)s)")
    parser.add_argument("--no-interactions", action="store_true", help="skip /match suggest during a round")
    parser.add_argument("--only-interactions", action="store_true", help="only /match suggest during a round")
    parser.add_argument("--child", nargs=2, metavar=("ALGORITHM", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]), args.seed)
        return
    checks: list[tuple[str, bool]] = []
    if not args.only_interactions:
        checks += rounds_and_suggestions(args)
    if not args.no_interactions:
        checks += interactions(5_000 if args.quick else args.interactions_members, args.seed)
    print()
    for what, passed in checks:
        print(f"{'PASS' if passed else 'FAIL'}  {what}")


def interactions(n: int, seed: int) -> list[tuple[str, bool]]:
    """``/match suggest`` through the fake Discord's gateway while the real bot makes a round of ``n`` members
    (bench/interactions_during_round.py). Imported here, not at the top: the round worker, spawned, imports
    this module again, and should load no more than a bot's worker does."""
    from bench.interactions_during_round import report, suggest_during_round

    logging.basicConfig(level=logging.WARNING, format="  %(levelname)s %(name)s: %(message)s")
    print(f"\n/match suggest through the fake Discord while the real bot makes a round of {n:,} members "
          "(bench/interactions_during_round.py)")
    return report(asyncio.run(suggest_during_round(n, seed)))


def rounds_and_suggestions(args: argparse.Namespace) -> list[tuple[str, bool]]:
    """The rounds against random and exact matching, suggest's latency on the index, and the event loop while
    rounds are planned in a thread and in the worker process."""
    sizes = [1000, 5000] if args.quick else [int(size) for size in args.sizes.split(",")]
    checks: list[tuple[str, bool]] = []
    for n in sizes:
        members, history = community(n, args.seed)
        ours = in_child("kakehashi", n, args.seed, None)
        rand = in_child("random", n, args.seed, None)
        exact = in_child("exact", n, args.seed, EXACT_SECONDS + 5)
        placeable = int(ours["placeable"])  # type: ignore[call-overload]
        bound = float(ours["bound"])  # type: ignore[arg-type]
        bound_note = "the round's own bound (from its final prices: each member's best partner at them)"
        if "total" in exact:
            exact_bound = float(exact["total"]) + trio_headroom(members, history)  # type: ignore[arg-type]
            if exact_bound < bound:
                bound, bound_note = exact_bound, "networkx optimum + most a trio adds"
        print(f"\nn = {n:,} ({len(available(members)):,} available, {placeable:,} with an eligible partner); "
              f"bound {bound:,.1f}: {bound_note}")
        print(f"{'algorithm':<11}{'time s':>9}{'peak MB':>9}{'total':>12}{'% bound':>9}{'x random':>9}"
              f"{'% placed':>9}{'broken':>8}")
        random_total = float(rand.get("total", 0.0))  # type: ignore[arg-type]
        for name, result in (("kakehashi", ours), ("random", rand), ("exact", exact)):
            if "skipped" in result:
                print(f"{name:<11}  {result['skipped']}")
                continue
            groups: list[list[int]] = result["groups"]  # type: ignore[assignment]
            total = float(result["total"])  # type: ignore[arg-type]
            placed = sum(map(len, groups))
            broken = violations(groups, members, history)
            print(f"{name:<11}{result['seconds']:>9.2f}{result['peak_mb']:>9.0f}{total:>12,.1f}"
                  f"{100 * total / bound:>9.2f}{total / random_total:>9.2f}{100 * placed / max(1, placeable):>9.1f}"
                  f"{broken:>8}")
            checks.append((f"n={n:,} {name}: 0 rule violations", broken == 0))
            if name == "exact":
                ratio = 100 * float(ours["total"]) / total  # type: ignore[arg-type]
                print(f"{'':<11}kakehashi is {ratio:.2f} % of networkx's optimum (pairs only)")
            if name == "kakehashi":
                checks.append((f"n={n:,}: everyone with an eligible partner placed ({placed:,}/{placeable:,})",
                               placed == placeable))
                checks.append((f"n={n:,}: score >= 99.5 % of the bound ({100 * total / bound:.2f} %)",
                               total >= 0.995 * bound))
                checks.append((f"n={n:,}: score >= 2x random ({total / random_total:.2f}x)", total >= 2 * random_total))
                seconds = float(result["seconds"])  # type: ignore[arg-type]
                peak = float(result["peak_mb"])  # type: ignore[arg-type]
                if n == 20_000:
                    checks.append((f"n=20,000: round <= 5 s ({seconds:.1f} s)", seconds <= 5))
                if n == 100_000:
                    checks.append((f"n=100,000: round <= 30 s ({seconds:.1f} s)", seconds <= 30))
                    checks.append((f"n=100,000: peak <= 1 GB ({peak:.0f} MB)", peak <= 1024))
    latency_n = 5_000 if args.quick else 100_000
    built, p50, p99 = suggest_latency(latency_n, args.seed, 300 if args.quick else 2000)
    print(f"\nsuggest against {latency_n:,} members: index built in {built:.1f} s; "
          f"p50 {p50 * 1e3:.2f} ms, p99 {p99 * 1e3:.2f} ms")
    checks.append((f"suggest p99 <= 5 ms at {latency_n:,} ({p99 * 1e3:.2f} ms)", p99 <= 0.005))
    lag_n = 5_000 if args.quick else 20_000
    lag_members, lag_history = community(lag_n, args.seed)
    worst, took, _ = asyncio.run(loop_lag(asyncio.to_thread(plan_round, lag_members, lag_history)))
    print(f"event loop during a {lag_n:,} round in asyncio.to_thread ({took:.1f} s): longest lag {worst * 1e3:.0f} ms")
    checks.append((f"loop lag <= 0.5 s during a {lag_n:,} round ({worst * 1e3:.0f} ms)", worst <= 0.5))
    del lag_members, lag_history
    print(f"\nrounds in the worker process (bot.matching.worker.RoundWorker); a new worker answers an empty round "
          f"in {asyncio.run(worker_start()):.2f} s")
    for n in [5_000] if args.quick else [20_000, 100_000]:
        lag_members, lag_history = community(n, args.seed)
        at_once, chunked, chunk = pickling(lag_members)
        print(f"{n:,} candidates pickled in one call {at_once * 1e3:.0f} ms; in chunks of {_CHUNK:,} "
              f"{chunked * 1e3:.0f} ms, the longest chunk {chunk * 1e3:.1f} ms")
        runs = asyncio.run(worker_lags(lag_members, lag_history))
        if n == (5_000 if args.quick else 20_000):
            runs += asyncio.run(worker_lags(lag_members, lag_history, cold=True))
        for what, (worst, took, collector) in zip(("new worker", "ready worker", "new worker, empty kernel cache"),
                                                   runs, strict=False):
            print(f"event loop during a {n:,} round, {what} ({took:.1f} s): longest lag {worst * 1e3:.0f} ms "
                  f"(longest collector run in this process {collector * 1e3:.0f} ms)")
            checks.append((f"loop lag <= 50 ms during a {n:,} round in the worker, {what} ({worst * 1e3:.0f} ms)",
                           worst <= 0.05))
        del lag_members, lag_history
    return checks


if __name__ == "__main__":
    main()
