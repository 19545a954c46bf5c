"""Introductions end to end: welcome, the two-step profile and its card, the introductions channel,
reminders, reading, deleting and exporting one's data, as Discord would have received them."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import struct
from datetime import timedelta
from pathlib import Path

import pytest

from bot.client import KakehashiBot
from playground.clock import FakeClock
from playground.fakediscord import (
    Channel,
    CommandNotAvailable,
    FakeDiscord,
    Interaction,
    Member,
    Message,
    Overwrite,
    Perm,
)
from tests.e2e.conftest import BotRunner, World, ask, use_channel

HOSTILE = "@everyone @here <@&1> <@2> **bold** `code` \u200b\u200d\u202e右から左 ミックス"


def bot_messages(server: FakeDiscord, channel: Channel) -> list[Message]:
    return [m for m in server.channel_messages(channel) if m.author.id == server.bot_user.id and not m.ephemeral]


def embed_fields(message: Message) -> dict[str, str]:
    (embed,) = message.embeds
    return {field["name"]: field["value"] for field in embed.get("fields", [])}


async def fill_profile(server: FakeDiscord, member: Member, opened_by: Interaction, *, company: str = "Olympus",
                       bio: str = "Happy to help newcomers", **about: str) -> tuple[Message, Message]:
    """Both steps of the modal, as the member would fill them in; the two private answers."""
    first = await (await server.submit(opened_by, {
        "company": company, "role": "Sales", "industry": "Medical devices", "location": "Tokyo", **about})).reply()
    assert first.ephemeral and f"intro:step:{member.guild.id}:more" in first.custom_ids
    await _settle()
    opened = await server.click(member, first, f"intro:step:{member.guild.id}:more")
    second = await (await server.submit(opened, {
        "timezone": "Asia/Tokyo", "interests": "Supply chains, AI", "offer": "Advice on Japan",
        "seek": "Partners in Vietnam", "bio": bio})).reply()
    assert second.ephemeral
    return first, second


async def _settle() -> None:
    """Let the bot finish what an event started (Discord's clients are not faster than this either)."""
    await asyncio.sleep(0.2)


def modal_values(modal: dict[str, object]) -> dict[str, str | None]:
    """The values a modal opens with, by input id (inputs in labels or in action rows)."""
    values = {}
    for row in modal["components"]:  # type: ignore[attr-defined]
        text_input = row["component"] if row["type"] == 18 else row["components"][0]
        values[text_input["custom_id"]] = text_input.get("value")
    return values


def database_bytes(path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in path.parent.iterdir() if p.name.startswith(path.name))


# ---------------------------------------------------------------------- welcome, profile, card


async def test_a_newcomer_is_welcomed_fills_both_steps_and_gets_one_card_that_edits_follow(
        discord_server: FakeDiscord, world: World, running_bot: KakehashiBot) -> None:
    intro = await use_channel(discord_server, world, "introductions", "introductions")
    welcome = await use_channel(discord_server, world, "welcome", "welcome")
    newcomer = await discord_server.member_join(world.guild, "emi")
    discord_server.expected_pings.add(newcomer.id)
    await discord_server.wait_until(lambda: bool(bot_messages(discord_server, welcome)), 10, "a welcome")
    (greeting,) = bot_messages(discord_server, welcome)
    assert greeting.mentions == [newcomer.id] and newcomer.mention in greeting.content
    assert not greeting.mention_everyone and greeting.mention_roles == []
    assert "Welcome to Nihonjin Professionals" in greeting.content
    start = f"intro:start:{world.guild.id}"
    assert greeting.custom_ids == [start]

    await _settle()
    opened = await discord_server.click(newcomer, greeting, start)
    modal = await opened.modal()
    assert len(modal["components"]) == 5
    first, second = await fill_profile(discord_server, newcomer, opened)
    assert "Olympus" in first.text and "Your card is posted in" in first.text
    assert "Supply chains, AI" in second.text and "updated" in second.text   # as the member wrote them
    (card,) = bot_messages(discord_server, intro)
    fields = embed_fields(card)
    assert fields["Company"] == "Olympus" and fields["Interests"] == "Supply chains, AI"
    assert card.embeds[0]["title"] == "emi" and card.mentions == []

    # Editing later edits the same message: no second card.
    await _settle()
    opened = await discord_server.slash(newcomer, "intro edit")
    modal = await opened.modal()
    values = modal_values(modal)
    assert values["company"] == "Olympus" and values["display_name"] == "emi"  # pre-filled
    edited = await (await discord_server.submit(opened, {"company": "Olympus Medical Systems"})).reply()
    assert [m.id for m in bot_messages(discord_server, intro)] == [card.id]
    assert card.edited and embed_fields(card)["Company"] == "Olympus Medical Systems"
    await _settle()
    step_two = await discord_server.click(newcomer, edited, f"intro:step:{world.guild.id}:more")
    assert modal_values(await step_two.modal())["interests"] == "Supply chains, AI"   # the form, as written


async def test_choices_under_the_card_and_a_company_only_for_matches(
        discord_server: FakeDiscord, world: World, running_bot: KakehashiBot) -> None:
    intro = await use_channel(discord_server, world, "introductions", "introductions")
    opened = await discord_server.slash(world.member, "intro edit")
    first, _ = await fill_profile(discord_server, world.member, opened)
    guild_id = world.guild.id
    await _settle()
    for custom_id, values in ((f"intro:visibility:{guild_id}", ["matches"]),
                              (f"intro:languages:{guild_id}", ["ja", "en"]), (f"intro:open:{guild_id}", ["no"])):
        chosen = await discord_server.select(world.member, first, custom_id, values)
        await chosen.response()
        await _settle()
    assert "Not open to introductions" in first.text and "only to people you are introduced to" in first.text
    (card,) = bot_messages(discord_server, intro)
    assert "Company" not in embed_fields(card) and embed_fields(card)["Languages"] == "Japanese, English"

    own = await ask(discord_server, world.member, "intro show")
    assert embed_fields(own)["Company"] == "Olympus"
    other = await ask(discord_server, world.ja_member, "intro show", member=world.member)
    assert "Company" not in embed_fields(other) and "会社" not in embed_fields(other)
    menu = await (await discord_server.user_command(world.admin, "View intro", world.member)).reply()
    assert menu.ephemeral and "Company" not in embed_fields(menu) and menu.embeds[0]["title"] == "ben"
    nobody = await ask(discord_server, world.member, "intro show", member=world.ja_member)
    assert "chie has not introduced themselves yet" in nobody.text
    mine = await ask(discord_server, world.ja_member, "intro show", locale="ja")
    assert "まだプロフィールがありません" in mine.text


async def test_a_profile_is_saved_even_where_the_card_cannot_be_posted(
        discord_server: FakeDiscord, world: World, bot_runner: BotRunner) -> None:
    intro = world.guild.channel_named("introductions")
    intro.overwrites.append(Overwrite(discord_server.bot_user.id, 1, allow=0, deny=Perm.SEND_MESSAGES))
    await bot_runner.start()
    await use_channel(discord_server, world, "introductions", "introductions")
    opened = await discord_server.slash(world.member, "intro edit")
    first = await (await discord_server.submit(opened, {"company": "Olympus"})).reply()
    assert "Your profile is saved, but I could not post your card" in first.text and "Send Messages" in first.text
    assert bot_messages(discord_server, intro) == []
    shown = await ask(discord_server, world.member, "intro show")
    assert embed_fields(shown)["Company"] == "Olympus"


@pytest.mark.parametrize("field", ["display_name", "company", "role", "industry", "location"])
async def test_hostile_text_in_step_one_is_stored_intact_or_refused(
        discord_server: FakeDiscord, world: World, bot_runner: BotRunner, field: str) -> None:
    await bot_runner.start()
    await use_channel(discord_server, world, "introductions", "introductions")
    limit = {"display_name": 80, "company": 100, "role": 100, "industry": 60, "location": 100}[field]
    text = (HOSTILE * 5)[:limit]
    values = {"display_name": "Ben", "company": "Olympus", field: text}
    opened = await discord_server.slash(world.member, "intro edit")
    reply = await (await discord_server.submit(opened, values)).reply()
    assert reply.ephemeral
    with sqlite3.connect(bot_runner.database_path) as db:
        stored = db.execute(f"SELECT {field} FROM intro_profiles").fetchone()[0]
    assert stored == text.strip()
    # Past the limit (a modified client): refused clearly, nothing changed.
    opened = await discord_server.slash(world.member, "intro edit")
    with pytest.raises(AssertionError):
        await discord_server.submit(opened, {field: "x" * (limit + 1)})  # the Discord client would not send it
    if field in ("display_name", "company"):
        opened = await discord_server.slash(world.member, "intro edit")
        empty = await (await discord_server.submit(opened, {field: "\u200b\u200f"})).reply()
        assert empty.ephemeral and "can't be empty" in empty.text


async def test_hostile_text_in_step_two_is_stored_intact_or_refused(
        discord_server: FakeDiscord, world: World, bot_runner: BotRunner) -> None:
    await bot_runner.start()
    intro = await use_channel(discord_server, world, "introductions", "introductions")
    opened = await discord_server.slash(world.member, "intro edit")
    first = await (await discord_server.submit(opened, {"company": "Olympus"})).reply()
    await _settle()
    bio = (HOSTILE * 20)[:1000]
    opened = await discord_server.click(world.member, first, f"intro:step:{world.guild.id}:more")
    second = await (await discord_server.submit(opened, {"offer": HOSTILE, "seek": HOSTILE, "bio": bio,
                                                         "interests": "@everyone, **AI**"})).reply()
    assert second.ephemeral and "Saved" in second.text
    (card,) = bot_messages(discord_server, intro)
    assert bio.strip() in card.embeds[0]["description"] and embed_fields(card)["What I can offer"] == HOSTILE.strip()
    await _settle()
    opened = await discord_server.click(world.member, first, f"intro:step:{world.guild.id}:more")
    bad = await (await discord_server.submit(opened, {"timezone": "Mars/Base", "bio": "x"})).reply()
    assert "is not a time zone I know" in bad.text
    await _settle()
    opened = await discord_server.click(world.member, first, f"intro:step:{world.guild.id}:more")
    many = await (await discord_server.submit(opened, {"timezone": "", "interests": ",".join("abcdefghijkl")})).reply()
    assert "keep to 10 at most" in many.text


# ---------------------------------------------------------------------- the introductions channel


async def test_a_free_form_introduction_counts_and_becomes_a_profile(
        discord_server: FakeDiscord, world: World, running_bot: KakehashiBot) -> None:
    intro = await use_channel(discord_server, world, "introductions", "introductions")
    written = await discord_server.send_message(world.member, intro, "Hi all!\nCompany: Olympus\nRole: Engineer")
    await discord_server.wait_until(lambda: bool(discord_server.dms(world.member.user)), 10, "the offer by DM")
    assert written.reactions.get("\N{WAVING HAND SIGN}") == {discord_server.bot_user.id}
    (offer,) = discord_server.dms(world.member.user)
    button = f"intro:draft:{world.guild.id}:{world.member.id}"
    assert offer.custom_ids == [button] and "Company" in offer.content
    await _settle()
    opened = await discord_server.click(world.member, offer, button)
    modal = await opened.modal()
    prefilled = modal_values(modal)
    assert prefilled["company"] == "Olympus" and prefilled["role"] == "Engineer"
    saved = await (await discord_server.submit(opened, {})).reply()
    assert "Olympus" in saved.text
    # A second message neither gets a reaction nor another offer.
    later = await discord_server.send_message(world.member, intro, "Company: Sony")
    await _settle()
    assert later.reactions == {} and len(discord_server.dms(world.member.user)) == 1
    stats = await ask(discord_server, world.admin, "stats")
    assert "1 of 4 members" in stats.text  # the server's owner, aiko, ben, chie; not the bot


async def test_with_dms_closed_the_offer_is_a_reply_that_goes_away_after_ten_minutes(
        discord_server: FakeDiscord, world: World, running_bot: KakehashiBot, clock: FakeClock) -> None:
    intro = await use_channel(discord_server, world, "introductions", "introductions")
    world.member.user.dm_open = False
    discord_server.expected_pings.add(world.member.id)
    written = await discord_server.send_message(world.member, intro, "Company: Olympus")
    await discord_server.wait_until(lambda: len(bot_messages(discord_server, intro)) == 1, 10, "the reply")
    await _settle()  # the bot records the reply once Discord has answered
    (reply,) = bot_messages(discord_server, intro)
    assert reply.replied_to is written and reply.mentions == [world.member.id]
    clock.advance(timedelta(minutes=9))
    running_bot.outbox.kick()
    await _settle()
    assert not reply.deleted
    clock.advance(timedelta(minutes=2))
    running_bot.outbox.kick()
    await discord_server.wait_until(lambda: reply.deleted, 10, "the reply deleted")


# ---------------------------------------------------------------------- reminders


async def join_days_ago(server: FakeDiscord, world: World, clock: FakeClock, name: str, *,
                        dm_open: bool = True) -> Member:
    member = await server.member_join(world.guild, name, dm_open=dm_open)
    await _settle()
    return member


async def test_one_reminder_by_dm_after_the_delay(discord_server: FakeDiscord, world: World,
                                                  running_bot: KakehashiBot, clock: FakeClock) -> None:
    await ask(discord_server, world.admin, "config welcome", mode="off")
    await ask(discord_server, world.admin, "config reminders", after_days=3, enabled=True)
    newcomer = await join_days_ago(discord_server, world, clock, "fumi")
    clock.advance(timedelta(days=4))
    for _ in range(3):
        running_bot.outbox.kick()
        await _settle()
    await discord_server.wait_until(lambda: bool(discord_server.dms(newcomer.user)), 10, "the reminder")
    clock.advance(timedelta(days=10))
    running_bot.outbox.kick()
    await _settle()
    (nudge,) = discord_server.dms(newcomer.user)
    assert "haven't introduced yourself" in nudge.content and nudge.custom_ids == [f"intro:start:{world.guild.id}"]


async def test_with_dms_closed_one_mention_in_the_welcome_channel_and_none_after_leaving(
        discord_server: FakeDiscord, world: World, running_bot: KakehashiBot, clock: FakeClock) -> None:
    welcome = await use_channel(discord_server, world, "welcome", "welcome")
    await ask(discord_server, world.admin, "config welcome", mode="off")
    await ask(discord_server, world.admin, "config reminders", after_days=3, enabled=True)
    closed = await join_days_ago(discord_server, world, clock, "goro", dm_open=False)
    leaver = await join_days_ago(discord_server, world, clock, "hana")
    discord_server.expected_pings.add(closed.id)
    await discord_server.member_leave(leaver)
    await _settle()
    clock.advance(timedelta(days=4))
    running_bot.outbox.kick()
    await discord_server.wait_until(lambda: bool(bot_messages(discord_server, welcome)), 10, "the mention")
    clock.advance(timedelta(days=4))
    running_bot.outbox.kick()
    await _settle()
    (mention,) = bot_messages(discord_server, welcome)
    assert mention.mentions == [closed.id]
    assert discord_server.dms(leaver.user) == []


async def test_a_welcome_discord_refuses_is_told_to_the_admins_once_and_again_after_one_got_through(
        discord_server: FakeDiscord, world: World, running_bot: KakehashiBot) -> None:
    welcome = await use_channel(discord_server, world, "welcome", "welcome")
    log_channel = await use_channel(discord_server, world, "log", "mod-log")
    await ask(discord_server, world.admin, "config welcome", mode="channel")
    refusal = Overwrite(world.guild.role_named("Kakehashi").id, 0, deny=Perm.SEND_MESSAGES)
    welcome.overwrites.append(refusal)   # taken away on Discord's side: the bot learns when it is refused

    def reports() -> list[Message]:
        return [m for m in bot_messages(discord_server, log_channel) if "Welcomes:" in m.content]

    for name in ("iku", "jun"):
        newcomer = await discord_server.member_join(world.guild, name)
        discord_server.expected_pings.add(newcomer.id)
        await discord_server.wait_until(lambda: bool(reports()), 10, "the report in the log channel")
        await _settle()
    (report,) = reports()   # once, not at every member
    assert welcome.mention in report.content and "Send Messages" in report.content
    assert "Discord 403 · 50013" in report.content and report.mentions == []
    assert bot_messages(discord_server, welcome) == []
    welcome.overwrites.remove(refusal)   # fixed: the next member is welcomed
    greeted = await discord_server.member_join(world.guild, "kei")
    discord_server.expected_pings.add(greeted.id)
    await discord_server.wait_until(lambda: bool(bot_messages(discord_server, welcome)), 10, "the welcome")
    welcome.overwrites.append(refusal)   # broken again after it worked: told again
    late = await discord_server.member_join(world.guild, "ryo")
    discord_server.expected_pings.add(late.id)
    await discord_server.wait_until(lambda: len(reports()) == 2, 10, "the second report")


# ---------------------------------------------------------------------- the member's own data


async def test_delete_leaves_no_trace_in_the_database_and_export_holds_every_field(
        discord_server: FakeDiscord, world: World, bot_runner: BotRunner) -> None:
    await bot_runner.start()
    intro = await use_channel(discord_server, world, "introductions", "introductions")
    opened = await discord_server.slash(world.member, "intro edit")
    await fill_profile(discord_server, world.member, opened, company="Zuiko Optical Works", bio="Bio Benedetto",
                       display_name="Benedikt Okonkwo")
    await discord_server.send_message(world.member, intro, "Hello from Zuiko")
    await _settle()
    (card,) = bot_messages(discord_server, intro)

    exported = await (await discord_server.slash(world.member, "intro export")).reply()
    assert exported.ephemeral
    (attachment,) = exported.files
    data = json.loads(attachment.content)
    profile = data["profile"]
    assert {k: profile[k] for k in ("company", "role", "industry", "location", "timezone", "interests", "offer",
                                    "seek", "bio")} == {
        "company": "Zuiko Optical Works", "role": "Sales", "industry": "Medical devices", "location": "Tokyo",
        "timezone": "Asia/Tokyo", "interests": ["Supply chains", "AI"], "offer": "Advice on Japan",
        "seek": "Partners in Vietnam", "bio": "Bio Benedetto"}
    assert profile["display_name"] == "Benedikt Okonkwo" and data["membership"]["intro_message_id"] is not None

    confirm = await ask(discord_server, world.member, "intro delete")
    await _settle()
    kept = await discord_server.click(world.member, confirm, f"intro:forget:{world.guild.id}:no")
    await kept.response()
    assert "Nothing was deleted" in confirm.text
    confirm = await ask(discord_server, world.member, "intro delete")
    await _settle()
    done = await discord_server.click(world.member, confirm, f"intro:forget:{world.guild.id}:yes")
    await discord_server.wait_until(lambda: "Done" in confirm.text, 10, "the deletion")
    await done.response()
    assert card.deleted
    raw = database_bytes(bot_runner.database_path)
    for trace in (str(world.member.id).encode(), struct.pack(">q", world.member.id), b"Zuiko", b"zuiko",
                  b"Benedetto", b"Benedikt Okonkwo"):
        assert trace not in raw, trace
    shown = await ask(discord_server, world.admin, "intro show", member=world.member)
    assert "ben has not introduced themselves yet" in shown.text


async def test_the_welcome_button_works_after_a_restart(discord_server: FakeDiscord, world: World,
                                                        bot_runner: BotRunner) -> None:
    await bot_runner.start()
    welcome = await use_channel(discord_server, world, "welcome", "welcome")
    newcomer = await discord_server.member_join(world.guild, "ines", locale="ja")
    discord_server.expected_pings.add(newcomer.id)
    await discord_server.wait_until(lambda: bool(bot_messages(discord_server, welcome)), 10, "a welcome")
    await bot_runner.restart()
    (greeting,) = bot_messages(discord_server, welcome)
    opened = await discord_server.click(newcomer, greeting, f"intro:start:{world.guild.id}")
    modal = await opened.modal()
    assert modal["title"] == "プロフィール（1/2）"  # the member's language
    saved = await (await discord_server.submit(opened, {"company": "株式会社オリンパス"})).reply()
    assert "保存しました" in saved.text


async def test_a_member_who_leaves_is_hidden_at_once_and_erased_after_thirty_days(
        discord_server: FakeDiscord, world: World, running_bot: KakehashiBot, clock: FakeClock) -> None:
    intro = await use_channel(discord_server, world, "introductions", "introductions")
    opened = await discord_server.slash(world.member, "intro edit")
    await (await discord_server.submit(opened, {"company": "Olympus"})).reply()
    (card,) = bot_messages(discord_server, intro)
    await discord_server.member_leave(world.member)
    await _settle()
    shown = await ask(discord_server, world.admin, "intro show", member=world.member)
    assert "ben has not introduced themselves yet" in shown.text
    profile = await running_bot.intros.profile(world.guild.id, world.member.id)
    assert profile is not None and not profile.active
    clock.advance(timedelta(days=29))
    running_bot.outbox.kick()
    await _settle()
    assert not card.deleted
    clock.advance(timedelta(days=2))
    running_bot.outbox.kick()
    await discord_server.wait_until(lambda: card.deleted, 10, "the card deleted")
    assert await running_bot.intros.profile(world.guild.id, world.member.id) is None


async def test_company_aliases_are_set_listed_and_removed(discord_server: FakeDiscord, world: World,
                                                          running_bot: KakehashiBot) -> None:
    reply = await ask(discord_server, world.admin, "config company-alias", alias="ソニー", company="Sony Corporation")
    assert "Joined: ソニー → Sony Corporation" in reply.text
    again = await ask(discord_server, world.admin, "config company-alias", alias="ソニー株式会社", company="SONY")
    assert "Already joined" in again.text
    same = await ask(discord_server, world.admin, "config company-alias", alias="Sony Corp.", company="SONY")
    assert "already count as one company" in same.text
    shown = await ask(discord_server, world.admin, "config show")
    assert "ソニー → Sony Corporation" in shown.text and "company alias" in shown.text
    for name, company in ((world.member, "SONY"), (world.ja_member, "ソニー株式会社"), (world.admin, "Sony Corp.")):
        opened = await discord_server.slash(name, "intro edit")
        await (await discord_server.submit(opened, {"company": company})).reply()
    stats = await ask(discord_server, world.admin, "stats")
    assert "Distinct companies\n1\n" in stats.text
    removed = await ask(discord_server, world.admin, "config company-alias", alias="ソニー")
    assert "is removed" in removed.text
    stats = await ask(discord_server, world.admin, "stats")
    assert "Distinct companies\n2\n" in stats.text
    with pytest.raises(AssertionError):  # the Discord client keeps to the option's length
        await discord_server.slash(world.admin, "config company-alias", alias="x" * 5000, company="Sony")


async def test_members_cannot_use_admin_commands(discord_server: FakeDiscord, world: World,
                                                 running_bot: KakehashiBot) -> None:
    for command, options in (("stats", {}), ("config reminders", {"enabled": True})):
        with pytest.raises(CommandNotAvailable):
            await discord_server.slash(world.member, command, **options)


async def test_members_editing_at_once_each_keep_their_own_form_and_changes(
        discord_server: FakeDiscord, world: World, bot_runner: BotRunner) -> None:
    await bot_runner.start()
    intro = await use_channel(discord_server, world, "introductions", "introductions")
    ben = await discord_server.slash(world.member, "intro edit")
    chie = await discord_server.slash(world.ja_member, "intro edit")
    await ben.modal()
    await chie.modal()
    saved = await asyncio.gather(discord_server.submit(chie, {"company": "Sony"}),
                                 discord_server.submit(ben, {"company": "Olympus"}))
    first_chie, first_ben = [await s.reply() for s in saved]
    assert "Sony" in first_chie.text and "Olympus" in first_ben.text
    assert sorted(embed_fields(card)["会社" if "会社" in embed_fields(card) else "Company"]
                  for card in bot_messages(discord_server, intro)) == ["Olympus", "Sony"]
    # Three quick choices, sent before any is answered, all stay.
    await _settle()
    guild_id = world.guild.id
    chosen = await asyncio.gather(
        discord_server.select(world.member, first_ben, f"intro:visibility:{guild_id}", ["matches"]),
        discord_server.select(world.member, first_ben, f"intro:open:{guild_id}", ["no"]),
        discord_server.select(world.member, first_ben, f"intro:languages:{guild_id}", ["other"]))
    for interaction in chosen:
        await interaction.response()
    await _settle()
    with sqlite3.connect(bot_runner.database_path) as db:
        row = db.execute("SELECT company_visibility, open_to_intros, languages FROM intro_profiles "
                         "WHERE user_id = ?", (world.member.id,)).fetchone()
    assert row == ("matches", 0, '["other"]')
    (ben_card,) = [c for c in bot_messages(discord_server, intro) if f"<@{world.member.id}>" in c.text]
    assert "Company" not in embed_fields(ben_card)
