"""The shared machinery, end to end: the error path, modals, persistent buttons, gateway events,
and the rules the fake Discord enforces (answer within 3 s and once, 2,000 characters, DMs closed)."""

from __future__ import annotations

import logging

import aiohttp
import pytest

from bot.client import KakehashiBot
from playground.fakediscord import FakeDiscord
from tests.e2e.conftest import BotRunner, World
from tests.e2e.probe import Probe


@pytest.fixture
async def probed_bot(bot_runner: BotRunner) -> KakehashiBot:
    return await bot_runner.start(extra_cogs=(Probe,))


def probe_of(bot: KakehashiBot) -> Probe:
    cog = bot.get_cog("Probe")
    assert isinstance(cog, Probe)
    return cog


async def test_user_error_on_a_fresh_interaction_is_ephemeral_in_the_member_language(
        discord_server: FakeDiscord, world: World, probed_bot: KakehashiBot) -> None:
    english = await (await discord_server.slash(world.member, "probe user-error")).reply()
    japanese = await (await discord_server.slash(world.ja_member, "probe user-error")).reply()
    assert english.ephemeral and english.content == "You can't use this command here."
    assert japanese.ephemeral and japanese.content == "ここではこのコマンドを使えません。"


async def test_user_error_after_a_defer_replaces_the_thinking_message_privately(
        discord_server: FakeDiscord, world: World, probed_bot: KakehashiBot) -> None:
    interaction = await discord_server.slash(world.ja_member, "probe user-error", deferred=True)
    reply = await interaction.reply()
    assert interaction.callback_type == 5  # deferred first
    assert reply is interaction.original and reply.ephemeral
    assert reply.content == "ここではこのコマンドを使えません。"
    assert interaction.followups == []


async def test_user_error_on_an_expired_interaction_reaches_the_member_by_dm(
        discord_server: FakeDiscord, world: World, probed_bot: KakehashiBot) -> None:
    # Sixteen minutes old: its token is dead, so only a DM can still reach the member.
    interaction = await discord_server.slash(world.ja_member, "probe user-error", age=16 * 60)
    interaction.expect_no_answer = True
    await discord_server.wait_until(lambda: discord_server.dms(world.ja_member.user) != [], 5, "a DM")
    assert [m.content for m in discord_server.dms(world.ja_member.user)] == ["ここではこのコマンドを使えません。"]
    assert not interaction.answered


async def test_an_answer_later_than_three_seconds_is_refused_and_the_member_told_by_dm(
        discord_server: FakeDiscord, world: World, probed_bot: KakehashiBot) -> None:
    interaction = await discord_server.slash(world.member, "probe slow", seconds=3.3)
    interaction.expect_no_answer = True
    await discord_server.wait_until(lambda: discord_server.dms(world.member.user) != [], 8, "a DM")
    refused = discord_server.calls_to("POST", rf"/interactions/{interaction.id}/.*/callback")
    assert [c.status for c in refused] == [404]
    assert discord_server.dms(world.member.user)[0].content == "finally"


async def test_expired_interaction_and_closed_dms_are_logged_not_crashed(
        discord_server: FakeDiscord, world: World, probed_bot: KakehashiBot,
        caplog: pytest.LogCaptureFixture) -> None:
    world.member.user.dm_open = False
    with caplog.at_level(logging.INFO, logger="bot"):
        interaction = await discord_server.slash(world.member, "probe user-error", age=16 * 60)
        interaction.expect_no_answer = True
        await discord_server.wait_until(
            lambda: any(c.status == 403 for c in discord_server.calls_to("POST", r"/channels/\d+/messages")), 5,
            "the refused DM")
        await discord_server.wait_until(lambda: "Could not DM user" in caplog.text, 2, "the log line")
    still = await (await discord_server.slash(world.admin, "probe say", text="alive")).reply()
    assert still.content == "alive"


async def test_unexpected_error_is_logged_with_the_command_and_apologised_for(
        discord_server: FakeDiscord, world: World, probed_bot: KakehashiBot,
        caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="bot"):
        reply = await (await discord_server.slash(world.ja_member, "probe crash")).reply()
    assert reply.ephemeral and reply.content.startswith("申し訳ありません")
    record = next(r for r in caplog.records if "Unexpected error" in r.getMessage())
    assert "/probe crash" in record.getMessage() and record.exc_info is not None
    after = await (await discord_server.slash(world.member, "probe say", text="still here")).reply()
    assert after.content == "still here"


async def test_modal_submit_is_built_from_the_modal_the_bot_sent(
        discord_server: FakeDiscord, world: World, probed_bot: KakehashiBot) -> None:
    opened = await discord_server.slash(world.member, "probe modal")
    modal = await opened.modal()
    assert modal["title"] == "Probe"
    submitted = await discord_server.submit(opened, {"First": "一つ目", "Second": "two\nlines"})
    reply = await submitted.reply()
    assert reply.content == "got '一つ目' and 'two\\nlines'"


async def test_modal_errors_take_the_error_path(discord_server: FakeDiscord, world: World,
                                                probed_bot: KakehashiBot) -> None:
    opened = await discord_server.slash(world.member, "probe modal")
    reply = await (await discord_server.submit(opened, {"First": "fail"})).reply()
    assert reply.ephemeral and reply.content.startswith("Sorry, something went wrong")


async def test_a_form_the_bot_no_longer_routes_is_answered_open_it_again_in_the_members_language(
        discord_server: FakeDiscord, world: World, probed_bot: KakehashiBot) -> None:
    for member, expected in ((world.member, "This form is no longer open"),
                             (world.ja_member, "このフォームはもう受け付けられません")):
        opened = await discord_server.slash(member, "probe retired-form")
        reply = await (await discord_server.submit(opened, {"first": "typed"})).reply()
        assert reply.ephemeral and reply.text.startswith(expected)


