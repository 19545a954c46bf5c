"""Schedules end to end on the fake clock: a scheduled match round (once a slot, introduced, followed up), a weekly
prompt across a daylight-saving change, and every option of ``/config rounds`` with what it does."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from bot.client import KakehashiBot
from playground.clock import FakeClock
from playground.fakediscord import Channel, FakeDiscord
from tests.e2e.conftest import BotRunner, World, ask, use_channel
from tests.e2e.test_config import fields
from tests.e2e.test_matching import bot_posts, humans_in, profile, threads_in
from tests.e2e.test_prompts import wait_for_threads, wait_until_posted
from tests.e2e.test_round_rules import ready

NO_MATCHES_CHANNEL = "Set a matches channel (`/config channel purpose:matches`): rounds start private threads there."


# The fake clock starts on Monday 2026-11-02 09:00 UTC.
def utc(year: int, month: int, day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def stamp(moment: datetime, style: str = "R") -> str:
    """A moment as the bot writes it for Discord to show in each reader's own time."""
    return f"<t:{int(moment.timestamp())}:{style}>"


def move_to(clock: FakeClock, moment: datetime) -> None:
    clock.advance(moment - clock.now())


async def at(clock: FakeClock, bot: KakehashiBot, moment: datetime) -> None:
    """The clock moved to ``moment``, and the due work done: one whole pass of the outbox, schedules included."""
    move_to(clock, moment)
    await bot.outbox.run_due()


async def rounds_made(server: FakeDiscord, world: World) -> str:
    return (await ask(server, world.admin, "rounds stats")).text.split(" · ")[0]


async def rounds_shown(server: FakeDiscord, world: World, *, locale: str | None = None) -> str:
    reply = await ask(server, world.admin, "config show", locale=locale)
    return fields(reply)["Match rounds" if locale is None else "マッチングラウンド"]


def any_next(text: str, expected: str) -> str:
    """``text`` with its next round's time written NEXT where ``expected`` does not say when."""
    return re.sub(r"<t:\d+:R>", "NEXT", text) if "NEXT" in expected else text


def introduced(server: FakeDiscord, matches: Channel) -> list[Channel]:
    return [t for t in threads_in(server, matches) if bot_posts(server, t)]


# ---------------------------------------------------------------------- a scheduled round


async def test_a_scheduled_round_comes_at_its_local_time_once_a_slot_and_follows_up_after_the_set_days(
        discord_server: FakeDiscord, world: World, bot_runner: BotRunner, clock: FakeClock) -> None:
    rin, sho = pair = [discord_server.add_member(world.guild, name) for name in ("rin", "sho")]
    await bot_runner.start()
    matches = await use_channel(discord_server, world, "matches", "matches")
    await ask(discord_server, world.admin, "config timezone", name="Asia/Tokyo")
    for n, member in enumerate(pair):
        await profile(discord_server, member, f"Company {n}")
    early = await ask(discord_server, rin, "match join")
    assert early.text == ("You're in the match rounds. Rounds aren't scheduled yet; an admin sets them with "
                          "`/config rounds`.")

    slot = utc(2026, 11, 4, 9, 30)   # Wednesday 18:30 in Tokyo
    text = (await ask(discord_server, world.admin, "config rounds", weekday="wednesday", time="18:30",
                      enabled=True, follow_up_days=2)).text
    assert text == (f"Every week, Wednesday 18:30 (Asia/Tokyo); next {stamp(slot)}. No repeat pairing for 6 "
                    "rounds; follow-up after 2 days.")
    joined = await ask(discord_server, sho, "match join")
    assert joined.text == f"You're in the match rounds. The next round is {stamp(slot, 'F')}."
    discord_server.expected_pings.update(m.id for m in pair)
    bot = await ready(discord_server, bot_runner)

    await at(clock, bot, slot - timedelta(minutes=1))
    assert threads_in(discord_server, matches) == [] and await rounds_made(discord_server, world) == "Rounds: 0"

    await at(clock, bot, slot + timedelta(minutes=1))
    await discord_server.wait_until(lambda: len(introduced(discord_server, matches)) == 1, 15, "the pair introduced")
    (thread,) = threads_in(discord_server, matches)
    assert humans_in(discord_server, thread) == {rin.id, sho.id}
    (hello,) = bot_posts(discord_server, thread)
    assert set(hello.mentions) == {rin.id, sho.id} and "meet each other" in hello.text

    # Later the same evening the slot has had its round: nothing more.
    await at(clock, bot, slot + timedelta(hours=3))
    assert len(threads_in(discord_server, matches)) == 1 and await rounds_made(discord_server, world) == "Rounds: 1"
    assert stamp(slot + timedelta(weeks=1)) in await rounds_shown(discord_server, world)

    # The follow-up comes two days after the round, not the default five.
    await at(clock, bot, slot + timedelta(days=2))
    assert len(bot_posts(discord_server, thread)) == 1
    await at(clock, bot, slot + timedelta(days=2, minutes=2))
    await discord_server.wait_until(lambda: len(bot_posts(discord_server, thread)) == 2, 10, "the follow-up")
    assert bot_posts(discord_server, thread)[1].text == "How did it go? Did you meet?"

    # Switched off, the next Wednesday passes without a round.
    assert (await ask(discord_server, world.admin, "config rounds", enabled=False)).text.startswith("Off. ")
    await at(clock, bot, slot + timedelta(weeks=1, minutes=1))
    assert await rounds_made(discord_server, world) == "Rounds: 1"


