"""A round's delivery on Discord as it is, end to end: the cap of active threads (160006), rate limits and
5xx answers (some lost after Discord carried the call out), a crash between Discord's "done" and the
bot's record, and members who leave before their introduction. Every member who joined is introduced
once, in a thread or by DM, or recorded as not reached with the reason."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from datetime import timedelta
from pathlib import Path

from playground.clock import FakeClock
from playground.fakediscord import Channel, FakeDiscord, Member, Message, Overwrite, Perm
from tests.e2e.conftest import BotRunner, World, ask, use_channel
from tests.e2e.test_matching import bot_posts, humans_in, profile, threads_in
from tests.e2e.test_prompts import launch

DM_MARKER = re.compile(r"· #(\d+)$")


def dm_intros(server: FakeDiscord, member: Member) -> list[Message]:
    """The round introductions the bot sent the member by DM (they end with the group's marker)."""
    return [m for m in server.dms(member.user) if m.author.id == server.bot_user.id and DM_MARKER.search(m.content)]


def introduced(server: FakeDiscord, matches: Channel, members: list[Member]) -> dict[int, list[str]]:
    """For each member, every introduction they got: "thread:<id>" for a thread with the bot's message in it,
    "dm:<group>" for a DM."""
    found: dict[int, list[str]] = {m.id: [] for m in members}
    for thread in threads_in(server, matches):
        if bot_posts(server, thread):
            for user_id in humans_in(server, thread) & found.keys():
                found[user_id].append(f"thread:{thread.id}")
    for member in members:
        for message in dm_intros(server, member):
            match = DM_MARKER.search(message.content)
            assert match is not None
            found[member.id].append(f"dm:{match[1]}")
    return found


async def joined_community(server: FakeDiscord, world: World, count: int) -> list[Member]:
    members = [server.add_member(world.guild, f"m{n:02d}") for n in range(count)]
    return members


async def profiles_and_join(server: FakeDiscord, members: list[Member]) -> None:
    for n, member in enumerate(members):
        await profile(server, member, f"Company {n}")
        await ask(server, member, "match join")


def outbox_rows(database: Path) -> list[sqlite3.Row]:
    with sqlite3.connect(database) as db:
        db.row_factory = sqlite3.Row
        return db.execute("SELECT * FROM outbox ORDER BY id").fetchall()


async def test_with_room_for_three_threads_the_other_pairs_are_introduced_by_dm_and_admins_see_the_split(
        discord_server: FakeDiscord, world: World, bot_runner: BotRunner, clock: FakeClock) -> None:
    members = await joined_community(discord_server, world, 16)
    await bot_runner.start()
    matches = await use_channel(discord_server, world, "matches", "matches")
    log = await use_channel(discord_server, world, "log", "mod-log")
    await profiles_and_join(discord_server, members)
    discord_server.leave_thread_room(world.guild, 3)
    discord_server.expected_pings.update(m.id for m in members)

    run = await discord_server.slash(world.admin, "rounds run")
    answer = await run.reply(timeout=30)
    assert answer.ephemeral and "pairs: 8" in answer.text
    everyone = {m.id for m in members}
    await discord_server.wait_until(
        lambda: {u for u, got in introduced(discord_server, matches, members).items() if got} == everyone, 60,
        "every member introduced")
    await asyncio.sleep(0.5)   # anything sent twice would arrive now
    got = introduced(discord_server, matches, members)
    assert all(len(ways) == 1 for ways in got.values()), got
    threads = [t for t in threads_in(discord_server, matches) if bot_posts(discord_server, t)]
    assert len(threads) <= 3
    by_dm = [m for m in members if got[m.id][0].startswith("dm:")]
    assert len(by_dm) == 16 - 2 * len(threads) and len(by_dm) >= 10
    by_id = {m.id: m for m in members}
    for member in by_dm:
        (intro,) = dm_intros(discord_server, member)
        group = got[member.id][0]
        partners = [by_id[u] for u, ways in got.items() if ways == [group] and u != member.id]
        assert len(partners) == 1
        # Each names the other (a mention they can click to write to them), and their card comes with it.
        assert f"<@{partners[0].id}>" in intro.content
        assert f"<@{partners[0].id}>" in intro.text.split(intro.content, 1)[1]
        assert intro.mentions == []   # a mention in a DM pings nobody
    refused = [c for c in discord_server.calls_to("POST", rf"/channels/{matches.id}/threads") if c.status == 400]
    assert 1 <= len(refused) <= 8 + 2
    assert {c.status for c in discord_server.calls_to("POST", r"/channels/\d+/threads")} <= {200, 201, 400}
    assert not [row for row in outbox_rows(bot_runner.database_path)
                if row["last_error"] and "outbox.unexpected" in row["last_error"]]
    # The admin's answer shows the split once delivered; the log channel has one summary.
    split = f"{len(threads)} in threads · {16 // 2 - len(threads)} by DM · 0 not reached"
    await discord_server.wait_until(lambda: split in answer.text and "Round delivered" in answer.text, 10,
                                    "the admin's answer to show the delivery")
    summaries = [m for m in bot_posts(discord_server, log) if "Round delivered" in m.text]
    assert len(summaries) == 1 and split in summaries[0].text
    stats = await ask(discord_server, world.admin, "rounds stats")
    assert split in stats.text
    # The follow-up comes the way the introduction did: by DM to each member introduced by DM.
    clock.advance(timedelta(days=5, minutes=1))
    assert bot_runner.bot is not None
    await bot_runner.bot.outbox.run_due()

    def asked(member: Member) -> list[Message]:
        return [m for m in discord_server.dms(member.user) if any(":met" in c for c in m.custom_ids)]

    await discord_server.wait_until(lambda: all(asked(m) for m in by_dm), 20, "the follow-ups by DM")
    # Neither the introductions nor the follow-ups by DM leave discord.py holding a rate limit for each
    # member's DM channel (for five minutes each, all looked through for each new one: forget_rate_limits).
    dm_channels = {str(channel.id) for channel in bot_runner.bot.private_channels}
    assert len(dm_channels) >= 10
    assert not [key for key in bot_runner.bot.http._buckets if key.rpartition(":")[2] in dm_channels]
    question = asked(by_dm[0])[0]
    thanks = await (await discord_server.click(by_dm[0], question, question.custom_ids[0])).reply()
    assert thanks.ephemeral
    stats = await ask(discord_server, world.admin, "rounds stats")
    assert "meetings reported: 1" in stats.text


async def test_a_round_delivered_through_429s_500s_and_lost_answers_introduces_everyone_once(
        discord_server: FakeDiscord, world: World, bot_runner: BotRunner) -> None:
    members = await joined_community(discord_server, world, 16)
    await bot_runner.start()
    matches = await use_channel(discord_server, world, "matches", "matches")
    await profiles_and_join(discord_server, members)
    discord_server.leave_thread_room(world.guild, 3)
    discord_server.expected_pings.update(m.id for m in members)
    discord_server.chaos(7, rate_limited=0.25, server_error=0.10, lost_answer=0.05)
    try:
        await ask(discord_server, world.admin, "rounds run")
        everyone = {m.id for m in members}
        await discord_server.wait_until(
            lambda: {u for u, got in introduced(discord_server, matches, members).items() if got} == everyone, 120,
            "every member introduced")
    finally:
        discord_server.chaos(None)
    await asyncio.sleep(1.0)
    got = introduced(discord_server, matches, members)
    assert all(len(ways) == 1 for ways in got.values()), got
    for thread in threads_in(discord_server, matches):
        assert len(bot_posts(discord_server, thread)) <= 1
    for member in members:
        assert len(dm_intros(discord_server, member)) <= 1
    assert discord_server.rate_limited
    assert [c for c in discord_server.calls if c.status >= 500]


async def test_a_bot_killed_before_hearing_that_discord_made_a_thread_finishes_with_one_thread_each(
        discord_server: FakeDiscord, world: World, tmp_path: Path) -> None:
    members = await joined_community(discord_server, world, 4)
    matches = world.guild.channel_named("matches")
    database = tmp_path / "kakehashi.db"
    process = await launch(discord_server, database)
    try:
        await use_channel(discord_server, world, "matches", "matches")
        await profiles_and_join(discord_server, members)
        discord_server.expected_pings.update(m.id for m in members)
        hold = discord_server.hold("POST", rf"/channels/{matches.id}/threads")
        await discord_server.slash(world.admin, "rounds run")
        await hold.reached(30)
        process.kill()   # SIGKILL: Discord made the thread, the bot never heard
        await process.wait()
        hold.release()
        assert len(threads_in(discord_server, matches)) == 1

        process = await launch(discord_server, database)
        everyone = {m.id for m in members}
        await discord_server.wait_until(
            lambda: {u for u, got in introduced(discord_server, matches, members).items() if got} == everyone, 30,
            "every member introduced")
        await asyncio.sleep(1.0)
        threads = threads_in(discord_server, matches)
        assert len(threads) == 2
        assert [len(bot_posts(discord_server, t)) for t in threads] == [1, 1]
        assert sorted(len(humans_in(discord_server, t)) for t in threads) == [2, 2]
        for thread in threads:
            adds = [c.path for c in discord_server.calls_to("PUT", rf"/channels/{thread.id}/thread-members/\d+")]
            assert len(adds) == len(set(adds)) == 2   # each member added once
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()
    assert discord_server.unhandled_calls() == []


async def test_a_member_who_leaves_before_delivery_is_not_waited_for_and_their_partner_joins_another_pair(
        discord_server: FakeDiscord, world: World, bot_runner: BotRunner, clock: FakeClock) -> None:
    members = await joined_community(discord_server, world, 4)
    await bot_runner.start()
    matches = await use_channel(discord_server, world, "matches", "matches")
    await profiles_and_join(discord_server, members)
    discord_server.expected_pings.update(m.id for m in members)
    # Delivery begins by asking Discord for the server's active threads: the member leaves meanwhile.
    hold = discord_server.hold("GET", rf"/guilds/{world.guild.id}/threads/active")
    await ask(discord_server, world.admin, "rounds run")
    await hold.reached(30)
    with sqlite3.connect(bot_runner.database_path) as db:
        pairs = [tuple(u for (u,) in db.execute(
            "SELECT user_id FROM match_group_members WHERE group_id = ? ORDER BY rowid", (g,)))
            for (g,) in db.execute("SELECT id FROM match_groups ORDER BY id")]
    assert len(pairs) == 2
    leaver_id = pairs[0][1]
    alone_id = pairs[0][0]
    leaver = next(m for m in members if m.id == leaver_id)
    await discord_server.member_leave(leaver)
    hold.release()
    rest = [m for m in members if m.id != leaver_id]
    await discord_server.wait_until(
        lambda: all(introduced(discord_server, matches, rest)[m.id] for m in rest), 30, "the others introduced")
    (thread,) = [t for t in threads_in(discord_server, matches) if bot_posts(discord_server, t)]

    def states() -> list[str]:
        with sqlite3.connect(bot_runner.database_path) as db:
            return sorted(state for (state,) in db.execute("SELECT state FROM match_groups"))

    await discord_server.wait_until(lambda: "planned" not in states(), 10, "the groups' delivery recorded")
    assert humans_in(discord_server, thread) == {m.id for m in rest}   # the pair took the one left alone
    assert alone_id in humans_in(discord_server, thread)
    assert not introduced(discord_server, matches, [leaver])[leaver_id]
    with sqlite3.connect(bot_runner.database_path) as db:
        unreached = db.execute("SELECT user_id, unreached FROM match_group_members WHERE unreached IS NOT NULL"
                               ).fetchall()
    assert states() == ["cancelled", "delivered"]
    assert unreached == [(leaver_id, "left")]
    stats = await ask(discord_server, world.admin, "rounds stats")
    assert "groups: 1" in stats.text and "1 in threads · 0 by DM · 1 not reached" in stats.text
    # The follow-ups come and go: the delivered group is asked, the cancelled one ends, nothing stays behind.
    clock.advance(timedelta(days=5, minutes=1))
    assert bot_runner.bot is not None
    await bot_runner.bot.outbox.run_due()
    await discord_server.wait_until(lambda: len(bot_posts(discord_server, thread)) == 2, 10, "the follow-up")
    waiting = [row for row in outbox_rows(bot_runner.database_path)
               if row["state"] != "done" and row["kind"] != "matching.archive"]
    assert waiting == []
    # Threads archive after a day of silence; once everyone answered, the bot archives its thread at once.
    assert thread.auto_archive_duration == 1440 and not thread.archived
    question = bot_posts(discord_server, thread)[1]
    for member in rest:
        thanks = await (await discord_server.click(member, question, question.custom_ids[0])).reply()
        assert thanks.ephemeral
    await discord_server.wait_until(lambda: thread.archived, 10, "the thread archived")


async def test_a_permission_taken_away_during_delivery_is_reported_once_and_the_groups_go_by_dm(
        discord_server: FakeDiscord, world: World, bot_runner: BotRunner) -> None:
    members = await joined_community(discord_server, world, 8)
    await bot_runner.start()
    matches = await use_channel(discord_server, world, "matches", "matches")
    log = await use_channel(discord_server, world, "log", "mod-log")
    await profiles_and_join(discord_server, members)
    discord_server.expected_pings.update(m.id for m in members)
    hold = discord_server.hold("GET", rf"/guilds/{world.guild.id}/threads/active")
    await ask(discord_server, world.admin, "rounds run")
    await hold.reached(30)
    # Taken away on Discord's side without the bot hearing of it: it learns when Discord refuses.
    bot_role = world.guild.role_named("Kakehashi")
    matches.overwrites.append(Overwrite(bot_role.id, 0, deny=Perm.CREATE_PRIVATE_THREADS))
    hold.release()
    everyone = {m.id for m in members}
    await discord_server.wait_until(
        lambda: {u for u, got in introduced(discord_server, matches, members).items() if got} == everyone, 30,
        "every member introduced")
    assert all(got[0].startswith("dm:") for got in introduced(discord_server, matches, members).values())
    refused = [c for c in discord_server.calls_to("POST", rf"/channels/{matches.id}/threads") if c.status == 403]
    assert len(refused) == 1   # not retried blindly: the round's other groups went by DM at once
    await discord_server.wait_until(lambda: any("Round delivered" in m.text for m in bot_posts(discord_server, log)),
                                    10, "the round's summary")
    problems = [m for m in bot_posts(discord_server, log) if "Create Private Threads" in m.text]
    assert len(problems) == 1 and matches.mention in problems[0].text
    # Discord's own words are English: the report gives its status and code instead, in any language.
    assert "(Discord 403 · 50013)" in problems[0].text and "Missing Permissions" not in problems[0].text


async def test_config_show_warns_about_each_permission_the_matches_channel_lacks(
        discord_server: FakeDiscord, world: World, bot_runner: BotRunner) -> None:
    bot_role = world.guild.role_named("Kakehashi")
    quiet = discord_server.add_channel(world.guild, "quiet-matches", overwrites=(
        Overwrite(bot_role.id, 0, deny=Perm.READ_MESSAGE_HISTORY | Perm.EMBED_LINKS),))
    await bot_runner.start()
    await use_channel(discord_server, world, "matches", "quiet-matches")
    shown = await ask(discord_server, world.admin, "config show")
    assert f"{quiet.mention} ⚠️ I still need: Embed Links, Read Message History" in shown.text
    ran = await ask(discord_server, world.admin, "rounds run")
    assert "Read Message History" in ran.text and "Embed Links" in ran.text


async def test_when_discord_refuses_to_add_members_to_the_bots_threads_the_groups_go_by_dm(
        discord_server: FakeDiscord, world: World, bot_runner: BotRunner) -> None:
    """Discord starts the bot's threads but refuses every add (403/50013; the bot starts them open to
    invitations, so not for the reason of tests/e2e/test_thread_invitations.py). Nobody waits in an empty
    thread."""
    discord_server.strict_invitable = True
    bot_role = world.guild.role_named("Kakehashi")
    bot_role.permissions &= ~Perm.MANAGE_THREADS   # the invite link does not ask for it
    members = await joined_community(discord_server, world, 4)
    await bot_runner.start()
    matches = await use_channel(discord_server, world, "matches", "matches")
    log = await use_channel(discord_server, world, "log", "mod-log")
    await profiles_and_join(discord_server, members)
    discord_server.expected_pings.update(m.id for m in members)
    discord_server.fault("PUT", r"/channels/\d+/thread-members/\d+", 403, times=100)
    await ask(discord_server, world.admin, "rounds run")
    everyone = {m.id for m in members}
    await discord_server.wait_until(
        lambda: {u for u, got in introduced(discord_server, matches, members).items() if got} == everyone, 30,
        "every member introduced")
    await asyncio.sleep(0.5)
    got = introduced(discord_server, matches, members)
    assert all(len(ways) == 1 and ways[0].startswith("dm:") for ways in got.values()), got
    assert len(discord_server.calls_to("POST", rf"/channels/{matches.id}/threads")) == 1   # then no more tried
    await discord_server.wait_until(lambda: any("Round delivered" in m.text for m in bot_posts(discord_server, log)),
                                    10, "the round's summary")
    assert len([m for m in bot_posts(discord_server, log) if "not add the members" in m.text]) == 1


async def test_a_follow_up_that_cannot_reopen_its_thread_at_the_cap_asks_by_dm(
        discord_server: FakeDiscord, world: World, bot_runner: BotRunner, clock: FakeClock) -> None:
    members = await joined_community(discord_server, world, 2)
    await bot_runner.start()
    matches = await use_channel(discord_server, world, "matches", "matches")
    await profiles_and_join(discord_server, members)
    discord_server.expected_pings.update(m.id for m in members)
    await ask(discord_server, world.admin, "rounds run")
    await discord_server.wait_until(lambda: all(introduced(discord_server, matches, members).values()), 20,
                                    "the pair introduced")
    (thread,) = threads_in(discord_server, matches)
    await asyncio.sleep(0.3)
    # A day of silence archived it; meanwhile the server's threads reached the cap.
    thread.archived = True
    discord_server.leave_thread_room(world.guild, 0)
    clock.advance(timedelta(days=5, minutes=1))
    assert bot_runner.bot is not None
    await bot_runner.bot.outbox.run_due()
    for member in members:
        questions = [m for m in discord_server.dms(member.user) if any(":met" in c for c in m.custom_ids)]
        assert len(questions) == 1
    assert len(bot_posts(discord_server, thread)) == 1   # only the introduction
    follow_ups = [row for row in outbox_rows(bot_runner.database_path) if row["kind"] == "matching.follow_up"]
    assert [row["state"] for row in follow_ups] == ["done"]
