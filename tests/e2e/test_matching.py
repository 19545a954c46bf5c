"""Matching end to end: suggestions, double opt-in requests (DM or private thread), rounds with their private
threads (also across a SIGKILL), follow-ups and bad input, as Discord would have received them."""

from __future__ import annotations

import asyncio
import sqlite3
import struct
from datetime import timedelta
from pathlib import Path

import pytest

from bot.client import KakehashiBot
from playground.clock import FakeClock
from playground.fakediscord import Channel, ChannelType, FakeDiscord, Member, Message
from tests.e2e.conftest import BotRunner, World, ask, use_channel
from tests.e2e.test_intros import database_bytes
from tests.e2e.test_prompts import launch

GROUP_MARKER = " · #"


async def _settle() -> None:
    await asyncio.sleep(0.2)


async def profile(server: FakeDiscord, member: Member, company: str, *,
                  languages: tuple[str, ...] = ("en", "ja"), **about: str) -> None:
    """Step 1 of the profile, as the member fills it in, then the languages they speak (the menu under
    their private card)."""
    opened = await server.slash(member, "intro edit")
    await opened.modal()
    reply = await (await server.submit(opened, {"company": company, "role": "Engineer", **about})).reply()
    assert reply.ephemeral
    await _settle()
    chosen = await server.select(member, reply, f"intro:languages:{member.guild.id}", list(languages))
    await chosen.response()
    await _settle()


async def joined_pair(server: FakeDiscord, world: World, bot_runner: BotRunner,
                      names: tuple[str, str]) -> tuple[list[Member], Channel]:
    """Two members of two companies in the rounds of a running bot, and the matches channel; they may be pinged."""
    pair = [server.add_member(world.guild, name) for name in names]
    await bot_runner.start()
    matches = await use_channel(server, world, "matches", "matches")
    for n, member in enumerate(pair):
        await profile(server, member, f"Company {n}")
        await ask(server, member, "match join")
    server.expected_pings.update(m.id for m in pair)
    return pair, matches


def threads_in(server: FakeDiscord, channel: Channel) -> list[Channel]:
    return [t for t in server.threads(channel) if t.type == ChannelType.PRIVATE_THREAD]


def humans_in(server: FakeDiscord, thread: Channel) -> set[int]:
    return set(thread.thread_members) - {server.bot_user.id}


def bot_posts(server: FakeDiscord, channel: Channel) -> list[Message]:
    return [m for m in server.channel_messages(channel) if m.author.id == server.bot_user.id and not m.ephemeral]


async def community(server: FakeDiscord, guild_members: list[tuple[str, str]], world: World) -> list[Member]:
    """Members present before the bot starts (their profiles come later, through the bot)."""
    return [server.add_member(world.guild, name) for name, _ in guild_members]


# ---------------------------------------------------------------------- the rule, end to end


async def test_same_company_under_two_spellings_and_an_avoided_company_are_never_suggested_nor_paired(
        discord_server: FakeDiscord, world: World, bot_runner: BotRunner) -> None:
    spec = [("saki", "Sony"), ("sota", "SONY Corporation"), ("oki", "Olympus"), ("ava", "Canon"),
            ("nao", "Nikon"), ("rei", "Ricoh")]
    members = await community(discord_server, spec, world)
    await bot_runner.start()
    matches = await use_channel(discord_server, world, "matches", "matches")
    for member, (_, company) in zip(members, spec, strict=True):
        await profile(discord_server, member, company)
        await ask(discord_server, member, "match join")
    saki, sota, oki, ava = members[:4]
    reply = await ask(discord_server, ava, "match avoid", company="Olympus Corp.")
    assert reply.ephemeral and "Olympus Corp." in reply.text
    # A list in Japanese is written with "、" (the member's client is in Japanese).
    listed = await ask(discord_server, ava, "match avoid", company="Pentax", locale="ja")
    assert "リスト：Olympus Corp.、Pentax" in listed.text
    await ask(discord_server, ava, "match unavoid", company="Pentax")
    for asker, never in ((saki, sota), (sota, saki), (ava, oki), (oki, ava)):
        suggested = await ask(discord_server, asker, "match suggest")
        assert suggested.ephemeral
        assert f"match:ask:{world.guild.id}:{never.id}" not in suggested.custom_ids
        assert suggested.custom_ids  # somebody else is suggested
    for user in (saki, sota, oki, ava, *members[4:]):
        discord_server.expected_pings.add(user.id)
    await ask(discord_server, world.admin, "rounds run")
    await discord_server.wait_until(lambda: len(threads_in(discord_server, matches)) == 3
                                    and all(bot_posts(discord_server, t) for t in threads_in(discord_server, matches)),
                                    15, "three introduced groups")
    for thread in threads_in(discord_server, matches):
        together = humans_in(discord_server, thread)
        assert {saki.id, sota.id} - together and {ava.id, oki.id} - together
    assert sorted(len(humans_in(discord_server, t)) for t in threads_in(discord_server, matches)) == [2, 2, 2]


