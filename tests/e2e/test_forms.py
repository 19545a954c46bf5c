"""Forms (modals) end to end: a form reopened while the last save still runs, and forms submitted after a
restart. (A form the bot no longer routes is in test_machinery.py, through the probe.)"""

from __future__ import annotations

import asyncio
import sqlite3

from bot.client import KakehashiBot
from playground.fakediscord import FakeDiscord, Message
from tests.e2e.conftest import BotRunner, World, use_channel


def stored_company(runner: BotRunner, world: World, member_id: int) -> str:
    with sqlite3.connect(runner.database_path) as db:
        (company,) = db.execute("SELECT company FROM intro_profiles WHERE guild_id = ? AND user_id = ?",
                                (world.guild.id, member_id)).fetchone()
    return str(company)


def card_company(card: Message) -> str:
    (embed,) = card.embeds
    return next(field["value"] for field in embed["fields"] if field["name"] in ("Company", "会社"))


def open_forms(bot: KakehashiBot) -> int:
    """Modals discord.py keeps in this process (none: a form's submit is routed by its custom id)."""
    return len(bot._connection._view_store._modals)


async def test_a_form_reopened_while_the_last_save_posts_the_card_is_saved_too(
        discord_server: FakeDiscord, world: World, bot_runner: BotRunner) -> None:
    bot = await bot_runner.start()
    intro = await use_channel(discord_server, world, "introductions", "introductions")
    # Discord is slow to take posts in the introductions channel: one every 2 seconds.
    discord_server.rate_limit("POST", rf"/channels/{intro.id}/messages", 1, 2.0)
    chie = await discord_server.slash(world.ja_member, "intro edit")
    await (await discord_server.submit(chie, {"company": "Sony"})).reply()   # her card takes the 2 s slot

    first = await discord_server.slash(world.member, "intro edit")
    saving = await discord_server.submit(first, {"company": "Olympsu"})
    await saving.response()                                                  # "thinking…": the card waits
    second = await discord_server.slash(world.member, "intro edit")          # a typo: open the form again
    assert (await second.modal())["custom_id"] != (await first.modal())["custom_id"]
    assert not [m for m in saving.messages if not m.flags & Message.LOADING]  # the first save is still running
    saved = await saving.reply(timeout=10)
    assert "Olympsu" in saved.text
    await asyncio.sleep(0.5)                                                  # typing
    again = await (await discord_server.submit(second, {"company": "Olympus"})).reply()
    assert "Olympus" in again.text
    assert stored_company(bot_runner, world, world.member.id) == "Olympus"
    cards = [m for m in discord_server.channel_messages(intro) if m.author.id == discord_server.bot_user.id]
    assert sorted(card_company(card) for card in cards) == ["Olympus", "Sony"]
    assert open_forms(bot) == 0


async def test_two_members_forms_never_share_an_id(discord_server: FakeDiscord, world: World,
                                                   running_bot: KakehashiBot) -> None:
    opened = [await discord_server.slash(member, "intro edit")
              for member in (world.member, world.ja_member, world.member)]
    ids = [(await interaction.modal())["custom_id"] for interaction in opened]
    assert len(set(ids)) == 3
    assert all(len(custom_id) <= 100 for custom_id in ids)


async def test_a_profile_form_opened_before_a_restart_is_saved_after_it(
        discord_server: FakeDiscord, world: World, bot_runner: BotRunner) -> None:
    await bot_runner.start()
    opened = await discord_server.slash(world.ja_member, "intro edit")
    await opened.modal()
    await bot_runner.restart()
    saved = await (await discord_server.submit(opened, {"company": "株式会社オリンパス"})).reply()
    assert "保存しました" in saved.text
    assert stored_company(bot_runner, world, world.ja_member.id) == "株式会社オリンパス"


async def test_every_form_opened_before_a_restart_is_saved_after_it(
        discord_server: FakeDiscord, world: World, bot_runner: BotRunner) -> None:
    """The step-2 profile form, the request note, /prompts add and its translation: each opened, the bot
    restarted, each submitted and done."""
    await bot_runner.start()
    await use_channel(discord_server, world, "matches", "matches")
    ben, chie, admin = world.member, world.ja_member, world.admin
    steps = {}
    for member, company in ((ben, "Sony"), (chie, "Olympus")):
        steps[member.id] = await (await discord_server.submit(await discord_server.slash(member, "intro edit"),
                                                              {"company": company})).reply()
        chosen = await discord_server.select(member, steps[member.id], f"intro:languages:{world.guild.id}", ["ja"])
        await chosen.response()
    more = await discord_server.click(chie, steps[chie.id], f"intro:step:{world.guild.id}:more")
    note = await discord_server.user_command(ben, "Suggest an intro to…", chie)
    added = await (await discord_server.submit(await discord_server.slash(admin, "prompts add"), {
        "Text": "Why do Japanese firms overseas share so little with each other?"})).reply()
    translation = await discord_server.click(admin, added, f"prompt:translate:{world.guild.id}:custom:1")
    prompt = await discord_server.slash(admin, "prompts add")
    for opened in (more, note, translation, prompt):
        await opened.modal()

    await bot_runner.restart()
    saved = await (await discord_server.submit(more, {"bio": "海外の仲間と話したい"})).reply()
    assert "保存しました" in saved.text
    sent = await (await discord_server.submit(note, {"note": "Hello!"})).reply(timeout=10)
    assert "sent your request" in sent.text
    translated = await (await discord_server.submit(translation, {
        "Summary of the text in 日本語": "海外の日本企業は、なぜ互いに情報を共有しないのか。"})).reply()
    assert "in 日本語" in translated.text
    second = await (await discord_server.submit(prompt, {"Text": "社外の人と知り合うことは裏切りですか。"})).reply()
    assert "It reads as 日本語" in second.text
    with sqlite3.connect(bot_runner.database_path) as db:
        assert db.execute("SELECT bio FROM intro_profiles WHERE user_id = ?", (chie.id,)).fetchone() == (
            "海外の仲間と話したい",)
        assert db.execute("SELECT note FROM match_requests").fetchall() == [("Hello!",)]
        assert db.execute("SELECT count(*) FROM prompt_custom").fetchone() == (2,)
