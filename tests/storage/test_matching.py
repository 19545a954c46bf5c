"""Matching on a real SQLite file: the rule on stored profiles and choices, requests, avoid lists, pauses,
rounds with their jobs, follow-ups, the schedule, erasing and exporting a member."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Sequence
from datetime import timedelta
from itertools import combinations
from pathlib import Path

import pytest

from bot.errors import UserError
from bot.guilds.service import GuildConfig
from bot.guilds.store import GuildSettingsStore
from bot.intros.model import About, More
from bot.intros.service import IntroService
from bot.intros.store import IntroStore
from bot.matching import rules
from bot.matching import service as service_module
from bot.matching.delivery import Ended, GroupState, PlannedGroup, Unreached, Way
from bot.matching.model import (
    DELIVER_JOB,
    DELIVERY_JOB,
    FOLLOW_UP_JOB,
    LEFT_OUT_JOB,
    PAUSED_JOB,
    REASON_INTERESTS,
    REQUEST_JOB,
    ROUND_JOB,
    SUMMARY_JOB,
    THREAD_JOB,
    Answer,
    Candidate,
    History,
    RequestState,
    RoundPlan,
)
from bot.matching.pairing import plan_round
from bot.matching.service import MatchService, plan_in_thread
from bot.matching.store import MatchStore
from bot.matching.worker import RoundWorker
from bot.prompts.store import PromptStore
from bot.storage import Storage, load_migrations
from playground.clock import FakeClock

GUILD = 10
ADMIN = 999
EVERYONE = frozenset(range(1, 100))   # the server's members, as delivery is told them


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def intros(storage: Storage, clock: FakeClock) -> IntroService:
    return IntroService(IntroStore(storage), clock)


@pytest.fixture
def matching(storage: Storage, intros: IntroService, clock: FakeClock) -> MatchService:
    return MatchService(MatchStore(storage), intros, PromptStore(storage), GuildConfig(GuildSettingsStore(storage),
                                                                                     clock), clock,
                        planner=plan_in_thread)


async def member(intros: IntroService, user_id: int, company: str, *, languages: tuple[str, ...] = ("en", "ja"),
                 **more: str) -> None:
    await intros.save_about(GUILD, user_id, About(f"Member {user_id}", company), locale="en")
    await intros.set_languages(GUILD, user_id, languages)
    if more:
        await intros.save_more(GUILD, user_id, More(**more))


async def refused(call: object, key: str) -> None:
    with pytest.raises(UserError) as caught:
        await call  # type: ignore[misc]
    assert caught.value.key == key


async def groups_of(storage: Storage, round_id: int) -> list[PlannedGroup]:
    """A round's groups as stored, in the plan's order (before any was introduced)."""
    async with storage.read() as tx:
        return await MatchStore.planned_groups(tx, round_id)


async def job_count(storage: Storage, kind: str) -> int:
    row = await storage.fetch_one("SELECT COUNT(*) FROM outbox WHERE kind = ?", (kind,))
    assert row is not None
    return int(row[0])


# ---------------------------------------------------------------- the rule on stored data


async def test_sony_and_sony_corporation_are_one_company(intros: IntroService, matching: MatchService) -> None:
    await member(intros, 1, "Sony")
    await member(intros, 2, "SONY Corporation")
    await member(intros, 3, "Olympus")
    await refused(matching.check(GUILD, 1, 2), rules.SAME_COMPANY)
    assert [s.user_id for s, _ in await matching.suggest(GUILD, 1)] == [3]
    await intros.set_alias(GUILD, "ソニー", "Sony", actor_id=ADMIN)
    await member(intros, 4, "ソニー株式会社")
    await refused(matching.check(GUILD, 4, 1), rules.SAME_COMPANY)
    assert [s.user_id for s, _ in await matching.suggest(GUILD, 4)] == [3]


async def test_interests_kept_as_written_are_still_one_tag_whatever_the_case_or_width(
        intros: IntroService, matching: MatchService) -> None:
    await member(intros, 1, "Sony", interests="AI, Supply Chain")
    await member(intros, 2, "Olympus", interests="ａｉ, logistics")
    assert (await intros.profile(GUILD, 1)).interests == ("AI", "Supply Chain")   # type: ignore[union-attr]
    ((suggestion, _),) = await matching.suggest(GUILD, 1)
    shared = next(r for r in suggestion.reasons if r.key == REASON_INTERESTS)
    assert shared.values["topics"] == ("AI",)   # as the asker wrote it
    ((suggestion, _),) = await matching.suggest(GUILD, 2)
    shared = next(r for r in suggestion.reasons if r.key == REASON_INTERESTS)
    assert shared.values["topics"] == ("ａｉ",)


async def test_an_avoided_company_is_kept_apart_both_ways_and_privately(intros: IntroService,
                                                                          matching: MatchService) -> None:
    await member(intros, 1, "Sony")
    await member(intros, 2, "Olympus Corporation")
    await matching.avoid(GUILD, 1, "OLYMPUS")
    await refused(matching.check(GUILD, 1, 2), rules.YOU_AVOID)
    await refused(matching.check(GUILD, 2, 1), rules.UNAVAILABLE)  # neutral: the list is private
    assert await matching.suggest(GUILD, 2) == []
    assert await matching.unavoid(GUILD, 1, "olympus corp.") is not None
    await matching.check(GUILD, 2, 1)


async def test_no_shared_language_and_freelancers(intros: IntroService, matching: MatchService) -> None:
    await member(intros, 1, "Sony", languages=("ja",))
    await member(intros, 2, "Olympus", languages=("en",))
    await refused(matching.check(GUILD, 1, 2), rules.NO_LANGUAGE)
    await member(intros, 3, "Freelance", languages=("ja",))
    await member(intros, 4, "freelance", languages=("ja",))
    await matching.check(GUILD, 3, 4)  # two freelancers are not colleagues


# ---------------------------------------------------------------- requests


async def test_requests_are_checked_limited_and_answered_once(intros: IntroService, matching: MatchService,
                                                            storage: Storage, clock: FakeClock) -> None:
    for user_id, company in enumerate(("A", "B", "C", "D", "E"), start=1):
        await member(intros, user_id, company)
    await refused(matching.request(GUILD, 1, 1, ""), rules.SELF)
    await refused(matching.request(GUILD, 1, 42, ""), "match.request.no_profile")
    await refused(matching.request(GUILD, 42, 1, ""), "match.no_profile")
    await refused(matching.request(GUILD, 1, 2, "x" * 501), "match.request.note_too_long")
    first = await matching.request(GUILD, 1, 2, "  Hello!  ")
    assert (first.note, first.state, first.expires_at - first.created_at) == ("Hello!", RequestState.OPEN,
                                                                              timedelta(days=7))
    await refused(matching.request(GUILD, 2, 1, ""), "match.request.pending")
    await matching.request(GUILD, 1, 3, "")
    await matching.request(GUILD, 1, 4, "")
    await refused(matching.request(GUILD, 1, 5, ""), "match.request.too_many")
    assert await job_count(storage, REQUEST_JOB) == 3

    await refused(matching.answer_request(first.id, 3, True), "match.request.not_yours")
    declined = await matching.answer_request(first.id, 2, False)
    assert declined.state is RequestState.DECLINED
    await refused(matching.answer_request(first.id, 2, True), "match.request.closed")
    assert await matching.expire(first.id) is None  # answered first
    # A declined request keeps the pair apart, without saying so, for 90 days.
    await refused(matching.request(GUILD, 1, 2, ""), rules.UNAVAILABLE)
    await refused(matching.check(GUILD, 2, 1), rules.UNAVAILABLE)
    clock.advance(timedelta(days=91))
    await matching.check(GUILD, 1, 2)


async def test_an_accepted_request_counts_as_met_and_an_unanswered_one_expires(
        intros: IntroService, matching: MatchService) -> None:
    for user_id, company in enumerate(("A", "B", "C"), start=1):
        await member(intros, user_id, company)
    accepted = await matching.request(GUILD, 1, 2, "")
    await matching.answer_request(accepted.id, 2, True)
    await refused(matching.check(GUILD, 1, 2), rules.MET_RECENTLY)
    assert 2 not in [s.user_id for s, _ in await matching.suggest(GUILD, 1)]
    waiting = await matching.request(GUILD, 1, 3, "")
    expired = await matching.expire(waiting.id)
    assert expired is not None and expired.state is RequestState.EXPIRED
    assert await matching.expire(waiting.id) is None


async def test_an_answer_after_the_expiry_is_refused_even_if_the_expiry_job_is_late(
        intros: IntroService, matching: MatchService, clock: FakeClock) -> None:
    await member(intros, 1, "A")
    await member(intros, 2, "B")
    request = await matching.request(GUILD, 1, 2, "")
    clock.advance(timedelta(days=7, seconds=1))
    await refused(matching.answer_request(request.id, 2, True), "match.request.closed")
    await matching.request(GUILD, 1, 2, "")  # the expired one no longer blocks the pair


async def test_a_company_kept_for_matches_cannot_be_guessed_by_trying(intros: IntroService,
                                                                     matching: MatchService) -> None:
    await member(intros, 1, "Sony")
    await member(intros, 2, "Zuiko")
    await member(intros, 3, "Zuiko")
    await intros.set_visibility(GUILD, 2, "matches")
    await refused(matching.check(GUILD, 3, 2), rules.UNAVAILABLE)  # not "same company"
    await matching.avoid(GUILD, 1, "Zuiko")
    await refused(matching.check(GUILD, 1, 2), rules.UNAVAILABLE)  # not "on your avoid list"
    await refused(matching.check(GUILD, 2, 3), rules.SAME_COMPANY)  # 3 shows their company


async def test_a_request_is_stored_with_its_delivery_job_which_records_where_it_goes(
        intros: IntroService, matching: MatchService, storage: Storage, clock: FakeClock) -> None:
    await member(intros, 1, "A")
    await member(intros, 2, "B")
    request = await matching.request(GUILD, 1, 2, "")
    (job,) = await storage.fetch_all("SELECT kind, due_at, member_id FROM outbox WHERE kind = ?", (DELIVER_JOB,))
    assert job["member_id"] == 1  # erased with the requester
    await refused(matching.request(GUILD, 1, 2, ""), "match.request.pending")
    assert await job_count(storage, DELIVER_JOB) == 1
    await matching.delivering(request.id, 555)  # the DM channel, before the DM is sent
    found = await matching.get_request(request.id)
    assert found is not None and (found.channel_id, found.message_id) == (555, None)
    await matching.delivered(request.id, 555, 777)
    await matching.delivering(request.id, 666)  # a late retry moves nothing once it was delivered
    found = await matching.get_request(request.id)
    assert found is not None and (found.channel_id, found.message_id) == (555, 777)


# ---------------------------------------------------------------- members' choices


async def test_pause_is_bounded_and_ends_by_itself(intros: IntroService, matching: MatchService,
                                                   clock: FakeClock) -> None:
    await member(intros, 1, "A")
    await member(intros, 2, "B")
    await refused(matching.pause(GUILD, 1, 0), "match.pause.range")
    await refused(matching.pause(GUILD, 1, 1000), "match.pause.range")
    assert [s.user_id for s, _ in await matching.suggest(GUILD, 2)] == [1]
    paused = await matching.pause(GUILD, 1, 2)
    assert paused.paused_until == clock.now() + timedelta(weeks=2)
    await refused(matching.check(GUILD, 2, 1), rules.UNAVAILABLE)
    await refused(matching.check(GUILD, 1, 2), rules.YOU_UNAVAILABLE)
    assert await matching.suggest(GUILD, 2) == []
    clock.advance(timedelta(weeks=2, seconds=1))
    await matching.check(GUILD, 2, 1)


async def test_avoid_list_input(intros: IntroService, matching: MatchService) -> None:
    await refused(matching.avoid(GUILD, 1, "X" * 5000), "match.avoid.too_long")
    await refused(matching.avoid(GUILD, 1, "!!!"), "match.avoid.empty")
    entry, added = await matching.avoid(GUILD, 1, "  Olympus  ")
    assert (entry.company, entry.company_key, added) == ("Olympus", "olympus", True)
    assert (await matching.avoid(GUILD, 1, "OLYMPUS CORP"))[1] is False
    for n in range(49):
        await matching.avoid(GUILD, 1, f"Company {n}")
    await refused(matching.avoid(GUILD, 1, "One too many"), "match.avoid.too_many")
    assert await matching.unavoid(GUILD, 1, "Nope") is None


async def test_unavoid_removes_every_spelling_an_alias_joins_at_once(intros: IntroService,
                                                                     matching: MatchService) -> None:
    await matching.avoid(GUILD, 1, "Sony")
    await matching.avoid(GUILD, 1, "ソニー")
    await matching.avoid(GUILD, 1, "Olympus")
    await intros.set_alias(GUILD, "ソニー", "Sony", actor_id=ADMIN)
    removed = await matching.unavoid(GUILD, 1, "SONY")
    assert removed is not None and removed.company in {"Sony", "ソニー"}
    assert [entry.company for entry in await matching.avoided(GUILD, 1)] == ["Olympus"]


async def test_autocomplete_never_offers_a_company_kept_for_matches(intros: IntroService,
                                                                    matching: MatchService) -> None:
    await member(intros, 1, "Olympus")
    await member(intros, 2, "Omron")
    await intros.set_visibility(GUILD, 2, "matches")
    await matching.avoid(GUILD, 3, "Oracle")
    assert await matching.known_companies(GUILD, 3, "o") == ["Olympus", "Oracle"]
    assert await matching.known_companies(GUILD, 3, "omr") == []


# ---------------------------------------------------------------- rounds


async def seven_members(intros: IntroService, matching: MatchService) -> None:
    for user_id in range(1, 8):
        await member(intros, user_id, f"Company {user_id}", interests="AI, supply chains")
        await matching.join(GUILD, user_id)


async def test_a_round_of_seven_is_two_pairs_and_a_trio_stored_once_with_its_jobs(
        intros: IntroService, matching: MatchService, storage: Storage, clock: FakeClock) -> None:
    await seven_members(intros, matching)
    await member(intros, 8, "Not joined")
    slot = clock.now()
    outcome = await matching.run_round(GUILD, slot)
    assert outcome is not None and outcome.members == 7
    groups = await groups_of(storage, outcome.round_id)
    assert (outcome.plan.groups, outcome.plan.trios, outcome.plan.placed) == (3, 1, 7)
    sizes = sorted(len(g.members) for g in groups)
    assert sizes == [2, 2, 3]
    placed = [user for g in groups for user in g.members]
    assert sorted(placed) == list(range(1, 8))
    pool = await matching.pool(GUILD)
    for group in groups:
        for a, b in combinations(group.members, 2):
            assert rules.why_not(pool.candidates[a], pool.candidates[b], pool.history) == rules.MET_RECENTLY
    assert await matching.run_round(GUILD, slot) is None  # the slot's round exists: nothing twice
    # Delivery is one job for the round (the ways are chosen when it begins); a follow-up per group.
    assert (await job_count(storage, DELIVERY_JOB), await job_count(storage, FOLLOW_UP_JOB)) == (1, 3)
    assert await job_count(storage, THREAD_JOB) == 0
    stats = await matching.stats(GUILD)
    assert (stats.rounds, stats.groups, stats.meetings, stats.bridged) == (1, 0, 0, 0)   # nobody introduced yet
    for group in groups:
        row = await storage.fetch_one("SELECT group_id FROM match_group_members WHERE user_id = ?",
                                      (group.members[0],))
        assert row is not None
        record = await matching.group(int(row[0]))
        assert record is not None
        await matching.group_done(record, GroupState.DELIVERED, Way.THREAD)
    stats = await matching.stats(GUILD)
    assert (stats.rounds, stats.groups, stats.meetings, stats.bridged) == (1, 3, 0, 5)


async def test_someone_with_nobody_eligible_is_told_why(intros: IntroService, matching: MatchService,
                                                        storage: Storage, clock: FakeClock) -> None:
    await member(intros, 1, "Sony")
    await member(intros, 2, "Sony")
    await member(intros, 3, "Olympus")
    for user_id in (1, 2, 3):
        await matching.join(GUILD, user_id)
    preview = await matching.preview(GUILD)
    assert preview.taking_part == 3 and preview.plan.groups == 1 and len(preview.plan.left_out) == 1
    assert dict(preview.names) == {user: f"Member {user}" for user in preview.plan.left_out}
    assert await job_count(storage, LEFT_OUT_JOB) == 0  # a preview contacts no one
    outcome = await matching.run_round(GUILD, clock.now())
    assert outcome is not None and await job_count(storage, LEFT_OUT_JOB) == 1


async def test_three_unanswered_follow_ups_pause_a_member(intros: IntroService, matching: MatchService,
                                                          storage: Storage, clock: FakeClock) -> None:
    for user_id in (1, 2, 3, 4):
        await member(intros, user_id, f"Company {user_id}")
        await matching.join(GUILD, user_id)
    await matching.set_rounds(GUILD, None, None, None, None, no_repeat_rounds=1, actor_id=ADMIN)
    for _ in range(3):
        clock.advance(timedelta(weeks=1))
        outcome = await matching.run_round(GUILD, clock.now())
        assert outcome is not None and outcome.paused == () and outcome.plan.groups == 2
        for row in await storage.fetch_all("SELECT id FROM match_groups WHERE round_id = ?", (outcome.round_id,)):
            group_id = int(row[0])
            await matching.followed_up(group_id)
            group = await matching.group(group_id)
            assert group is not None
            for user_id in group.members:
                if user_id != 1:  # everyone answers but member 1
                    await matching.answer_follow_up(group_id, user_id, Answer.MET)
            await refused(matching.answer_follow_up(group_id, 42, Answer.MET), "match.follow_up.not_yours")
    clock.advance(timedelta(weeks=1))
    outcome = await matching.run_round(GUILD, clock.now())
    assert outcome is not None and outcome.paused == (1,)
    assert 1 not in {user for g in await groups_of(storage, outcome.round_id) for user in g.members}
    assert await job_count(storage, PAUSED_JOB) == 1
    assert (await matching.member(GUILD, 1)).auto_paused
    await matching.join(GUILD, 1)
    assert not (await matching.member(GUILD, 1)).auto_paused
    assert (await matching.stats(GUILD)).meetings == 6
    clock.advance(timedelta(weeks=1))
    again = await matching.run_round(GUILD, clock.now())
    assert again is not None and again.paused == ()  # silence before joining again does not count


async def test_the_suggestion_index_follows_changes_and_pauses_that_end(
        intros: IntroService, matching: MatchService, clock: FakeClock) -> None:
    await member(intros, 1, "A")
    await member(intros, 2, "B")
    assert [s.user_id for s, _ in await matching.suggest(GUILD, 1)] == [2]  # builds the index
    await matching.pause(GUILD, 2, 1)
    assert await matching.suggest(GUILD, 1) == []
    await intros.set_open(GUILD, 2, False)
    clock.advance(timedelta(weeks=1, seconds=1))
    assert await matching.suggest(GUILD, 1) == []  # the pause ended, but they closed to introductions
    await intros.set_open(GUILD, 2, True)
    assert [s.user_id for s, _ in await matching.suggest(GUILD, 1)] == [2]
    await member(intros, 3, "B Corporation")
    await intros.set_alias(GUILD, "B Corporation", "C", actor_id=ADMIN)
    assert sorted(s.user_id for s, _ in await matching.suggest(GUILD, 1)) == [2, 3]


async def test_scheduled_rounds_become_one_job_per_slot(intros: IntroService, matching: MatchService,
                                                        storage: Storage, clock: FakeClock) -> None:
    await refused(matching.set_rounds(GUILD, None, None, None, True, no_repeat_rounds=0, actor_id=ADMIN),
                  "match.rounds.bad_repeat")
    # 2026-11-02 is a Monday, 09:00 UTC; the server's zone is UTC by default.
    change, _, upcoming = await matching.set_rounds(GUILD, "weekly", "monday", "10:00", True, actor_id=ADMIN)
    assert change.changed and upcoming == clock.now() + timedelta(hours=1)
    await matching.materialise_due(clock.now())
    assert await job_count(storage, ROUND_JOB) == 0
    clock.advance(timedelta(hours=1))
    for _ in range(2):
        await matching.materialise_due(clock.now())
    assert await job_count(storage, ROUND_JOB) == 1
    clock.advance(timedelta(weeks=3))  # downtime: only the latest missed slot
    await matching.materialise_due(clock.now())
    assert await job_count(storage, ROUND_JOB) == 2
    _, _, upcoming = await matching.set_rounds(GUILD, "monthly", None, None, None, actor_id=ADMIN)
    assert upcoming is not None and upcoming.day <= 7 and upcoming.weekday() == 0


async def test_a_round_run_by_hand_takes_the_place_of_the_scheduled_round_due_or_near(
        intros: IntroService, matching: MatchService, storage: Storage, clock: FakeClock) -> None:
    await seven_members(intros, matching)
    # 2026-11-02 is a Monday, 09:00 UTC: the round at 10:00 is an hour away.
    await matching.set_rounds(GUILD, "weekly", "monday", "10:00", True, actor_id=ADMIN)
    monday = clock.now() + timedelta(hours=1)
    clock.advance(timedelta(minutes=30))
    by_hand = await matching.run_round_now(GUILD)
    assert by_hand is not None and by_hand.replaced == monday
    clock.advance(timedelta(hours=1))
    await matching.materialise_due(clock.now())
    assert await job_count(storage, ROUND_JOB) == 0  # no second round right after the one by hand
    _, _, upcoming = await matching.next_round(GUILD)
    assert upcoming == monday + timedelta(weeks=1)  # and the rhythm stays

    # Far from any slot (Thursday, four days before the next), a round by hand is an extra one.
    clock.advance(timedelta(days=3))
    extra = await matching.run_round_now(GUILD)
    assert extra is not None and extra.replaced is None
    clock.advance(timedelta(days=4) - timedelta(minutes=30))
    await matching.materialise_due(clock.now())
    assert await job_count(storage, ROUND_JOB) == 1

    # A round by hand after the slot's job was made, before it ran: the job then makes nothing.
    clock.advance(timedelta(minutes=5))
    again = await matching.run_round_now(GUILD)
    assert again is not None
    assert await matching.run_round(GUILD, monday + timedelta(weeks=1)) is None
    row = await storage.fetch_one("SELECT COUNT(*) FROM match_rounds WHERE guild_id = ?", (GUILD,))
    assert row is not None and row[0] == 3


async def test_a_round_by_hand_while_one_is_being_made_is_refused(
        intros: IntroService, matching: MatchService, clock: FakeClock) -> None:
    await seven_members(intros, matching)
    scheduled = asyncio.create_task(matching.run_round(GUILD, clock.now()))
    await asyncio.sleep(0)  # the task starts: it takes the lock, then waits for the database
    assert matching.round_running(GUILD)
    await refused(matching.run_round_now(GUILD), "match.rounds.running")
    assert await scheduled is not None
    clock.advance(timedelta(minutes=1))
    assert await matching.run_round_now(GUILD) is not None  # once it is stored, an admin may make another


async def test_two_rounds_planned_from_the_same_state_are_not_both_stored(
        intros: IntroService, matching: MatchService, storage: Storage, clock: FakeClock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """As two processes sharing the database would (no asyncio lock in common): the database refuses the
    round that was planned without seeing the other, so nobody is in two groups."""
    await seven_members(intros, matching)
    other_storage = await Storage.open(storage.target)
    try:
        other_intros = IntroService(IntroStore(other_storage), clock)
        both_planning = asyncio.Barrier(2)

        async def plan_together(candidates: Sequence[Candidate], history: History) -> RoundPlan:
            async with asyncio.timeout(10):
                await both_planning.wait()  # neither plan is made before both have read who met whom
            return plan_round(candidates, history)

        other = MatchService(MatchStore(other_storage), other_intros, PromptStore(other_storage),
                             GuildConfig(GuildSettingsStore(other_storage), clock), clock, planner=plan_together)
        monkeypatch.setattr(matching, "_plan", plan_together)
        slot = clock.now()
        clock.advance(timedelta(minutes=5))
        outcomes = await asyncio.gather(matching.run_round(GUILD, slot), other.run_round_now(GUILD))
    finally:
        await other_storage.close()
    assert len([o for o in outcomes if o is not None]) == 1
    placed = await storage.fetch_all("SELECT user_id, COUNT(*) FROM match_group_members GROUP BY user_id")
    assert sorted(row[0] for row in placed) == list(range(1, 8)) and {row[1] for row in placed} == {1}
    assert await job_count(storage, DELIVERY_JOB) == 1


async def test_rounds_stored_before_the_round_chain_are_chained_by_the_migration(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    migrations = load_migrations()
    old = await Storage.open(path, migrations=migrations[:6])  # before 0007_round_chain
    await old.close()
    with sqlite3.connect(path) as db:
        for guild, slot in ((1, "a"), (2, "a"), (1, "b"), (1, "c")):
            db.execute("INSERT INTO match_rounds (guild_id, slot, created_at, members, total, bound) "
                       "VALUES (?, ?, 'now', 2, 1.0, 1.0)", (guild, slot))
    upgraded = await Storage.open(path)
    try:
        rows = await upgraded.fetch_all("SELECT id, guild_id, previous_round_id FROM match_rounds ORDER BY id")
    finally:
        await upgraded.close()
    assert [tuple(row) for row in rows] == [(1, 1, 0), (2, 2, 0), (3, 1, 1), (4, 1, 3)]


# ---------------------------------------------------------------- erasing and exporting


async def test_erasing_a_member_erases_their_matching_data(intros: IntroService, matching: MatchService,
                                                           storage: Storage, clock: FakeClock) -> None:
    await member(intros, 1, "A")
    await member(intros, 2, "B")
    await matching.join(GUILD, 1)
    await matching.join(GUILD, 2)
    await matching.avoid(GUILD, 1, "Zuiko")
    await matching.request(GUILD, 2, 1, "hi")
    await matching.run_round(GUILD, clock.now())
    exported = await intros.export(GUILD, 1)
    assert exported["matching"]["joined"] == 1
    assert [e["company"] for e in exported["avoided_companies"]] == ["Zuiko"]
    assert [r["note"] for r in exported["intro_requests"]] == ["hi"]
    assert len(exported["match_groups"]) == 1
    await intros.forget(GUILD, 1)
    for table, column in (("match_members", "user_id"), ("match_avoid", "user_id"),
                          ("match_requests", "requester_id"), ("match_requests", "target_id"),
                          ("match_group_members", "user_id")):
        row = await storage.fetch_one(f"SELECT COUNT(*) FROM {table} WHERE {column} = 1")
        assert row is not None and row[0] == 0, table


async def test_a_round_made_by_the_worker_process_is_stored_as_one_made_here(
        intros: IntroService, storage: Storage, clock: FakeClock) -> None:
    """The bot makes rounds and begins their delivery in the round worker's process, on a connection of its
    own: the same round, jobs and delivery as in-process, and this process's suggestions know who met."""
    for user_id in range(1, 8):
        await member(intros, user_id, f"Company {user_id}")
    worker = RoundWorker()
    working = MatchService(MatchStore(storage), intros, PromptStore(storage),
                           GuildConfig(GuildSettingsStore(storage), clock), clock, planner=plan_in_thread,
                           worker=worker)
    try:
        for user_id in range(1, 8):
            await working.join(GUILD, user_id)
        assert len(await working.suggest(GUILD, 1)) == 3   # the suggestion index built before the round
        outcome = await working.run_round(GUILD, clock.now())
        assert worker.pid is not None and worker.pid != os.getpid()
        assert outcome is not None and (outcome.members, outcome.plan.groups, outcome.plan.trios) == (7, 3, 1)
        groups = await groups_of(storage, outcome.round_id)
        assert sorted(user for g in groups for user in g.members) == list(range(1, 8))
        assert (await job_count(storage, DELIVERY_JOB), await job_count(storage, FOLLOW_UP_JOB)) == (1, 3)
        assert await working.run_round(GUILD, clock.now()) is None   # the slot's round exists
        # Right after the round, before the index's history is read again: nobody is suggested the partner
        # they were just given (the asker's own history is read fresh with each suggestion).
        for group in groups:
            for user_id in group.members:
                suggested = {s.user_id for s, _ in await working.suggest(GUILD, user_id)}
                assert not suggested & set(group.members)
        started = await working.begin_delivery(GUILD, outcome.round_id, EVERYONE - {groups[0].members[0]},
                                               active_threads=1000 - 25 - 1)
        assert started is not None and (started.room, started.threads, started.left) == (1, 1, 1)
        assert await job_count(storage, THREAD_JOB) == 3 - started.cancelled
        assert await working.begin_delivery(GUILD, outcome.round_id, EVERYONE, 0) is None   # once
    finally:
        await working.close()
        await worker.close()