# ---------------------------------------------------------------------- double opt-in requests


async def test_an_accepted_request_opens_one_private_thread_with_both_even_after_a_restart(
        discord_server: FakeDiscord, world: World, bot_runner: BotRunner) -> None:
    await bot_runner.start()
    matches = await use_channel(discord_server, world, "matches", "matches")
    ben, chie = world.member, world.ja_member
    await profile(discord_server, ben, "Sony")
    await profile(discord_server, chie, "Olympus")
    reply = await ask(discord_server, ben, "match request", member=chie, note="Supply chains in Vietnam?")
    assert reply.ephemeral and "chie" in reply.text
    await discord_server.wait_until(lambda: bool(discord_server.dms(chie)), 5, "the request by DM")
    (request,) = discord_server.dms(chie)
    assert "Supply chains in Vietnam?" in request.text and "Sony" in request.text  # the requester's card
    # In chie's language (her client's, from her last interaction), though the server speaks English.
    assert "あなたへの紹介を希望しています" in request.text and "ひとこと：Supply chains in Vietnam?" in request.text
    (accept, decline) = request.custom_ids
    assert accept.startswith("match:accept:") and decline.startswith("match:decline:")

    await bot_runner.restart()
    discord_server.expected_pings.update({ben.id, chie.id})
    await (await discord_server.click(chie, request, accept)).response()
    await discord_server.wait_until(lambda: bool(threads_in(discord_server, matches))
                                    and bool(bot_posts(discord_server, threads_in(discord_server, matches)[0])),
                                    10, "the introduction thread")
    (thread,) = threads_in(discord_server, matches)
    assert humans_in(discord_server, thread) == {ben.id, chie.id}
    (hello,) = bot_posts(discord_server, thread)
    assert set(hello.mentions) == {ben.id, chie.id} and len(hello.embeds) == 2
    assert "To get you started:" in hello.text or "話のきっかけに" in hello.text
    await discord_server.wait_until(lambda: "match:accept" not in " ".join(discord_server.dms(chie)[0].custom_ids),
                                    5, "the request to lose its buttons")
    assert matches.mention in discord_server.dms(chie)[0].text and len(threads_in(discord_server, matches)) == 1


async def test_a_declined_request_tells_the_requester_only_not_this_time(
        discord_server: FakeDiscord, world: World, running_bot: KakehashiBot) -> None:
    await use_channel(discord_server, world, "matches", "matches")
    ben, chie = world.member, world.ja_member
    await profile(discord_server, ben, "Sony")
    await profile(discord_server, chie, "Olympus")
    await ask(discord_server, ben, "match request", member=chie)
    await discord_server.wait_until(lambda: bool(discord_server.dms(chie)), 5, "the request by DM")
    (request,) = discord_server.dms(chie)
    before = len(discord_server.dms(ben))
    await (await discord_server.click(chie, request, request.custom_ids[1])).response()
    await discord_server.wait_until(lambda: len(discord_server.dms(ben)) > before, 5, "the requester to hear")
    (heard,) = discord_server.dms(ben)[before:]
    assert "not accepted this time" in heard.text and "chie" not in heard.text.lower()
    # And the pair stays apart, without a reason given.
    again = await ask(discord_server, ben, "match request", member=chie)
    assert "isn't possible right now" in again.text


