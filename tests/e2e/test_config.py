"""/config end to end: the real bot, the fake Discord, what Discord would have received."""

from __future__ import annotations

import sqlite3
import unicodedata

import pytest

from bot.client import KakehashiBot
from playground.fakediscord import CommandNotAvailable, FakeDiscord, Member, Message, Overwrite, Perm
from tests.e2e.conftest import BotRunner, World
from tests.e2e.probe import Probe

CONFIG_CALLS = {
    "config show": {},
    "config channel": {"purpose": "prompts"},
    "config timezone": {"name": "Asia/Tokyo"},
    "config language": {"code": "ja"},
}


def audit_rows(bot_runner: BotRunner) -> list[tuple[int, int, str, str | None, str | None]]:
    with sqlite3.connect(bot_runner.database_path) as db:
        return db.execute(
            "SELECT guild_id, actor_id, setting, old_value, new_value FROM config_audit ORDER BY id"
        ).fetchall()


def fields(reply: Message) -> dict[str, str]:
    """The /config show embed as {field name: value}."""
    (embed,) = reply.embeds
    return {field["name"]: field["value"] for field in embed["fields"]}


async def reply_to(server: FakeDiscord, member: Member, command: str, **options: object) -> str:
    reply = await (await server.slash(member, command, **options)).reply()
    assert reply.ephemeral, f"/{command} answered publicly: {reply.text!r}"
    assert len(reply.content) <= 2000
    return reply.text


# ---------------------------------------------------------------------- start-up and sync


async def test_bot_logs_in_and_syncs_its_commands_with_japanese_descriptions(
        discord_server: FakeDiscord, running_bot: KakehashiBot) -> None:
    puts = discord_server.calls_to("PUT", r"/applications/{app}/commands")
    assert len(puts) == 1 and puts[0].status == 200
    config = next(c for c in puts[0].json if c["name"] == "config")
    assert int(config["default_member_permissions"]) == Perm.MANAGE_GUILD
    assert config["contexts"] == [0] and config["integration_types"] == [0]  # in servers only
    assert config["description_localizations"]["ja"] == "このサーバーでの Kakehashi の設定（管理者向け）"
    channel = next(o for o in config["options"] if o["name"] == "channel")
    assert channel["description_localizations"]["ja"] == "用途ごとにボットが使うチャンネルを選びます"
    purpose = next(o for o in channel["options"] if o["name"] == "purpose")
    assert purpose["description_localizations"]["ja"] == "チャンネルの用途"
    assert {c["value"]: c["name_localizations"]["ja"] for c in purpose["choices"]}["prompts"] == "prompts: 議論のお題"

# The bot's top-level commands and context menus, as synced.
TOP_LEVEL = ("config", "prompts", "intro", "stats", "View intro", "match", "rounds", "Suggest an intro to…")


async def test_a_restart_with_unchanged_commands_does_not_sync_again(
        discord_server: FakeDiscord, bot_runner: BotRunner) -> None:
    await bot_runner.start()
    await bot_runner.restart()
    assert len(discord_server.calls_to("PUT", r"/applications/{app}/commands")) == 1
    assert discord_server.identify_count == 2


async def test_a_restart_with_changed_commands_syncs_again(discord_server: FakeDiscord,
                                                            bot_runner: BotRunner) -> None:
    await bot_runner.start()
    await bot_runner.restart(extra_cogs=(Probe,))  # the tree now has /probe as well
    puts = discord_server.calls_to("PUT", r"/applications/{app}/commands")
    assert [sorted(c["name"] for c in put.json) for put in puts] == [
        sorted(TOP_LEVEL), sorted([*TOP_LEVEL, "probe"])]


async def test_dev_guild_gets_the_commands_instead_of_a_global_sync(
        discord_server: FakeDiscord, world: World, bot_runner: BotRunner) -> None:
    await bot_runner.start(dev_guild_id=world.guild.id)
    assert discord_server.calls_to("PUT", r"/applications/{app}/commands") == []
    puts = discord_server.calls_to("PUT", rf"/applications/{{app}}/guilds/{world.guild.id}/commands")
    assert len(puts) == 1 and sorted(c["name"] for c in puts[0].json) == sorted(TOP_LEVEL)
    text = await reply_to(discord_server, world.admin, "config show")
    assert "Kakehashi settings for Nihonjin Professionals" in text


# ---------------------------------------------------------------------- who may configure


async def test_config_show_answers_an_admin_ephemerally(discord_server: FakeDiscord, world: World,
                                                       running_bot: KakehashiBot) -> None:
    text = await reply_to(discord_server, world.admin, "config show")
    assert "Kakehashi settings for Nihonjin Professionals" in text
    assert "English (default)" in text and "UTC (default)" in text
    assert "Discussion prompts**: not set" in text


