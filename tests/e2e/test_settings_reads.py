"""An interaction reads the server's settings (``GuildConfig.settings``, a database read) at most once in the cogs
and the glue: what a command has read it passes on (to the reply's language, the matches channel, the member's
card, a DM to another member) instead of reading it again. Reads the services make on their own are outside
this count (see ``count_reads``)."""

from __future__ import annotations

import sys
from collections import Counter
from types import FrameType

import discord

from bot.client import KakehashiBot
from bot.guilds.model import GuildSettings
from bot.interactions import command_name
from playground.fakediscord import FakeDiscord, Message
from tests.e2e.conftest import BotRunner, World, ask, use_channel
from tests.e2e.test_matching import bot_posts, profile, threads_in


def count_reads(bot: KakehashiBot) -> Counter[str]:
    """From now on, the reads of the server's settings that the glue (a cog, or a module of ``bot/`` outside the
    feature packages) makes while handling an interaction, by interaction (named by ``command_name`` and its
    id), found on the stack as a local called ``interaction``. A service's own reads (from ``bot/<feature>/``)
    are not counted, nor due work's (the outbox's jobs have no interaction)."""
    reads: Counter[str] = Counter()
    original = bot.guild_config.settings

    async def settings(guild_id: int) -> GuildSettings:
        caller = sys._getframe(1)
        module = caller.f_globals.get("__name__", "")
        if module.startswith("cogs.") or (module.startswith("bot.") and module.count(".") == 1):
            frame: FrameType | None = caller
            while frame is not None:
                interaction = frame.f_locals.get("interaction")
                if isinstance(interaction, discord.Interaction):
                    reads[f"{command_name(interaction)} #{interaction.id}"] += 1
                    break
                frame = frame.f_back
        return await original(guild_id)

    bot.guild_config.settings = settings  # type: ignore[method-assign]
    return reads


def read_twice(reads: Counter[str]) -> dict[str, int]:
    return {name: count for name, count in reads.items() if count > 1}


async def test_the_profile_form_suggestions_and_answers_to_requests_read_the_settings_once(
        discord_server: FakeDiscord, world: World, bot_runner: BotRunner) -> None:
    shy = discord_server.add_member(world.guild, "shy", dm_open=False)   # answers in a private thread
    reads = count_reads(await bot_runner.start())
    matches = await use_channel(discord_server, world, "matches", "matches")
    await use_channel(discord_server, world, "introductions", "introductions")
    ben, aiko = world.member, world.admin
    # The form saved (its answer and the card in the introductions channel), then the languages select.
    await profile(discord_server, ben, "Sony")
    assert "Nobody to suggest" in (await ask(discord_server, ben, "match suggest")).text
    await profile(discord_server, shy, "Olympus")
    await profile(discord_server, aiko, "Canon")
    discord_server.expected_pings.update({shy.id, aiko.id})

    def open_request() -> Message | None:
        """The request shy has yet to answer, in its private thread."""
        return next((m for t in threads_in(discord_server, matches) for m in bot_posts(discord_server, t)
                     if any(c.startswith("match:accept:") for c in m.custom_ids)), None)

    # In the private thread: a request declined (the requester told by DM), another accepted (the matches
    # channel checked first).
    for requester, answer in ((ben, 1), (aiko, 0)):
        await ask(discord_server, requester, "match request", member=shy)
        await discord_server.wait_until(lambda: open_request() is not None, 5, "the request in its thread")
        asked = open_request()
        assert asked is not None
        await (await discord_server.click(shy, asked, asked.custom_ids[answer])).response()
        await discord_server.wait_until(lambda: open_request() is None, 5, "the answer")
    await discord_server.wait_until(lambda: bool(discord_server.dms(ben)), 5, "the requester to hear")
    assert len(reads) >= 15, reads   # each interaction above reads them
    assert read_twice(reads) == {}


async def test_rounds_run_and_stats_read_the_settings_once(
        discord_server: FakeDiscord, world: World, running_bot: KakehashiBot) -> None:
    matches = await use_channel(discord_server, world, "matches", "matches")
    members = (world.member, world.ja_member, world.admin)
    for member, company in zip(members, ("Sony", "Olympus", "Canon"), strict=True):
        await profile(discord_server, member, company)
        await ask(discord_server, member, "match join")
    discord_server.expected_pings.update(m.id for m in members)
    reads = count_reads(running_bot)
    await ask(discord_server, world.admin, "rounds run", dry_run=True)
    await ask(discord_server, world.admin, "rounds run")
    await discord_server.wait_until(lambda: bool(threads_in(discord_server, matches))
                                    and all(bot_posts(discord_server, t) for t in threads_in(discord_server, matches)),
                                    15, "the round's thread")
    stats = await ask(discord_server, world.admin, "rounds stats")
    assert "Rounds: 1" in stats.text and stats.embeds
    assert len(reads) == 3, reads
    assert read_twice(reads) == {}