async def test_rounds_switched_to_biweekly_come_two_weeks_after_the_last_round_and_every_other_week(
        discord_server: FakeDiscord, world: World, bot_runner: BotRunner, clock: FakeClock) -> None:
    bot = await bot_runner.start()   # nobody takes part: the rounds are counted, nobody is introduced
    await use_channel(discord_server, world, "matches", "matches")
    await ask(discord_server, world.admin, "config rounds", enabled=True)
    monday = utc(2026, 11, 2, 10)
    await at(clock, bot, monday + timedelta(minutes=1))
    assert await rounds_made(discord_server, world) == "Rounds: 1"
    text = (await ask(discord_server, world.admin, "config rounds", cadence="biweekly")).text
    assert text.startswith(f"Every two weeks, Monday 10:00 (UTC); next {stamp(monday + timedelta(weeks=2))}.")
    made = []
    for week in range(1, 6):
        await at(clock, bot, monday + timedelta(weeks=week, minutes=1))
        made.append(await rounds_made(discord_server, world))
    assert made == ["Rounds: 1", "Rounds: 2", "Rounds: 2", "Rounds: 3", "Rounds: 3"]


@pytest.mark.parametrize(("first", "then", "next_round"), [
    # Monday 09:00: the next Monday 10:00 is an hour away, as it is for weekly and monthly rounds.
    ({"cadence": "biweekly", "enabled": True}, None, utc(2026, 11, 2, 10)),
    # No round was ever made: the first Monday of November (today, 10:00) is the first monthly one.
    ({"enabled": True}, {"cadence": "monthly"}, utc(2026, 11, 2, 10)),
], ids=["biweekly-switched-on", "weekly-made-monthly"])
async def test_rounds_never_made_start_with_the_next_slot_of_any_cadence(
        discord_server: FakeDiscord, world: World, running_bot: KakehashiBot, first: dict[str, object],
        then: dict[str, object] | None, next_round: datetime) -> None:
    reply = await ask(discord_server, world.admin, "config rounds", **first)
    if then is not None:
        reply = await ask(discord_server, world.admin, "config rounds", **then)
    assert f"next {stamp(next_round)}." in reply.text


# ---------------------------------------------------------------------- a weekly prompt across a DST change