async def test_closed_dms_fall_back_to_a_private_thread_with_only_them(
        discord_server: FakeDiscord, world: World, bot_runner: BotRunner) -> None:
    shy = discord_server.add_member(world.guild, "shy", dm_open=False)
    await bot_runner.start()
    matches = await use_channel(discord_server, world, "matches", "matches")
    ben = world.member
    await profile(discord_server, ben, "Sony")
    await profile(discord_server, shy, "Olympus")
    discord_server.expected_pings.add(shy.id)
    reply = await ask(discord_server, ben, "match request", member=shy)
    assert "private thread" in reply.text
    (thread,) = threads_in(discord_server, matches)
    assert humans_in(discord_server, thread) == {shy.id}
    (asked,) = bot_posts(discord_server, thread)
    assert asked.mentions == [shy.id]
    discord_server.expected_pings.add(ben.id)
    await (await discord_server.click(shy, asked, asked.custom_ids[0])).response()

    def introduced_thread() -> Channel | None:
        return next((t for t in threads_in(discord_server, matches)
                     if t.id != thread.id and bot_posts(discord_server, t)), None)

    await discord_server.wait_until(lambda: introduced_thread() is not None, 10, "the introduction thread")
    introduced = introduced_thread()
    assert introduced is not None
    assert humans_in(discord_server, introduced) == {ben.id, shy.id}


@pytest.mark.parametrize(("dm_open", "held", "let_through"), [
    (True, r"/users/@me/channels", 0),      # opening the DM: nothing sent yet
    (True, r"/channels/\d+/messages", 0),   # the DM itself: sent, not recorded
    (False, r"/channels/\d+/messages", 1),  # after the refused DM, the question in the private thread
], ids=["before-the-dm", "dm-sent", "thread-question-sent"])
async def test_a_bot_killed_while_delivering_a_request_delivers_it_exactly_once(
        discord_server: FakeDiscord, world: World, tmp_path: Path, dm_open: bool, held: str,
        let_through: int) -> None:
    tomo = discord_server.add_member(world.guild, "tomo", dm_open=dm_open)
    ben = world.member
    database = tmp_path / "kakehashi.db"
    process = await launch(discord_server, database)
    try:
        matches = await use_channel(discord_server, world, "matches", "matches")
        await profile(discord_server, ben, "Sony")
        await profile(discord_server, tomo, "Olympus")
        discord_server.expected_pings.add(tomo.id)
        hold = discord_server.hold("POST", held, after=let_through)
        await discord_server.slash(ben, "match request", member=tomo, note="Hello!")
        await hold.reached(20)
        process.kill()  # SIGKILL: the request is stored, its delivery cut short at the held call
        await process.wait()
        hold.release()

        process = await launch(discord_server, database)

        def asked() -> list[Message]:
            if dm_open:
                return discord_server.dms(tomo)
            return [m for t in threads_in(discord_server, matches) for m in bot_posts(discord_server, t)]

        def delivery() -> list[tuple[int | None, int | None]]:
            with sqlite3.connect(database) as db:
                return db.execute("SELECT channel_id, message_id FROM match_requests").fetchall()

        await discord_server.wait_until(lambda: delivery()[0][1] is not None, 30, "the delivery recorded")
        await asyncio.sleep(1.0)  # anything sent twice would arrive now
        (question,) = asked()
        assert "Hello!" in question.text and question.custom_ids[0].startswith("match:accept:")
        assert len(threads_in(discord_server, matches)) == (0 if dm_open else 1)
        assert delivery() == [(question.channel.id, question.id)]  # so expiry and erasure reach it
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()
    assert discord_server.unhandled_calls() == []


async def test_suggest_hides_a_company_kept_for_matches_and_its_button_and_the_menu_open_the_request(
        discord_server: FakeDiscord, world: World, running_bot: KakehashiBot) -> None:
    await use_channel(discord_server, world, "matches", "matches")
    ben, chie = world.member, world.ja_member
    await profile(discord_server, ben, "Sony")
    await profile(discord_server, chie, "Zuiko Secret Labs")
    opened = await discord_server.slash(chie, "intro show")
    await opened.reply()
    await running_bot.intros.set_visibility(world.guild.id, chie.id, "matches")  # as her select would
    suggested = await ask(discord_server, ben, "match suggest")
    assert "chie" in suggested.text and "Zuiko" not in suggested.text
    button = f"match:ask:{world.guild.id}:{chie.id}"
    assert suggested.custom_ids == [button]
    await _settle()
    modal = await (await discord_server.click(ben, suggested, button)).modal()
    assert modal["custom_id"].startswith(f"match:note:{world.guild.id}:{ben.id}:{chie.id}:")
    opened = await discord_server.user_command(ben, "Suggest an intro to…", chie)
    done = await (await discord_server.submit(opened, {"note": "Hello!"})).reply()
    assert done.ephemeral and "sent your request" in done.text
    await discord_server.wait_until(lambda: bool(discord_server.dms(chie)), 5, "the request by DM")
    assert "Hello!" in discord_server.dms(chie)[0].text


# ---------------------------------------------------------------------- rounds