async def test_discord_hides_config_from_members_without_manage_server(
        discord_server: FakeDiscord, world: World, running_bot: KakehashiBot) -> None:
    for command, options in CONFIG_CALLS.items():
        with pytest.raises(CommandNotAvailable):
            await discord_server.slash(world.member, command, **options)


@pytest.mark.parametrize("command", sorted(CONFIG_CALLS))
async def test_the_bot_refuses_config_to_non_admins_even_when_the_server_allows_it(
        discord_server: FakeDiscord, world: World, bot_runner: BotRunner, command: str) -> None:
    await bot_runner.start()
    # A server admin opened /config to @everyone in Server Settings → Integrations.
    discord_server.allow_command(world.guild, "config", world.guild.id)
    english = await reply_to(discord_server, world.member, command, **CONFIG_CALLS[command])
    japanese = await reply_to(discord_server, world.ja_member, command, **CONFIG_CALLS[command])
    assert english == "You need the Manage Server permission to use this command."
    assert japanese == "このコマンドを使うには「サーバー管理」の権限が必要です。"
    assert audit_rows(bot_runner) == []


# ---------------------------------------------------------------------- channels


async def test_channels_of_fitting_kinds_are_stored_and_audited(
        discord_server: FakeDiscord, world: World, bot_runner: BotRunner) -> None:
    await bot_runner.start()
    forum = world.guild.channel_named("discussions")
    welcome = world.guild.channel_named("announcements")
    text = await reply_to(discord_server, world.admin, "config channel", purpose="prompts", channel=forum)
    assert text == f"Discussion prompts will go to {forum.mention} (before: not set)."
    text = await reply_to(discord_server, world.admin, "config channel", purpose="welcome", channel=welcome)
    assert text == f"Welcome messages will go to {welcome.mention} (before: not set)."
    text = await reply_to(discord_server, world.admin, "config channel", purpose="welcome", channel=welcome)
    assert text == f"Welcome messages already go to {welcome.mention}."
    text = await reply_to(discord_server, world.admin, "config channel", purpose="welcome")
    assert text == f"Welcome messages have no channel now (before: {welcome.mention})."
    assert audit_rows(bot_runner) == [
        (world.guild.id, world.admin.id, "channel.prompts", None, str(forum.id)),
        (world.guild.id, world.admin.id, "channel.welcome", None, str(welcome.id)),
        (world.guild.id, world.admin.id, "channel.welcome", str(welcome.id), None),
    ]


@pytest.mark.parametrize(("purpose", "channel_name", "kind", "offered"), [
    # The picker offers text, announcement and forum channels; the rest only a modified client sends.
    ("prompts", "Lounge", "a voice channel", False),
    ("prompts", "Community", "a category", False),
    ("prompts", "announcements", "an announcement channel", True),
    ("matches", "discussions", "a forum channel", True),
    ("introductions", "Lounge", "a voice channel", False),
])
async def test_a_channel_of_the_wrong_kind_is_refused(
        discord_server: FakeDiscord, world: World, bot_runner: BotRunner,
        purpose: str, channel_name: str, kind: str, offered: bool) -> None:
    await bot_runner.start()
    channel = world.guild.channel_named(channel_name)
    if not offered:
        with pytest.raises(AssertionError, match="picker does not offer"):
            await discord_server.slash(world.admin, "config channel", purpose=purpose, channel=channel)
    text = await reply_to(discord_server, world.admin, "config channel", purpose=purpose, channel=channel,
                          raw=not offered)
    assert text.startswith(f"{channel.mention} is {kind}. ")
    assert "need a text channel" in text
    assert audit_rows(bot_runner) == []


async def test_wrong_kind_is_explained_in_japanese(discord_server: FakeDiscord, world: World,
                                                   running_bot: KakehashiBot) -> None:
    voice = world.guild.channel_named("Lounge")
    text = await reply_to(discord_server, world.admin, "config channel", purpose="prompts", channel=voice,
                          locale="ja", raw=True)
    assert text == (f"{voice.mention} はボイスチャンネルです。"
                    "「議論のお題」にはテキストチャンネルかフォーラムチャンネルが必要です。")