async def test_the_fake_refuses_what_the_discord_client_would_not_submit(
        discord_server: FakeDiscord, world: World, probed_bot: KakehashiBot) -> None:
    opened = await discord_server.slash(world.member, "probe modal")
    with pytest.raises(AssertionError, match="max_length"):
        await discord_server.submit(opened, {"First": "x" * 21})
    with pytest.raises(AssertionError, match="required"):
        await discord_server.submit(opened, {"Second": "only the optional one"})


async def test_persistent_button_works_after_a_restart(
        discord_server: FakeDiscord, world: World, bot_runner: BotRunner) -> None:
    await bot_runner.start(extra_cogs=(Probe,))
    general = world.guild.channel_named("general")
    await (await discord_server.slash(world.member, "probe button", where=general, n=7)).reply()
    posted = next(m for m in discord_server.channel_messages(general) if m.content == "button 7")
    assert posted.custom_ids == ["probe:echo:7"]
    first = await (await discord_server.click(world.member, posted, "probe:echo:7")).reply()
    assert first.content == "echo 7"

    await bot_runner.restart(extra_cogs=(Probe,))
    again = await (await discord_server.click(world.ja_member, posted, "probe:echo:7")).reply()
    assert again.content == "echo 7"


async def test_button_errors_take_the_error_path(discord_server: FakeDiscord, world: World,
                                                 probed_bot: KakehashiBot) -> None:
    general = world.guild.channel_named("general")
    await (await discord_server.slash(world.member, "probe button", where=general, n=0)).reply()
    posted = next(m for m in discord_server.channel_messages(general) if m.content == "button 0")
    reply = await (await discord_server.click(world.ja_member, posted, "probe:echo:0")).reply()
    assert reply.ephemeral and reply.content == "ここではこのコマンドを使えません。"


async def test_member_joins_and_messages_reach_the_bot(discord_server: FakeDiscord, world: World,
                                                       probed_bot: KakehashiBot) -> None:
    newcomer = await discord_server.member_join(world.guild, "emi")
    await discord_server.send_message(newcomer, world.guild.channel_named("introductions"), "Hello, I am Emi")
    probe = probe_of(probed_bot)
    await discord_server.wait_until(lambda: len(probe.events) == 2, 5, "both events")
    assert probe.events == [("join", newcomer.id), ("message", (newcomer.id, "Hello, I am Emi"))]
    guild = probed_bot.get_guild(world.guild.id)
    assert guild is not None and guild.get_member(newcomer.id) is not None


async def test_over_2000_characters_is_refused_by_the_fake_and_apologised_for(
        discord_server: FakeDiscord, world: World, probed_bot: KakehashiBot) -> None:
    interaction = await discord_server.slash(world.member, "probe say", text="x" * 2001)
    reply = await interaction.reply()
    attempts = discord_server.calls_to("POST", rf"/interactions/{interaction.id}/.*/callback")
    assert [c.status for c in attempts] == [400, 200]
    assert reply.content.startswith("Sorry, something went wrong")


async def test_an_interaction_can_be_answered_only_once(discord_server: FakeDiscord, world: World,
                                                        probed_bot: KakehashiBot) -> None:
    interaction = await discord_server.slash(world.member, "probe say", text="once")
    await interaction.reply()
    url = f"{discord_server.rest_url}/interactions/{interaction.id}/{interaction.token}/callback"
    async with aiohttp.ClientSession() as session, \
            session.post(url, json={"type": 4, "data": {"content": "twice"}}) as response:
        assert response.status == 400
        assert (await response.json())["code"] == 40060


async def test_nothing_the_bot_sends_pings_anyone(discord_server: FakeDiscord, world: World,
                                                  probed_bot: KakehashiBot) -> None:
    text = f"@everyone <@{world.member.id}> <@&{world.guild.role_named('Admin').id}> @here"
    reply = await (await discord_server.slash(world.admin, "probe say", text=text, public=True)).reply()
    assert reply.content == text and not reply.ephemeral
    assert reply.mentions == [] and reply.mention_roles == [] and not reply.mention_everyone


async def test_a_button_can_update_the_message_it_is_on(discord_server: FakeDiscord, world: World,
                                                        probed_bot: KakehashiBot) -> None:
    general = world.guild.channel_named("general")
    await (await discord_server.slash(world.member, "probe button", where=general, n=1)).reply()
    posted = next(m for m in discord_server.channel_messages(general) if m.content == "button 1")
    clicked = await discord_server.click(world.member, posted, "probe:echo:1")
    await discord_server.wait_until(lambda: posted.content == "button 1, pressed", 5, "the edit")
    assert clicked.callback_type == 6 and clicked.original is posted and posted.components == []


async def test_events_during_a_gateway_outage_arrive_after_the_bot_resumes(
        discord_server: FakeDiscord, world: World, probed_bot: KakehashiBot) -> None:
    await discord_server.drop_connection()
    newcomer = await discord_server.member_join(world.guild, "emi")  # while the bot is away
    await discord_server.wait_until(lambda: discord_server.resume_count == 1, 10, "the bot to resume")
    probe = probe_of(probed_bot)
    await discord_server.wait_until(lambda: ("join", newcomer.id) in probe.events, 5, "the replayed join")
    assert discord_server.identify_count == 1
    reply = await (await discord_server.slash(world.member, "probe say", text="back")).reply()
    assert reply.content == "back"