async def seven(discord_server: FakeDiscord, world: World) -> list[Member]:
    return [discord_server.add_member(world.guild, f"m{n}") for n in range(7)]


async def test_a_round_of_seven_makes_two_pairs_and_a_trio_and_follows_up(
        discord_server: FakeDiscord, world: World, bot_runner: BotRunner, clock: FakeClock) -> None:
    members = await seven(discord_server, world)
    await bot_runner.start()
    matches = await use_channel(discord_server, world, "matches", "matches")
    for n, member in enumerate(members):
        await profile(discord_server, member, f"Company {n}")
        await ask(discord_server, member, "match join")
    preview = await ask(discord_server, world.admin, "rounds run", dry_run=True)
    assert "Taking part: 7" in preview.text and "trios: 1" in preview.text
    assert threads_in(discord_server, matches) == [] and all(not discord_server.dms(m.user) for m in members)
    discord_server.expected_pings.update(m.id for m in members)
    done = await ask(discord_server, world.admin, "rounds run")
    assert "pairs: 2" in done.text
    await discord_server.wait_until(
        lambda: len(threads_in(discord_server, matches)) == 3
        and all(bot_posts(discord_server, t) for t in threads_in(discord_server, matches)), 15, "three threads")
    groups = [humans_in(discord_server, t) for t in threads_in(discord_server, matches)]
    assert sorted(len(g) for g in groups) == [2, 2, 3]
    assert set().union(*groups) == {m.id for m in members}

    await _settle()
    clock.advance(timedelta(days=5, minutes=1))
    bot_runner.bot.outbox.kick()  # type: ignore[union-attr]
    await discord_server.wait_until(
        lambda: all(len(bot_posts(discord_server, t)) == 2 for t in threads_in(discord_server, matches)), 10,
        "the follow-ups")
    thread = threads_in(discord_server, matches)[0]
    follow_up = bot_posts(discord_server, thread)[1]
    assert [c.rsplit(":", 1)[1] for c in follow_up.custom_ids] == ["met", "not_yet", "skip"]
    someone = next(m for m in members if m.id in humans_in(discord_server, thread))
    thanks = await (await discord_server.click(someone, follow_up, follow_up.custom_ids[0])).reply()
    assert thanks.ephemeral
    stats = await ask(discord_server, world.admin, "rounds stats")
    assert "Rounds: 1" in stats.text and "meetings reported: 1" in stats.text
    assert "company pairs bridged: 5" in stats.text   # 1 + 1 + 3 pairs of seven companies
    overview = await ask(discord_server, world.admin, "stats")
    assert "1 rounds · 1 meetings · 5 company pairs bridged" in overview.text

    # The member who reported the meeting erases their data: what the round achieved stays, naming nobody.
    confirm = await ask(discord_server, someone, "intro delete")
    await _settle()
    done = await discord_server.click(someone, confirm, f"intro:forget:{world.guild.id}:yes")
    await discord_server.wait_until(lambda: "Done" in confirm.text, 10, "the deletion")
    await done.response()
    after = await ask(discord_server, world.admin, "rounds stats")
    assert "groups: 3 · meetings reported: 1 · company pairs bridged: 5" in after.text
    assert "1 rounds · 1 meetings · 5 company pairs bridged" in (await ask(discord_server, world.admin, "stats")).text
    raw = database_bytes(bot_runner.database_path)
    for trace in (str(someone.id).encode(), struct.pack(">q", someone.id)):
        assert trace not in raw, trace


async def test_a_bot_killed_after_two_of_three_threads_finishes_with_exactly_three(
        discord_server: FakeDiscord, world: World, tmp_path: Path) -> None:
    members = await seven(discord_server, world)
    matches = world.guild.channel_named("matches")
    database = tmp_path / "kakehashi.db"
    process = await launch(discord_server, database)
    try:
        await use_channel(discord_server, world, "matches", "matches")
        for n, member in enumerate(members):
            await profile(discord_server, member, f"Company {n}")
            await ask(discord_server, member, "match join")
        discord_server.expected_pings.update(m.id for m in members)
        hold = discord_server.hold("POST", f"/channels/{matches.id}/threads", after=2)
        await discord_server.slash(world.admin, "rounds run")
        await hold.reached(20)
        process.kill()  # SIGKILL, right after Discord created the third thread
        await process.wait()
        hold.release()
        assert len(threads_in(discord_server, matches)) == 3

        process = await launch(discord_server, database)
        await discord_server.wait_until(
            lambda: all(bot_posts(discord_server, t) for t in threads_in(discord_server, matches)), 30,
            "every group introduced")
        await asyncio.sleep(1.0)  # anything done twice would arrive now
        threads = threads_in(discord_server, matches)
        assert len(threads) == 3
        assert [len(bot_posts(discord_server, t)) for t in threads] == [1, 1, 1]
        groups = [humans_in(discord_server, t) for t in threads]
        assert sorted(len(g) for g in groups) == [2, 2, 3] and set().union(*groups) == {m.id for m in members}
        with sqlite3.connect(database) as db:
            stored = sorted(row[0] for row in db.execute("SELECT thread_id FROM match_groups"))
        assert stored == sorted(t.id for t in threads)
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()
    assert discord_server.unhandled_calls() == []