@pytest.mark.parametrize(("zone", "before", "after", "local"), [
    # The US springs forward on 2027-03-14: 09:00 is 14:00 UTC, then 13:00 UTC.
    ("America/New_York", utc(2027, 3, 8, 14), utc(2027, 3, 15, 13), "EST → EDT"),
    # Europe falls back on 2027-10-31: 09:00 is 07:00 UTC, then 08:00 UTC.
    ("Europe/Berlin", utc(2027, 10, 25, 7), utc(2027, 11, 1, 8), "CEST → CET"),
], ids=["new-york-spring-forward", "berlin-fall-back"])
async def test_a_weekly_prompt_posts_at_the_same_local_time_across_a_daylight_saving_change(
        discord_server: FakeDiscord, world: World, bot_runner: BotRunner, clock: FakeClock, zone: str,
        before: datetime, after: datetime, local: str) -> None:
    move_to(clock, before - timedelta(days=1))
    bot = await bot_runner.start()
    forum = await use_channel(discord_server, world, "prompts", "discussions")
    await ask(discord_server, world.admin, "config timezone", name=zone)
    text = (await ask(discord_server, world.admin, "config prompts", weekday="monday", time="09:00",
                      enabled=True)).text
    assert text == f"Discussion prompts: every Monday at 09:00 ({zone}). The next one comes {stamp(before, 'F')}."

    for week, slot in enumerate((before, after), start=1):
        await at(clock, bot, slot - timedelta(minutes=1))   # 08:59 there
        assert len(discord_server.threads(forum)) == week - 1, f"posted before 09:00 {zone} ({local})"
        await at(clock, bot, slot + timedelta(minutes=1))   # 09:01 there
        await wait_for_threads(discord_server, forum, week)
        await wait_until_posted(discord_server, bot_runner, week)
        if week == 1:
            schedule = fields(await ask(discord_server, world.admin, "config show"))["Discussion prompts"]
            assert schedule == f"Every Monday at 09:00 ({zone}); next: {stamp(after)}"
    assert len(discord_server.threads(forum)) == 2


# ---------------------------------------------------------------------- /config rounds


async def test_each_config_rounds_option_changes_what_config_show_reports(
        discord_server: FakeDiscord, world: World, bot_runner: BotRunner) -> None:
    await bot_runner.start()
    assert await rounds_shown(discord_server, world) == (
        "Off. Rounds run by hand (`/rounds run`) keep no repeat pairing for 6 rounds and follow up after 5 days.")
    reply = await ask(discord_server, world.admin, "config rounds", enabled=True)
    monday = utc(2026, 11, 2, 10)   # in an hour
    assert reply.text.splitlines() == [
        f"Every week, Monday 10:00 (UTC); next {stamp(monday)}. No repeat pairing for 6 rounds; follow-up after "
        "5 days.", NO_MATCHES_CHANNEL]
    await use_channel(discord_server, world, "matches", "matches")
    steps: list[tuple[dict[str, object], str]] = [
        ({"weekday": "friday"},
         f"Every week, Friday 10:00 (UTC); next {stamp(utc(2026, 11, 6, 10))}. No repeat pairing for 6 rounds; "
         "follow-up after 5 days."),
        ({"time": "１８：３０"},   # as a Japanese keyboard types it
         f"Every week, Friday 18:30 (UTC); next {stamp(utc(2026, 11, 6, 18, 30))}. No repeat pairing for 6 "
         "rounds; follow-up after 5 days."),
        ({"no_repeat_rounds": 3},
         f"Every week, Friday 18:30 (UTC); next {stamp(utc(2026, 11, 6, 18, 30))}. No repeat pairing for 3 "
         "rounds; follow-up after 5 days."),
        ({"follow_up_days": 28},
         f"Every week, Friday 18:30 (UTC); next {stamp(utc(2026, 11, 6, 18, 30))}. No repeat pairing for 3 "
         "rounds; follow-up after 28 days."),
        # The first Wednesday of the month; when exactly, test_rounds_never_made_start_with_the_next_slot_of_any_cadence
        # says (NEXT stands for any time).
        ({"cadence": "monthly", "weekday": "wednesday"},
         "Monthly, Wednesday 18:30 (UTC); next NEXT. No repeat pairing for 3 rounds; follow-up after 28 days."),
    ]
    for options, expected in steps:
        answer = await ask(discord_server, world.admin, "config rounds", **options)
        assert any_next(answer.text, expected) == expected, options
        assert any_next(await rounds_shown(discord_server, world), expected) == expected, options
    again = await ask(discord_server, world.admin, "config rounds", cadence="monthly")
    assert any_next(again.text, "NEXT").splitlines() == ["That is the schedule already.", steps[-1][1]]
    japanese = await rounds_shown(discord_server, world, locale="ja")
    assert "同じ組み合わせは3ラウンド空けます。フォローアップは28日後。" in japanese
    off = "Off. Rounds run by hand (`/rounds run`) keep no repeat pairing for 3 rounds and follow up after 28 days."
    assert (await ask(discord_server, world.admin, "config rounds", enabled=False)).text == off
    assert await rounds_shown(discord_server, world) == off
    # Switched on again, everything chosen before is still there.
    back = await ask(discord_server, world.admin, "config rounds", enabled=True)
    assert any_next(back.text, "NEXT") == steps[-1][1]


