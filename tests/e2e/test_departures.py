"""Members who leave or come back while the bot is not watching (stopped, or reconnected without resuming its
gateway session): on its next start, or new session, it finds them from the server's member list and handles
them as the leave or return it would have seen."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest

from bot.client import KakehashiBot
from playground.clock import FakeClock
from playground.fakediscord import Channel, FakeDiscord, Member, Message
from tests.e2e.conftest import BotRunner, World, ask, use_channel


async def _settle() -> None:
    await asyncio.sleep(0.2)


async def eventually(check: Callable[[], Awaitable[bool]], what: str, timeout: float = 10.0) -> None:
    """Until ``check()`` holds: for what the bot stores, which the fake does not see."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await check():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(0.05)


def leave_unseen(member: Member) -> None:
    """The member leaves without the bot being told (the fake has no call for it: no GUILD_MEMBER_REMOVE)."""
    del member.guild.members[member.id]


def come_back_unseen(member: Member) -> None:
    """The member joins again without the bot being told (no GUILD_MEMBER_ADD)."""
    member.guild.members[member.id] = member


async def introduce(server: FakeDiscord, member: Member, company: str) -> None:
    """Step 1 of the profile, then the languages (so everyone here shares one and may be suggested)."""
    opened = await server.slash(member, "intro edit")
    await opened.modal()
    reply = await (await server.submit(opened, {"company": company, "role": "Engineer"})).reply()
    assert reply.ephemeral
    await _settle()
    chosen = await server.select(member, reply, f"intro:languages:{member.guild.id}", ["en", "ja"])
    await chosen.response()
    await _settle()


def card_of(server: FakeDiscord, channel: Channel, member: Member) -> Message:
    (card,) = [m for m in server.channel_messages(channel) if m.author.id == server.bot_user.id
               and m.embeds and m.embeds[0].get("description", "").startswith(f"<@{member.id}>")]
    return card


def ask_button(member: Member) -> str:
    return f"match:ask:{member.guild.id}:{member.id}"


async def stop_when_ready(server: FakeDiscord, runner: BotRunner) -> None:
    """Stop the bot once it has told its cogs every server is available (they catch up then)."""
    assert runner.bot is not None
    await server.wait_until(runner.bot.is_ready, 15, "the bot to be ready")
    await runner.stop()


async def is_active(bot: KakehashiBot, member: Member) -> bool:
    profile = await bot.intros.profile(member.guild.id, member.id)
    return profile is not None and profile.active


async def test_a_member_who_left_while_the_bot_was_stopped_is_hidden_after_the_restart_and_erased_later(
        discord_server: FakeDiscord, world: World, bot_runner: BotRunner, clock: FakeClock) -> None:
    await bot_runner.start()
    intro = await use_channel(discord_server, world, "introductions", "introductions")
    aiko, ben, chie = world.admin, world.member, world.ja_member
    for member, company in ((aiko, "Olympus"), (ben, "Canon"), (chie, "Nikon")):
        await introduce(discord_server, member, company)
    card = card_of(discord_server, intro, ben)
    assert ask_button(ben) in (await ask(discord_server, aiko, "match suggest")).custom_ids

    await stop_when_ready(discord_server, bot_runner)
    leave_unseen(ben)
    bot = await bot_runner.start()

    await eventually(lambda: _not(is_active(bot, ben)), "ben hidden")
    suggested = await ask(discord_server, aiko, "match suggest")
    assert ask_button(ben) not in suggested.custom_ids and ask_button(chie) in suggested.custom_ids
    shown = await ask(discord_server, aiko, "intro show", member=ben)
    assert "ben has not introduced themselves yet" in shown.text  # as after a leave the bot saw
    assert await bot.intros.has_left(world.guild.id, ben.id)

    clock.advance(timedelta(days=29))  # KEEP_LEFT_MEMBERS_DAYS is 30 here
    bot.outbox.kick()
    await _settle()
    assert not card.deleted and await bot.intros.profile(world.guild.id, ben.id) is not None
    clock.advance(timedelta(days=2))
    bot.outbox.kick()
    await discord_server.wait_until(lambda: card.deleted, 10, "ben's card deleted")
    await eventually(lambda: _is_none(bot.intros.profile(world.guild.id, ben.id)), "ben erased")
    assert await bot.intros.member(world.guild.id, ben.id) is None
    assert await is_active(bot, chie)  # nobody else