async def test_a_follow_up_cut_short_after_discord_posted_it_is_not_posted_again(
        discord_server: FakeDiscord, world: World, bot_runner: BotRunner, clock: FakeClock) -> None:
    _, matches = await joined_pair(discord_server, world, bot_runner, ("m0", "m1"))
    await ask(discord_server, world.admin, "rounds run")
    await discord_server.wait_until(lambda: any(bot_posts(discord_server, t) for t in threads_in(discord_server,
                                                                                                  matches)),
                                    15, "the pair introduced")
    (thread,) = threads_in(discord_server, matches)
    await _settle()
    hold = discord_server.hold("POST", f"/channels/{thread.id}/messages")
    clock.advance(timedelta(days=5, minutes=1))
    bot_runner.bot.outbox.kick()  # type: ignore[union-attr]
    await hold.reached(10)
    # Stopping now cuts the follow-up job where a crash would: Discord has the question, the database does
    # not know. The job stays claimed; the next start takes it back and runs it again.
    await bot_runner.stop()
    hold.release()
    await bot_runner.start()

    def followed_up() -> bool:
        with sqlite3.connect(bot_runner.database_path) as db:
            return db.execute("SELECT followed_up_at FROM match_groups").fetchone()[0] is not None

    await discord_server.wait_until(followed_up, 10, "the follow-up recorded")
    await asyncio.sleep(0.5)  # a second question would arrive now
    _, question = bot_posts(discord_server, thread)  # the introduction, and one question
    assert [c.rsplit(":", 1)[1] for c in question.custom_ids] == ["met", "not_yet", "skip"]


# ---------------------------------------------------------------------- bad input


async def test_bad_requests_and_choices_each_get_a_clear_private_answer(
        discord_server: FakeDiscord, world: World, bot_runner: BotRunner) -> None:
    extra = [discord_server.add_member(world.guild, name) for name in ("p1", "p2", "p3", "p4", "avoider")]
    await bot_runner.start()
    await use_channel(discord_server, world, "matches", "matches")
    ben, chie, aiko = world.member, world.ja_member, world.admin
    await profile(discord_server, ben, "Sony")
    for n, member in enumerate(extra[:4]):
        await profile(discord_server, member, f"Company {n}")
    await profile(discord_server, extra[4], "Canon")
    await ask(discord_server, extra[4], "match avoid", company="Sony")
    bot_member = world.guild.members[discord_server.bot_user.id]

    cases = [
        (dict(member=ben), "yourself"),
        (dict(member=bot_member), "Bots can't be introduced"),
        (dict(member=chie), "has no profile yet"),
        (dict(member=extra[4]), "isn't possible right now"),
    ]
    for options, expected in cases:
        reply = await ask(discord_server, ben, "match request", **options)
        assert reply.ephemeral and expected in reply.text, (options, reply.text)
    for member in extra[:3]:
        assert "sent your request" in (await ask(discord_server, ben, "match request", member=member)).text
    fourth = await ask(discord_server, ben, "match request", member=extra[3])
    assert fourth.ephemeral and "already have 3 open requests" in fourth.text
    no_profile = await ask(discord_server, aiko, "match suggest")
    assert no_profile.ephemeral and "need a profile first" in no_profile.text
    for weeks in (0, 1000):
        paused = await ask(discord_server, ben, "match pause", weeks=weeks)
        assert paused.ephemeral and "between 1 and 52 weeks" in paused.text
    long_name = await ask(discord_server, ben, "match avoid", company="X" * 5000)
    assert long_name.ephemeral and "at most 100 characters" in long_name.text
    choices = await (await discord_server.autocomplete(ben, "match avoid", "company", company="c")).choices()
    assert "Canon" in [c["name"] for c in choices]