@pytest.mark.parametrize(("options", "error"), [
    ({"time": "25:00"}, "“25:00” is not a time I understand. Use the 24-hour clock, e.g. 09:00 or 18:30."),
    ({"time": "@everyone"}, "“@everyone” is not a time I understand."),
    ({"no_repeat_rounds": 0}, "No-repeat rounds must be between 1 and 52."),
    ({"no_repeat_rounds": 53}, "No-repeat rounds must be between 1 and 52."),
    ({"follow_up_days": 0}, "Follow-up days must be between 1 and 28."),
    ({"follow_up_days": 29}, "Follow-up days must be between 1 and 28."),
    ({"cadence": "daily", "raw": True}, "One of the values you gave isn't valid. Please pick it from the list."),
    ({"weekday": "someday", "raw": True}, "“someday” is not a day of the week. Pick one from the list."),
], ids=["hour-25", "mention", "repeat-0", "repeat-53", "follow-up-0", "follow-up-29", "cadence", "weekday"])
async def test_a_bad_config_rounds_value_gets_a_clear_private_error_and_changes_nothing(
        discord_server: FakeDiscord, world: World, running_bot: KakehashiBot, options: dict[str, object],
        error: str) -> None:
    await ask(discord_server, world.admin, "config rounds", enabled=True)
    before = await ask(discord_server, world.admin, "config show")
    reply = await ask(discord_server, world.admin, "config rounds", enabled=False, **options)
    assert reply.text.startswith(error) and reply.mentions == [] and not reply.mention_everyone
    after = await ask(discord_server, world.admin, "config show")
    assert fields(after) == fields(before)   # still on, and nothing new in the recent changes


async def test_a_bad_config_rounds_value_is_explained_in_japanese(
        discord_server: FakeDiscord, world: World, running_bot: KakehashiBot) -> None:
    reply = await ask(discord_server, world.admin, "config rounds", no_repeat_rounds=0, locale="ja")
    assert reply.text == "再マッチングまでのラウンド数は1〜52で指定してください。"


async def test_a_rounds_change_is_named_in_the_recent_changes(
        discord_server: FakeDiscord, world: World, running_bot: KakehashiBot) -> None:
    await ask(discord_server, world.admin, "config rounds", enabled=True, no_repeat_rounds=4)
    for locale in (None, "ja"):
        history = fields(await ask(discord_server, world.admin, "config show", locale=locale))
        line = history["Recent changes" if locale is None else "最近の変更"]
        told = "no repeat pairing for 4 rounds" if locale is None else "同じ組み合わせは4ラウンド空ける"
        named = "match round schedule" if locale is None else "マッチングラウンドのスケジュール"
        assert told in line and named in line and "config.setting" not in line, line