async def test_the_admin_is_warned_when_the_bot_lacks_permissions_there(
        discord_server: FakeDiscord, world: World, bot_runner: BotRunner) -> None:
    bot_role = world.guild.role_named("Kakehashi")
    locked = discord_server.add_channel(world.guild, "locked", overwrites=(
        Overwrite(bot_role.id, 0, deny=Perm.SEND_MESSAGES | Perm.CREATE_PRIVATE_THREADS),))
    await bot_runner.start()
    text = await reply_to(discord_server, world.admin, "config channel", purpose="matches", channel=locked)
    assert text.splitlines() == [
        f"Match threads will go to {locked.mention} (before: not set).",
        f"⚠️ I can't work in {locked.mention} yet. Please give me: Send Messages, Create Private Threads, Embed Links.",
    ]
    shown = await reply_to(discord_server, world.admin, "config show")
    assert f"{locked.mention} ⚠️ I still need: Send Messages, Create Private Threads, Embed Links" in shown


async def test_a_deleted_channel_is_flagged_in_show(discord_server: FakeDiscord, world: World,
                                                    bot_runner: BotRunner) -> None:
    doomed = discord_server.add_channel(world.guild, "doomed")
    await bot_runner.start()
    await reply_to(discord_server, world.admin, "config channel", purpose="log", channel=doomed)
    del world.guild.channels[doomed.id]
    await bot_runner.restart()
    shown = await reply_to(discord_server, world.admin, "config show")
    assert f"{doomed.mention} ⚠️ not found" in shown


# ---------------------------------------------------------------------- time zone and language


async def test_timezone_autocomplete_offers_iana_names(discord_server: FakeDiscord, world: World,
                                                       running_bot: KakehashiBot) -> None:
    tokyo = await (await discord_server.autocomplete(world.admin, "config timezone", "name", name="tokyo")).choices()
    assert tokyo[0] == {"name": "Asia/Tokyo", "value": "Asia/Tokyo"}
    empty = await (await discord_server.autocomplete(world.admin, "config timezone", "name", name="")).choices()
    assert empty[0]["value"] == "Asia/Tokyo" and len(empty) <= 25
    huge = await (await discord_server.autocomplete(world.admin, "config timezone", "name",
                                                    name="a" * 5000, raw=True)).choices()
    assert huge == []


async def test_timezone_is_stored_canonically_and_shown_with_the_local_time(
        discord_server: FakeDiscord, world: World, bot_runner: BotRunner) -> None:
    await bot_runner.start()
    text = await reply_to(discord_server, world.admin, "config timezone", name="asia/tokyo")
    # The fake clock says 2026-11-02 09:00 UTC.
    assert text == "The server's time zone is now Asia/Tokyo (before: not set). It is 2026-11-02 18:00 there."
    assert audit_rows(bot_runner)[-1][2:] == ("timezone", None, "Asia/Tokyo")


@pytest.mark.parametrize("name", ["Mars/Olympus_Mons", "Tokyo", "", "x" * 5000, "Asia/Tokyo\u200b", "<@&1>"])
async def test_an_unknown_timezone_is_refused_clearly(discord_server: FakeDiscord, world: World,
                                                      bot_runner: BotRunner, name: str) -> None:
    await bot_runner.start()
    # Discord's client keeps to the option's 1–64 characters; a modified one need not.
    text = await reply_to(discord_server, world.admin, "config timezone", name=name, raw=True)
    assert "is not a time zone I know" in text and len(text) < 300
    assert audit_rows(bot_runner) == []


async def test_language_is_stored_and_refuses_other_codes(discord_server: FakeDiscord, world: World,
                                                          bot_runner: BotRunner) -> None:
    await bot_runner.start()
    text = await reply_to(discord_server, world.admin, "config language", code="ja")
    assert text == "My posts in this server will be in 日本語 (before: not set)."
    bad = await reply_to(discord_server, world.admin, "config language", code="fr" * 2500, raw=True)
    assert bad.startswith("“frfrfr") and "Choose English (en) or 日本語 (ja)." in bad
    assert audit_rows(bot_runner) == [(world.guild.id, world.admin.id, "language", None, "ja")]


async def test_an_unknown_purpose_of_5000_characters_is_refused(discord_server: FakeDiscord, world: World,
                                                                running_bot: KakehashiBot) -> None:
    general = world.guild.channel_named("general")
    text = await reply_to(discord_server, world.admin, "config channel", purpose="p" * 5000, channel=general,
                          raw=True)
    assert text.startswith("“ppp") and "is not a purpose I know" in text
    assert "prompts, introductions, matches, welcome, log" in text


# ---------------------------------------------------------------------- persistence, isolation, language


async def test_settings_persist_across_a_restart(discord_server: FakeDiscord, world: World,
                                                 bot_runner: BotRunner) -> None:
    forum = world.guild.channel_named("discussions")
    await bot_runner.start()
    await reply_to(discord_server, world.admin, "config channel", purpose="prompts", channel=forum)
    await reply_to(discord_server, world.admin, "config timezone", name="Europe/London")
    await reply_to(discord_server, world.admin, "config language", code="ja")

    await bot_runner.restart()
    shown = fields(await (await discord_server.slash(world.admin, "config show")).reply())
    assert shown["Language of the bot's posts"] == "日本語"
    assert shown["Time zone"] == "Europe/London"
    assert shown["Channels"].splitlines()[0] == f"**Discussion prompts**: {forum.mention}"
    assert "set the time zone: not set → Europe/London" in shown["Recent changes"]


