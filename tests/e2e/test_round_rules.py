"""Who a round or a suggestion brings together, end to end: a pair kept apart for ``no_repeat_rounds`` rounds and
paired again after, a member who left the rounds, and members who replied in the same prompt thread."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import timedelta

from bot.client import KakehashiBot
from playground.clock import FakeClock
from playground.fakediscord import Channel, FakeDiscord, Member, Message
from tests.e2e.conftest import BotRunner, World, ask, use_channel
from tests.e2e.test_matching import bot_posts, humans_in, joined_pair, profile, threads_in
from tests.e2e.test_prompts import wait_for_threads, wait_until_posted

NOBODY_ELIGIBLE = "This match round, nobody was eligible to meet you"
SAME_THREAD = "You both replied in the same discussion"
SAME_THREAD_JA = "お二人とも同じディスカッションに返信しています"


async def ready(server: FakeDiscord, bot_runner: BotRunner) -> KakehashiBot:
    """The running bot once discord.py calls it ready, about 2 s after it logged in (it waits for the servers'
    member lists). A round's delivery waits for that: before, a minute's retry, on a clock the test moves."""
    bot = bot_runner.bot
    assert bot is not None
    await server.wait_until(bot.is_ready, 10, "discord.py to be ready")
    return bot


async def introduced_groups(server: FakeDiscord, matches: Channel, count: int) -> list[set[int]]:
    """The members of each round thread once ``count`` of them have the bot's introduction."""
    await server.wait_until(lambda: len([t for t in threads_in(server, matches) if bot_posts(server, t)]) >= count,
                            15, f"{count} introduced group(s)")
    return [humans_in(server, t) for t in threads_in(server, matches)]


def told(server: FakeDiscord, member: Member, words: str) -> list[Message]:
    return [m for m in server.dms(member.user) if words in m.content]


async def next_round(server: FakeDiscord, world: World, clock: FakeClock) -> str:
    """A day later, a round by hand; the admin's answer."""
    clock.advance(timedelta(days=1))
    return (await ask(server, world.admin, "rounds run")).text


# ---------------------------------------------------------------------- no repeat pairing


async def test_a_pair_is_kept_apart_for_no_repeat_rounds_and_paired_again_after(
        discord_server: FakeDiscord, world: World, bot_runner: BotRunner, clock: FakeClock) -> None:
    pair, matches = await joined_pair(discord_server, world, bot_runner, ("rin", "sho"))
    rin, sho = pair
    await ask(discord_server, world.admin, "config rounds", no_repeat_rounds=2)
    await ready(discord_server, bot_runner)

    # They are each other's only possible partner.
    first = (await ask(discord_server, world.admin, "rounds run")).text
    assert "Taking part: 2 · pairs: 1" in first
    assert await introduced_groups(discord_server, matches, 1) == [{rin.id, sho.id}]

    for _ in range(2):   # the two rounds after: apart, and each told why they were not placed
        text = await next_round(discord_server, world, clock)
        assert "Taking part: 2 · pairs: 0 · trios: 0 · placed: 0" in text
        assert "Not placed (2)" in text and "nobody eligible to meet them" in text
    await discord_server.wait_until(lambda: all(len(told(discord_server, m, NOBODY_ELIGIBLE)) == 2 for m in pair),
                                    10, "both told twice that nobody was eligible")
    assert len(threads_in(discord_server, matches)) == 1
    # Two rounds on, the window has passed: a suggestion offers them to each other again ...
    suggested = await ask(discord_server, rin, "match suggest")
    assert suggested.custom_ids == [f"match:ask:{world.guild.id}:{sho.id}"]

    # ... and the next round pairs them.
    assert "Taking part: 2 · pairs: 1" in await next_round(discord_server, world, clock)
    groups = await introduced_groups(discord_server, matches, 2)
    assert groups == [{rin.id, sho.id}, {rin.id, sho.id}]


async def test_a_request_within_the_no_repeat_window_is_refused_as_met_recently(
        discord_server: FakeDiscord, world: World, bot_runner: BotRunner) -> None:
    (rin, sho), matches = await joined_pair(discord_server, world, bot_runner, ("rin", "sho"))
    await ready(discord_server, bot_runner)
    await ask(discord_server, world.admin, "rounds run")
    await introduced_groups(discord_server, matches, 1)
    refused = await ask(discord_server, rin, "match request", member=sho)
    assert refused.text == "You were introduced to each other recently."
    refused_ja = await ask(discord_server, sho, "match request", member=rin, locale="ja")
    assert refused_ja.text == "最近お互いに紹介されたばかりです。"
    nobody = await ask(discord_server, rin, "match suggest")
    assert nobody.custom_ids == [] and "Nobody to suggest right now" in nobody.text
    assert discord_server.dms(sho.user) == [] and discord_server.dms(rin.user) == []   # nothing was asked


# ---------------------------------------------------------------------- /match leave