async def test_a_member_who_came_back_while_the_bot_was_stopped_is_active_again_and_kept(
        discord_server: FakeDiscord, world: World, bot_runner: BotRunner, clock: FakeClock) -> None:
    bot = await bot_runner.start()
    await ask(discord_server, world.admin, "config welcome", mode="dm")
    intro = await use_channel(discord_server, world, "introductions", "introductions")
    aiko, ben = world.admin, world.member
    for member, company in ((aiko, "Olympus"), (ben, "Canon")):
        await introduce(discord_server, member, company)
    card = card_of(discord_server, intro, ben)
    await discord_server.member_leave(ben)
    await _settle()
    assert not await is_active(bot, ben)

    await stop_when_ready(discord_server, bot_runner)
    come_back_unseen(ben)
    bot = await bot_runner.start()

    await eventually(lambda: is_active(bot, ben), "ben active again")
    assert not await bot.intros.has_left(world.guild.id, ben.id)
    suggested = await ask(discord_server, aiko, "match suggest")
    assert ask_button(ben) in suggested.custom_ids
    shown = await ask(discord_server, aiko, "intro show", member=ben)
    assert shown.embeds and "has not introduced" not in shown.text
    clock.advance(timedelta(days=31))  # past the time a member who left is erased
    bot.outbox.kick()
    await _settle()
    assert not card.deleted and await is_active(bot, ben)
    # A return found late is not welcomed (nobody who joined while the bot was away is).
    assert discord_server.dms(ben.user) == []


async def test_a_new_gateway_session_catches_up_and_matching_hears_of_it(
        discord_server: FakeDiscord, world: World, bot_runner: BotRunner) -> None:
    others = [world.member, world.ja_member, discord_server.add_member(world.guild, "dora"),
              discord_server.add_member(world.guild, "eri")]
    bot = await bot_runner.start()
    for member, company in zip((world.admin, *others), ("Olympus", "Canon", "Nikon", "Ricoh", "Fujitsu"),
                               strict=True):
        await introduce(discord_server, member, company)
    before = (await ask(discord_server, world.admin, "match suggest")).custom_ids  # builds the index
    assert len(before) == 3
    # Whoever is suggested first leaves unseen: were the index not told, it would still offer them, and the
    # answer would be one short after the service drops a profile no longer active.
    (leaver,) = [member for member in others if ask_button(member) == before[0]]
    leave_unseen(leaver)

    identified = discord_server.identify_count
    assert discord_server.session is not None
    discord_server.session.session_id = "expired"  # the RESUME is refused (op 9, false): the bot identifies anew
    await discord_server.drop_connection()
    await discord_server.wait_until(lambda: discord_server.identify_count > identified and discord_server.connected,
                                    30, "a new gateway session")
    assert discord_server.resume_count == 0

    await eventually(lambda: _not(is_active(bot, leaver)), f"{leaver.user.username} hidden")
    after = (await ask(discord_server, world.admin, "match suggest")).custom_ids
    assert ask_button(leaver) not in after and len(after) == 3
    assert sorted(after) == sorted(ask_button(m) for m in others if m is not leaver)


async def test_with_an_incomplete_member_list_nobody_is_taken_for_gone(
        discord_server: FakeDiscord, world: World, bot_runner: BotRunner, caplog: pytest.LogCaptureFixture) -> None:
    await bot_runner.start()
    await introduce(discord_server, world.member, "Canon")
    await stop_when_ready(discord_server, bot_runner)
    leave_unseen(world.member)
    guild = world.guild
    payload = guild.payload

    def short_payload(viewer: Member | None = None) -> dict[str, Any]:
        # Discord counts one member more than the bot receives, even after asking for the rest (chunks).
        return {**payload(viewer), "member_count": len(guild.members) + 1}

    guild.payload = short_payload  # type: ignore[method-assign]
    caplog.set_level(logging.INFO, logger="cogs.welcomes")
    bot = await bot_runner.start()

    await discord_server.wait_until(bot.is_ready, 15, "the bot to be ready")  # after every server is available
    await _settle()
    assert await is_active(bot, world.member)
    assert not await bot.intros.has_left(guild.id, world.member.id)
    warned = [r for r in caplog.records if "incomplete" in r.getMessage() and str(guild.id) in r.getMessage()]
    assert len(warned) == 1 and warned[0].levelno == logging.WARNING


async def _not(check: Awaitable[bool]) -> bool:
    return not await check


async def _is_none(value: Awaitable[object]) -> bool:
    return await value is None
