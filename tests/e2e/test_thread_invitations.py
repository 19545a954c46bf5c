"""Private threads for introductions, under either reading of Discord's rule on ``invitable`` (issue 19).

Discord documents ``invitable`` as "whether non-moderators can add other non-moderators to a thread", and the
bot is no moderator (its invite link does not ask for Manage Threads). Whether a thread's creator is exempt
cannot be checked against the fake, so every test here runs without Manage Threads and the flows run under
both rules: strict (``strict_invitable``: a closed private thread refuses a non-moderator's adds with 50013)
and lenient. The bot starts each thread open, adds the members and then closes it; whoever Discord will not
add is introduced by DM, and a refused close leaves the thread open, said once per server."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import pytest

from playground.fakediscord import Call, Channel, FakeDiscord, Member, Perm
from tests.e2e.conftest import BotRunner, World, ask, use_channel
from tests.e2e.test_delivery import dm_intros, introduced, joined_community, outbox_rows, profiles_and_join
from tests.e2e.test_matching import bot_posts, humans_in, profile, threads_in

RULES = pytest.mark.parametrize("strict", [True, False], ids=["strict", "lenient"])


def as_invited(server: FakeDiscord, world: World, *, strict: bool) -> None:
    """The bot as its invite link sets it up (no Manage Threads), under the rule asked for."""
    server.strict_invitable = strict
    world.guild.role_named("Kakehashi").permissions &= ~Perm.MANAGE_THREADS


def refused(server: FakeDiscord) -> list[Call]:
    return [c for c in server.calls if c.status == 403]


def invitation_edits(server: FakeDiscord) -> list[Call]:
    return [c for c in server.calls_to("PATCH", r"/channels/\d+") if "invitable" in (c.json or {})]


def closed_after_adds(server: FakeDiscord, thread: Channel) -> bool:
    """Every add to ``thread`` came before the edit that closed it to invitations."""
    adds = [n for n, c in enumerate(server.calls)
            if c.method == "PUT" and c.path.startswith(f"/channels/{thread.id}/thread-members/")]
    closes = [n for n, c in enumerate(server.calls) if c.method == "PATCH" and c.path == f"/channels/{thread.id}"
              and (c.json or {}).get("invitable") is False]
    return bool(adds) and len(closes) == 1 and max(adds) < closes[0]


async def round_of_six(server: FakeDiscord, world: World, bot_runner: BotRunner,
                       prepare: Callable[[list[Member]], None] = lambda _: None) -> tuple[list[Member], Channel]:
    """Six members of six companies in the rounds (``prepare`` sees them before the bot starts), a round run,
    and every one of them introduced."""
    members = await joined_community(server, world, 6)
    prepare(members)
    await bot_runner.start()
    matches = await use_channel(server, world, "matches", "matches")
    await profiles_and_join(server, members)
    server.expected_pings.update(m.id for m in members)
    await ask(server, world.admin, "rounds run")
    everyone = {m.id for m in members}
    await server.wait_until(
        lambda: {u for u, got in introduced(server, matches, members).items() if got} == everyone, 30,
        "every member introduced")
    await asyncio.sleep(0.5)   # anything sent twice would arrive now
    return members, matches


async def accepted_request(server: FakeDiscord, world: World) -> Channel:
    """ben asks to meet chie, who accepts; the thread that introduces them, once the bot posted in it."""
    matches = await use_channel(server, world, "matches", "matches")
    ben, chie = world.member, world.ja_member
    await profile(server, ben, "Sony")
    await profile(server, chie, "Olympus")
    await ask(server, ben, "match request", member=chie)
    await server.wait_until(lambda: bool(server.dms(chie)), 5, "the request by DM")
    (request,) = server.dms(chie)
    server.expected_pings.update({ben.id, chie.id})
    before = {t.id for t in threads_in(server, matches)}
    await (await server.click(chie, request, request.custom_ids[0])).response()

    def thread() -> Channel | None:
        return next((t for t in threads_in(server, matches) if t.id not in before and bot_posts(server, t)), None)

    await server.wait_until(lambda: thread() is not None, 10, "the introduction thread")
    found = thread()
    assert found is not None
    return found


@RULES
async def test_a_round_of_six_ends_in_its_threads_closed_to_invitations_after_the_members_are_in(
        discord_server: FakeDiscord, world: World, bot_runner: BotRunner, strict: bool) -> None:
    as_invited(discord_server, world, strict=strict)
    members, matches = await round_of_six(discord_server, world, bot_runner)
    got = introduced(discord_server, matches, members)
    assert all(len(ways) == 1 and ways[0].startswith("thread:") for ways in got.values()), got
    threads = threads_in(discord_server, matches)
    assert sum(len(humans_in(discord_server, t)) for t in threads) == 6
    for thread in threads:
        assert not thread.invitable and closed_after_adds(discord_server, thread)
        assert len(bot_posts(discord_server, thread)) == 1
    assert refused(discord_server) == []   # no 50013, handled or not
    assert len(invitation_edits(discord_server)) == len(threads)
    assert not [row for row in outbox_rows(bot_runner.database_path) if row["last_error"]]
    stats = await ask(discord_server, world.admin, "rounds stats")
    assert f"{len(threads)} in threads · 0 by DM · 0 not reached" in stats.text


@RULES
async def test_an_accepted_request_ends_with_both_in_its_thread_closed_to_invitations(
        discord_server: FakeDiscord, world: World, bot_runner: BotRunner, strict: bool) -> None:
    as_invited(discord_server, world, strict=strict)
    await bot_runner.start()
    thread = await accepted_request(discord_server, world)
    assert humans_in(discord_server, thread) == {world.member.id, world.ja_member.id}
    (hello,) = bot_posts(discord_server, thread)
    assert set(hello.mentions) == {world.member.id, world.ja_member.id} and len(hello.embeds) == 2
    assert not thread.invitable and closed_after_adds(discord_server, thread)
    assert refused(discord_server) == []
    assert not [row for row in outbox_rows(bot_runner.database_path) if row["last_error"]]


async def test_a_refused_close_leaves_the_threads_open_is_logged_once_for_the_server_and_introduces_anyway(
        discord_server: FakeDiscord, world: World, bot_runner: BotRunner, caplog: pytest.LogCaptureFixture) -> None:
    """Discord refusing the creator's edit: the introductions go ahead, in threads left open to invitations; the
    bot says so once and asks no more in that server (each 403 counts towards Discord's invalid-request
    limit), for rounds and requests alike."""
    as_invited(discord_server, world, strict=True)
    caplog.set_level(logging.INFO, logger="bot.threads")
    refusal = discord_server.fault("PATCH", r"/channels/\d+", 403, times=100)
    members, matches = await round_of_six(discord_server, world, bot_runner)
    got = introduced(discord_server, matches, members)
    assert all(len(ways) == 1 and ways[0].startswith("thread:") for ways in got.values()), got
    round_threads = threads_in(discord_server, matches)
    assert all(t.invitable and len(bot_posts(discord_server, t)) == 1 for t in round_threads)
    # An accepted request in the same server: its thread is left open without asking again.
    thread = await accepted_request(discord_server, world)
    assert humans_in(discord_server, thread) == {world.member.id, world.ja_member.id} and thread.invitable
    assert len(refusal.calls) == 1 and invitation_edits(discord_server) == refusal.calls
    warned = [r for r in caplog.records if "refused to close" in r.getMessage()]
    assert len(warned) == 1 and warned[0].levelno == logging.WARNING
    assert str(world.guild.id) in warned[0].getMessage()
    assert not [row for row in outbox_rows(bot_runner.database_path) if row["last_error"]]


async def test_a_member_discord_will_not_add_to_a_round_thread_is_introduced_by_dm(
        discord_server: FakeDiscord, world: World, bot_runner: BotRunner) -> None:
    as_invited(discord_server, world, strict=True)
    members, matches = await round_of_six(
        discord_server, world, bot_runner,
        lambda members: discord_server.fault("PUT", rf"/channels/\d+/thread-members/{members[0].id}", 403, times=10))
    outsider = members[0]
    got = introduced(discord_server, matches, members)
    assert all(len(ways) == 1 for ways in got.values()), got
    assert got[outsider.id][0].startswith("dm:")
    assert all(ways[0].startswith("thread:") for user, ways in got.items() if user != outsider.id)
    # The partners are in the group's thread; the outsider's DM names them.
    (intro,) = dm_intros(discord_server, outsider)
    group = got[outsider.id][0].removeprefix("dm:")
    partners = [t for t in threads_in(discord_server, matches) if t.name.endswith(f"· #{group}")]
    assert len(partners) == 1 and humans_in(discord_server, partners[0])
    assert all(f"<@{user}>" in intro.content for user in humans_in(discord_server, partners[0]))
    assert all(not t.invitable for t in threads_in(discord_server, matches))


async def test_a_member_discord_will_not_add_to_a_request_thread_is_introduced_by_dm(
        discord_server: FakeDiscord, world: World, bot_runner: BotRunner) -> None:
    as_invited(discord_server, world, strict=True)
    ben, chie = world.member, world.ja_member
    discord_server.fault("PUT", rf"/channels/\d+/thread-members/{chie.id}", 403, times=10)
    await bot_runner.start()
    thread = await accepted_request(discord_server, world)
    assert humans_in(discord_server, thread) == {ben.id}
    (hello,) = bot_posts(discord_server, thread)
    assert hello.mentions == [ben.id] and len(hello.embeds) == 2   # ben sees whom he is introduced to
    await discord_server.wait_until(lambda: len(discord_server.dms(chie)) == 2, 10, "chie's introduction by DM")
    intro = discord_server.dms(chie)[1]
    # In her language, with ben's card and a mention to write to him; a mention in a DM pings nobody.
    assert "ご紹介が決まりましたが" in intro.text and f"<@{ben.id}>" in intro.content and intro.mentions == []
    assert len(intro.embeds) == 1 and "Sony" in intro.text
    assert intro.content.endswith(f"· r{thread.name.rsplit('· r', 1)[1]}")
    assert not thread.invitable
    assert not [row for row in outbox_rows(bot_runner.database_path) if row["last_error"]]