async def test_members_who_leave_the_rounds_are_told_in_their_language_and_left_out_of_the_next_round(
        discord_server: FakeDiscord, world: World, bot_runner: BotRunner) -> None:
    pia, quin = stay = [discord_server.add_member(world.guild, name) for name in ("pia", "quin")]
    ben, chie = world.member, world.ja_member
    await bot_runner.start()
    matches = await use_channel(discord_server, world, "matches", "matches")
    for n, member in enumerate((pia, quin, ben, chie)):
        await profile(discord_server, member, f"Company {n}")
        await ask(discord_server, member, "match join")
    preview = await ask(discord_server, world.admin, "rounds run", dry_run=True)
    assert "Taking part: 4 · pairs: 2" in preview.text

    left = await ask(discord_server, ben, "match leave")
    assert left.text == "You've left the match rounds. You can still use `/match suggest` and requests."
    left_ja = await ask(discord_server, chie, "match leave")   # her Discord client is in Japanese
    assert left_ja.text == "マッチングラウンドから抜けました。`/match suggest` と紹介リクエストは引き続き使えます。"

    discord_server.expected_pings.update(m.id for m in stay)
    await ready(discord_server, bot_runner)
    done = await ask(discord_server, world.admin, "rounds run")
    assert "Taking part: 2 · pairs: 1" in done.text and "Not placed" not in done.text
    assert await introduced_groups(discord_server, matches, 1) == [{pia.id, quin.id}]
    # Not placed is not the same as not taking part: neither is told anything about the round.
    assert discord_server.dms(ben.user) == [] and discord_server.dms(chie.user) == []
    # What the answer promised: suggestions still work for them.
    suggested = await ask(discord_server, ben, "match suggest")
    assert f"match:ask:{world.guild.id}:{chie.id}" in suggested.custom_ids
    # And /match join brings one back.
    await ask(discord_server, ben, "match join")
    again = await ask(discord_server, world.admin, "rounds run", dry_run=True)
    assert "Taking part: 3" in again.text


# ---------------------------------------------------------------------- prompt-thread co-participants


async def prompt_thread(server: FakeDiscord, world: World, bot_runner: BotRunner) -> Channel:
    """A discussion prompt posted in the forum, its essay complete; its thread."""
    forum = await use_channel(server, world, "prompts", "discussions")
    await ask(server, world.admin, "prompts post")
    (thread,) = await wait_for_threads(server, forum, 1)
    await wait_until_posted(server, bot_runner, 1)
    return thread


async def reply_in(server: FakeDiscord, bot_runner: BotRunner, thread: Channel, members: list[Member]) -> None:
    for member in members:
        await server.send_message(member, thread, f"{member.user.username} thinks so too")

    def participants() -> int:
        with sqlite3.connect(bot_runner.database_path) as db:
            return int(db.execute("SELECT participants FROM prompt_posts").fetchone()[0])
    await server.wait_until(lambda: participants() == len(members), 5, "the replies to be counted")


def suggested_names(reply: Message) -> list[str]:
    (embed,) = reply.embeds
    return [str(f["name"]) for f in embed["fields"]]


def reasons_for(reply: Message, name: str) -> str:
    (embed,) = reply.embeds
    return next(str(f["value"]) for f in embed["fields"] if f["name"] == name)


async def five_and_a_prompt(discord_server: FakeDiscord, world: World,
                            bot_runner: BotRunner) -> tuple[Member, list[Member], Member, Channel]:
    """chie, olga, omar, otto and kai with profiles of five companies, and a posted prompt's thread. Equal
    scores are ordered by user id: kai, added last, comes after the others."""
    others = [discord_server.add_member(world.guild, name) for name in ("olga", "omar", "otto")]
    kai = discord_server.add_member(world.guild, "kai")
    chie = world.ja_member
    await bot_runner.start()
    for n, member in enumerate((chie, *others, kai)):
        await profile(discord_server, member, f"Company {n}")
    return chie, others, kai, await prompt_thread(discord_server, world, bot_runner)


async def test_a_member_who_replied_in_the_same_prompt_thread_is_suggested_first_with_that_reason(
        discord_server: FakeDiscord, world: World, bot_runner: BotRunner) -> None:
    # kai would come after the others (and out of the three suggested) but for the thread shared with chie.
    chie, others, kai, thread = await five_and_a_prompt(discord_server, world, bot_runner)
    await reply_in(discord_server, bot_runner, thread, [chie, kai])

    for_chie = await ask(discord_server, chie, "match suggest")   # in Japanese, as her client is
    assert suggested_names(for_chie) == ["kai", "olga", "omar"]
    assert SAME_THREAD_JA in reasons_for(for_chie, "kai")
    assert all(SAME_THREAD_JA not in reasons_for(for_chie, name) for name in ("olga", "omar"))
    for_kai = await ask(discord_server, kai, "match suggest")
    assert suggested_names(for_kai)[0] == "chie"
    assert SAME_THREAD in reasons_for(for_kai, "chie")
    assert all(SAME_THREAD not in reasons_for(for_kai, name) for name in suggested_names(for_kai)[1:])
    # Someone who did not reply there is given no such reason.
    for_olga = await ask(discord_server, others[0], "match suggest")
    assert SAME_THREAD not in for_olga.text


async def test_a_reply_in_a_prompt_thread_after_a_suggestion_counts_at_the_next_suggestion(
        discord_server: FakeDiscord, world: World, bot_runner: BotRunner) -> None:
    chie, _, kai, thread = await five_and_a_prompt(discord_server, world, bot_runner)
    before = await ask(discord_server, chie, "match suggest")
    assert suggested_names(before) == ["olga", "omar", "otto"]
    await reply_in(discord_server, bot_runner, thread, [chie, kai])
    # The index may answer from a copy of the history a moment old; a moment, not until the next round.
    firsts = []
    for _ in range(6):
        firsts.append(suggested_names(await ask(discord_server, chie, "match suggest"))[0])
        if firsts[-1] == "kai":
            break
        await asyncio.sleep(0.25)
    assert firsts[-1] == "kai", firsts