async def test_settings_of_one_server_never_show_in_another(discord_server: FakeDiscord, world: World,
                                                            running_bot: KakehashiBot) -> None:
    forum = world.guild.channel_named("discussions")
    await reply_to(discord_server, world.admin, "config channel", purpose="prompts", channel=forum)
    await reply_to(discord_server, world.admin, "config timezone", name="Asia/Tokyo")
    other = await reply_to(discord_server, world.other_admin, "config show")
    assert "Kakehashi settings for Other Club" in other
    assert "Asia/Tokyo" not in other and str(forum.id) not in other
    assert "No changes yet." in other


async def test_replies_follow_the_member_locale_then_the_server_language(
        discord_server: FakeDiscord, world: World, running_bot: KakehashiBot) -> None:
    japanese = await reply_to(discord_server, world.admin, "config show", locale="ja")
    assert "Nihonjin Professionals の Kakehashi 設定" in japanese
    french = await reply_to(discord_server, world.admin, "config show", locale="fr")
    assert "Kakehashi settings for" in french
    await reply_to(discord_server, world.admin, "config language", code="ja")
    french_in_japanese_server = await reply_to(discord_server, world.admin, "config show", locale="fr")
    assert "Nihonjin Professionals の Kakehashi 設定" in french_in_japanese_server
    english = await reply_to(discord_server, world.admin, "config show", locale="en-GB")
    assert "Kakehashi settings for" in english


async def test_a_japanese_server_defaults_to_japanese_until_configured(
        discord_server: FakeDiscord, world: World, bot_runner: BotRunner) -> None:
    world.guild.preferred_locale = "ja"
    await bot_runner.start()
    text = await reply_to(discord_server, world.admin, "config show", locale="de")
    assert "ボットの投稿の言語" in text and "日本語（既定）" in text


@pytest.mark.parametrize("text", ["@everyone", "<@&1> <@1>", "**bold** `code`", "\u202eevil\u200b", "漢字とカタカナ"])
async def test_hostile_timezone_text_is_echoed_without_pinging_anyone(
        discord_server: FakeDiscord, world: World, running_bot: KakehashiBot, text: str) -> None:
    interaction = await discord_server.slash(world.admin, "config timezone", name=text)
    reply = await interaction.reply()
    assert reply.ephemeral and "is not a time zone I know" in reply.content
    assert reply.mentions == [] and reply.mention_roles == [] and not reply.mention_everyone
    # The echo keeps what is visible and drops invisible format characters that could garble it.
    assert not any(unicodedata.category(ch) == "Cf" for ch in reply.content)
    visible = "".join(ch for ch in text if unicodedata.category(ch) != "Cf")
    assert f"“{visible}”" in reply.content


async def test_a_japanese_server_reads_its_rounds_changes_and_lists_in_japanese(
        discord_server: FakeDiscord, world: World, bot_runner: BotRunner) -> None:
    bot_role = world.guild.role_named("Kakehashi")
    locked = discord_server.add_channel(world.guild, "locked", overwrites=(
        Overwrite(bot_role.id, 0, deny=Perm.SEND_MESSAGES | Perm.CREATE_PRIVATE_THREADS),))
    await bot_runner.start()
    await reply_to(discord_server, world.admin, "config language", code="ja")
    await reply_to(discord_server, world.admin, "config channel", purpose="matches", channel=locked)
    changed = await reply_to(discord_server, world.admin, "config rounds", locale="fr", cadence="biweekly",
                             weekday="friday", time="18:30", enabled=True, no_repeat_rounds=3, follow_up_days=7)
    assert "隔週、金曜日 18:30" in changed
    shown = fields(await (await discord_server.slash(world.admin, "config show", locale="fr")).reply())
    (line,) = [line for line in shown["最近の変更"].splitlines() if "マッチングラウンド" in line]
    assert ("毎週、月曜日 10:00、オフ。同じ組み合わせは6ラウンド空ける。フォローアップは5日後 → "
            "隔週、金曜日 18:30、オン。同じ組み合わせは3ラウンド空ける。フォローアップは7日後") in line
    assert "no repeat" not in line and "weekly" not in line
    needs = "メッセージを送信、プライベートスレッドを作成、埋め込みリンク"   # a Japanese list: 、
    assert f"{locked.mention} ⚠️ 必要な権限: {needs}" in shown["チャンネル"]