async def test_a_large_servers_index_read_in_the_worker_suggests_as_one_built_here(
        intros: IntroService, matching: MatchService, storage: Storage, clock: FakeClock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A server of READ_IN_WORKER_FROM profiles or more has its index's pool and history read in the round
    worker's process: the same suggestions, pauses that end, and the history after a round."""
    monkeypatch.setattr(service_module, "READ_IN_WORKER_FROM", 5)
    for user_id in range(1, 9):
        await member(intros, user_id, f"Company {user_id % 4}")
        await matching.join(GUILD, user_id)
    await matching.pause(GUILD, 2, 1)
    worker = RoundWorker()
    working = MatchService(MatchStore(storage), intros, PromptStore(storage),
                           GuildConfig(GuildSettingsStore(storage), clock), clock, planner=plan_in_thread,
                           worker=worker)

    async def suggested(service: MatchService) -> dict[int, list[tuple[int, float]]]:
        return {user_id: [(s.user_id, s.score) for s, _ in await service.suggest(GUILD, user_id)]
                for user_id in range(1, 9) if user_id != 2}

    try:
        assert await working.prepare_indexes() == 1
        assert worker.pid is not None and worker.pid != os.getpid()
        assert await suggested(working) == await suggested(matching)
        assert all(2 not in (user for user, _ in found) for found in (await suggested(working)).values())
        clock.advance(timedelta(weeks=1, seconds=1))   # the pause ends
        assert await suggested(working) == await suggested(matching)
        assert any(2 in (user for user, _ in found) for found in (await suggested(working)).values())
        outcome = await working.run_round(GUILD, clock.now())
        assert outcome is not None
        await working.suggest(GUILD, 1)                # reads the history again, in the worker
        await asyncio.gather(*working._refreshing.values())
        met = working._indexes[GUILD].history.met   # the index's copy, read in the worker
        for group in await groups_of(storage, outcome.round_id):
            for a, b in combinations(group.members, 2):
                assert b in met[a] and a in met[b]
        assert await suggested(working) == await suggested(matching)
        assert await working.prepare_indexes() == 0    # built already
    finally:
        await working.close()
        await worker.close()


TOPICS = ("AI", "logistics", "design", "finance", "robots")
ZONES = ("Asia/Tokyo", "Europe/London", "America/New_York")


async def test_a_stored_index_loaded_with_the_changes_made_since_suggests_as_one_built_now(
        intros: IntroService, matching: MatchService, storage: Storage, clock: FakeClock,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker stores the index it builds (bot/matching/snapshots.py); the next bot loads it and reads
    afresh whoever changed meanwhile: profiles saved, hidden and shown again, avoid lists grown and shrunk,
    pauses begun and ended, rounds left. It then suggests exactly as an index built from scratch would."""
    monkeypatch.setattr(service_module, "READ_IN_WORKER_FROM", 5)
    for user_id in range(1, 15):
        await member(intros, user_id, f"Company {user_id % 4}", timezone=ZONES[user_id % 3],
                     interests=", ".join(TOPICS[user_id % 5:user_id % 5 + 2]))
        await matching.join(GUILD, user_id)
    await matching.pause(GUILD, 2, 1)
    await matching.avoid(GUILD, 5, "Company 2")
    await intros.left(GUILD, 9)
    worker = RoundWorker()

    def bot() -> MatchService:
        return MatchService(MatchStore(storage), intros, PromptStore(storage),
                            GuildConfig(GuildSettingsStore(storage), clock), clock, planner=plan_in_thread,
                            worker=worker)

    async def suggested(service: MatchService) -> dict[int, list[tuple[int, float]]]:
        found = {}
        for user_id in await intros.active_ids(GUILD):
            try:
                found[user_id] = [(s.user_id, s.score) for s, _ in await service.suggest(GUILD, user_id)]
            except UserError as error:
                found[user_id] = [(0, float(len(error.key)))]   # the same refusal either way
        return found

    first, second, third = bot(), bot(), bot()
    clock.advance(timedelta(hours=1))   # what came before the build is older than its margin for clocks
    try:
        assert await first.load_indexes() == 0             # nothing stored yet
        assert await first.prepare_indexes() == 1          # built in the worker, and stored
        stored = await MatchStore(storage).snapshot(GUILD)
        assert stored is not None and stored.members == 13 and stored.as_of == clock.now()
        await first.close()
        clock.advance(timedelta(minutes=30))               # while no bot runs
        await member(intros, 3, "Company 2", interests="finance")      # saved again
        await matching.avoid(GUILD, 4, "Company 1")
        await matching.unavoid(GUILD, 5, "Company 2")
        await matching.pause(GUILD, 6, 2)
        await matching.leave(GUILD, 7)
        await intros.left(GUILD, 8)
        await intros.joined(GUILD, 9, welcome=False)        # hidden before the build, shown again
        await member(intros, 15, "Company 3", interests="robots, AI")
        await matching.join(GUILD, 15)
        assert await second.load_indexes() == 1
        assert {9, 15} <= set(second._indexes[GUILD])   # shown again, and new
        assert await suggested(second) == await suggested(matching)
        assert GUILD in second._history_stale and not second._refreshing   # read again only a minute later
        second._history_due[GUILD] = 0.0
        await second.suggest(GUILD, 1)
        await asyncio.gather(*second._refreshing.values())
        assert GUILD not in second._history_stale
        assert (await MatchStore(storage).snapshot(GUILD)).as_of == stored.as_of   # loaded, not built
        clock.advance(timedelta(weeks=2, seconds=1))        # both pauses end (one begun after the build)
        assert await suggested(second) == await suggested(matching)
        back = await suggested(second)
        assert any(2 in (user for user, _ in found) for found in back.values())
        assert any(6 in (user for user, _ in found) for found in back.values())
        # An erasure deletes the stored index (it holds the member's columns); the bot builds another.
        await intros.forget(GUILD, 10)
        assert await MatchStore(storage).snapshot(GUILD) is None
        assert await second.renew_snapshots() == 1
        again = await MatchStore(storage).snapshot(GUILD)
        assert again is not None and again.members == 13 and again.as_of == clock.now()
        assert await suggested(second) == await suggested(matching)   # the new index, in the old one's place
        assert await second.renew_snapshots() == 0                       # stored, and new
        # Stored with other aliases, or by other code: not used.
        await intros.set_alias(GUILD, "Company 0", "Company 1", actor_id=1)
        assert await third.load_indexes() == 0
        await intros.set_alias(GUILD, "Company 0", None, actor_id=1)
        monkeypatch.setattr(service_module.snapshots, "FORMAT", "other code")
        assert await third.load_indexes() == 0
    finally:
        for service in (first, second, third):
            await service.close()
        await worker.close()


async def test_a_members_history_read_from_their_own_rows_is_the_servers_for_them(
        intros: IntroService, matching: MatchService, storage: Storage, clock: FakeClock) -> None:
    for user_id in range(1, 9):
        await member(intros, user_id, f"Company {user_id}")
        await matching.join(GUILD, user_id)
    outcome = await matching.run_round(GUILD, clock.now())
    assert outcome is not None
    accepted = await matching.request(GUILD, 1, 8, "") if not await _met(matching, 1, 8) else None
    if accepted is not None:
        await matching.answer_request(accepted.id, 8, True)
    declined = await matching.request(GUILD, 2, 7, "") if not await _met(matching, 2, 7) else None
    if declined is not None:
        await matching.answer_request(declined.id, 7, False)
    whole = (await matching.pool(GUILD)).history
    for user_id in range(1, 9):
        own = (await matching.pool(GUILD, only={user_id})).history
        assert own.met.get(user_id) == whole.met.get(user_id)
        assert own.declined.get(user_id) == whole.declined.get(user_id)


async def _met(matching: MatchService, a: int, b: int) -> bool:
    history = (await matching.pool(GUILD, only={a})).history
    return b in history.met.get(a, frozenset())


# ---------------------------------------------------------------- delivering a round


async def test_delivery_begins_once_gives_threads_up_to_the_room_and_queues_each_group(
        intros: IntroService, matching: MatchService, storage: Storage) -> None:
    for user_id in range(1, 9):
        await member(intros, user_id, f"Company {user_id}")
        await matching.join(GUILD, user_id)
    outcome = await matching.run_round(GUILD, matching._clock.now())
    assert outcome is not None and outcome.plan.groups == 4
    started = await matching.begin_delivery(GUILD, outcome.round_id, EVERYONE,
                                            active_threads=1000 - 25 - 3)
    assert started is not None and (started.room, started.threads, started.dms) == (3, 3, 1)
    assert await matching.begin_delivery(GUILD, outcome.round_id, EVERYONE, 0) is None  # once
    assert await job_count(storage, THREAD_JOB) == 4
    ways = [way for (way,) in await storage.fetch_all("SELECT way FROM match_groups ORDER BY id")]
    assert sorted(ways) == ["dm", "thread", "thread", "thread"]
    # Discord refuses a thread (its cap): every group still waiting for one goes by DM.
    assert await matching.threads_exhausted(outcome.round_id) == 3
    ways = [way for (way,) in await storage.fetch_all("SELECT way FROM match_groups ORDER BY id")]
    assert ways == ["dm"] * 4


async def test_members_gone_before_delivery_and_undelivered_groups_count_neither_as_met_nor_in_stats(
        intros: IntroService, matching: MatchService, storage: Storage) -> None:
    for user_id in range(1, 5):
        await member(intros, user_id, f"Company {user_id}")
        await matching.join(GUILD, user_id)
    outcome = await matching.run_round(GUILD, matching._clock.now())
    assert outcome is not None
    first, second = (g.members for g in await groups_of(storage, outcome.round_id))
    gone = first[1]
    started = await matching.begin_delivery(GUILD, outcome.round_id, EVERYONE - {gone}, 0)
    assert started is not None and (started.cancelled, started.moved, started.alone, started.left) == (1, 1, 0, 1)
    groups = {g: await matching.group(g) for (g,) in await storage.fetch_all("SELECT id FROM match_groups")}
    cancelled = next(g for g in groups.values() if g is not None and g.state is GroupState.CANCELLED)
    trio = next(g for g in groups.values() if g is not None and g.state is GroupState.PLANNED)
    assert cancelled.unreached == {gone: Unreached.LEFT.value}
    assert sorted(trio.members) == sorted((*second, first[0]))
    pool = await matching.pool(GUILD)
    # Not introduced: the one who left and the partner they never met can meet in the next round.
    assert rules.why_not(pool.candidates[first[0]], pool.candidates[gone], pool.history) is None
    for user_id in trio.members:
        await matching.reached(GUILD, trio.id, user_id, Way.DM)
    await matching.group_done(trio, GroupState.DELIVERED, Way.DM)
    stats = await matching.stats(GUILD)
    assert stats.groups == 1 and stats.last is not None
    assert (stats.last.by_dm, stats.last.cancelled, stats.last.unreached) == (1, 1, {"left": 1})
    assert stats.last.finished
    assert await job_count(storage, SUMMARY_JOB) == 1   # the round is done: one summary, once
    await matching.group_done(trio, GroupState.CANCELLED, None, Ended.UNREACHED)   # no effect once done
    assert await job_count(storage, SUMMARY_JOB) == 1


async def test_a_refused_dm_is_remembered_so_that_member_gets_a_thread_first_next_time(
        intros: IntroService, matching: MatchService, storage: Storage, clock: FakeClock) -> None:
    for user_id in range(1, 7):
        await member(intros, user_id, f"Company {user_id}")
        await matching.join(GUILD, user_id)
    outcome = await matching.run_round(GUILD, clock.now())
    assert outcome is not None
    group = (await storage.fetch_one("SELECT id FROM match_groups ORDER BY id DESC LIMIT 1"))
    assert group is not None
    closed_member = (await groups_of(storage, outcome.round_id))[-1].members[0]
    # A DM to them was refused in an earlier round (matching.unreached records it so).
    await matching.store.set_dms_closed(GUILD, closed_member, clock.now())
    assert await matching.store.dms_closed(GUILD) == {closed_member}
    started = await matching.begin_delivery(GUILD, outcome.round_id, EVERYONE,
                                            active_threads=1000 - 25 - 1)
    assert started is not None and started.threads == 1
    thread_group = await storage.fetch_one("SELECT id FROM match_groups WHERE way = 'thread'")
    assert thread_group is not None and int(thread_group[0]) == int(group[0])
    await matching.reached(GUILD, int(group[0]), closed_member, Way.DM)   # a DM went through since
    assert await matching.store.dms_closed(GUILD) == set()


async def test_groups_stored_before_delivery_was_recorded_count_as_introduced_in_their_thread(
        tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    old = await Storage.open(path, migrations=load_migrations()[:7])  # before 0008_round_delivery
    await old.close()
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO match_rounds (guild_id, slot, created_at, members, total, bound) "
                   "VALUES (1, 'a', 'now', 6, 2.0, 2.0)")
        # 1: introduced (its job done); 2: its job still to run, thread made; 3: job still to run, no thread;
        # 4: no thread and no job left (its members had left).
        for thread in (77, 78, None, None):
            db.execute("INSERT INTO match_groups (round_id, guild_id, score, thread_id) VALUES (1, 1, 1.0, ?)",
                       (thread,))
        for group, state in ((1, "done"), (2, "pending"), (3, "pending")):
            db.execute("INSERT INTO outbox (kind, guild_id, dedupe_key, payload, state, due_at, created_at) "
                       "VALUES ('matching.thread', 1, ?, '{}', ?, 'now', 'now')", (f"matching.thread:{group}", state))
        for group, user in ((1, 5), (1, 6), (2, 7), (2, 8), (3, 9), (3, 10)):
            db.execute("INSERT INTO match_group_members (group_id, guild_id, user_id, company_key) "
                       "VALUES (?, 1, ?, 'c')", (group, user))
    upgraded = await Storage.open(path)
    try:
        groups = await upgraded.fetch_all("SELECT id, way, state FROM match_groups ORDER BY id")
        members = await upgraded.fetch_all("SELECT user_id, reached FROM match_group_members ORDER BY user_id")
        round_ = await upgraded.fetch_one("SELECT delivery_started_at, delivered_at FROM match_rounds")
    finally:
        await upgraded.close()
    assert [tuple(row) for row in groups] == [(1, "thread", "delivered"), (2, None, "planned"),
                                              (3, None, "planned"), (4, None, "cancelled")]
    assert [tuple(row) for row in members] == [(5, "thread"), (6, "thread"), (7, None), (8, None), (9, None),
                                               (10, None)]
    # Its delivery began with its thread jobs; it ends once their groups are done.
    assert round_ is not None and tuple(round_) == ("now", None)
