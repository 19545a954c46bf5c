"""Discussion prompts end to end: posts in forums and text channels, the schedule, the language button,
crash safety, engagement and hostile input, as Discord would have received them."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from datetime import timedelta
from pathlib import Path

import pytest

from bot.client import KakehashiBot
from bot.prompts.essays import load_essays
from bot.prompts.split import split_message
from playground.clock import FakeClock
from playground.fakediscord import Channel, ChannelType, FakeDiscord, Message, Overwrite, Perm
from tests.e2e.conftest import BotRunner, World, ask, use_channel
from tests.e2e.test_cli import clean_env

ESSAYS = load_essays()
BODIES = {essay.body for essay in ESSAYS}


def bot_messages(server: FakeDiscord, channel: Channel) -> list[Message]:
    return [m for m in server.channel_messages(channel) if m.author.id == server.bot_user.id]


def essay_parts(server: FakeDiscord, thread: Channel, starter: Message | None = None) -> list[str]:
    """What the bot wrote in a prompt's thread after its first message, in order."""
    return [m.content for m in bot_messages(server, thread) if starter is None or m.id != starter.id]


def assert_complete_post(server: FakeDiscord, thread: Channel, starter: Message) -> str:
    parts = essay_parts(server, thread, starter)
    assert parts and all(len(part) <= 2000 for part in parts)
    body = "".join(parts)
    assert body in BODIES | {e.body for e in ESSAYS}
    return body


async def wait_for_threads(server: FakeDiscord, parent: Channel, count: int, timeout: float = 15) -> list[Channel]:
    await server.wait_until(lambda: len(server.threads(parent)) >= count, timeout,
                            f"{count} thread(s) in {parent.name}")
    return server.threads(parent)


async def wait_until_posted(server: FakeDiscord, bot_runner: BotRunner, count: int, timeout: float = 15) -> None:
    def posted() -> bool:
        with sqlite3.connect(bot_runner.database_path) as db:
            return db.execute("SELECT COUNT(*) FROM prompt_posts WHERE state = 'posted'").fetchone()[0] >= count
    await server.wait_until(posted, timeout, f"{count} finished prompt post(s)")


# ---------------------------------------------------------------------- posting


async def test_post_in_a_forum_that_requires_a_tag_makes_one_tagged_post_with_the_essay(
        discord_server: FakeDiscord, world: World, running_bot: KakehashiBot) -> None:
    forum = await use_channel(discord_server, world, "prompts", "discussions")
    reply = await ask(discord_server, world.admin, "prompts post")
    (thread,) = await wait_for_threads(discord_server, forum, 1)
    assert "Posted" in reply.text and thread.mention in reply.text
    essay = ESSAYS[0]
    assert thread.name == essay.title["en"]
    discussion_tag = next(t.id for t in forum.available_tags if t.name == "Discussion")
    assert thread.applied_tags == [discussion_tag]
    starter = discord_server.messages[thread.id]
    assert essay.summary["en"] in starter.content and all(q in starter.content for q in essay.questions["en"])
    assert starter.custom_ids == [f"prompt:lang:{1}:ja"]
    assert "".join(essay_parts(discord_server, thread, starter)) == essay.body
    assert all(len(m.content) <= 2000 for m in bot_messages(discord_server, thread))


async def test_post_in_a_text_channel_makes_one_message_and_one_thread_with_the_essay(
        discord_server: FakeDiscord, world: World, running_bot: KakehashiBot) -> None:
    general = await use_channel(discord_server, world, "prompts", "general")
    await ask(discord_server, world.admin, "config language", code="ja")
    essay = ESSAYS[1]
    reply = await ask(discord_server, world.admin, "prompts post", essay=f"essay:{essay.slug}")
    (thread,) = await wait_for_threads(discord_server, general, 1)
    assert "Posted" in reply.text  # the admin's own language (en-US), not the server's
    (first,) = [m for m in bot_messages(discord_server, general) if not m.ephemeral]
    assert discord_server.thread_for(first) == thread and thread.name == essay.title["ja"]
    assert essay.summary["ja"] in first.content and essay.title["ja"] in first.content
    assert first.custom_ids == [f"prompt:lang:{1}:en"]
    assert "".join(essay_parts(discord_server, thread)) == essay.body


async def test_post_by_title_in_japanese_and_an_unknown_name_gets_a_clear_error(
        discord_server: FakeDiscord, world: World, running_bot: KakehashiBot) -> None:
    forum = await use_channel(discord_server, world, "prompts", "discussions")
    choices = await (await discord_server.autocomplete(world.admin, "prompts post", "essay", essay="議論")).choices()
    assert choices == []  # no title contains that word
    choices = await (await discord_server.autocomplete(world.admin, "prompts post", "essay", essay="")).choices()
    assert {c["value"] for c in choices} == {f"essay:{e.slug}" for e in ESSAYS}
    assert all(e.title["ja"] in next(c["name"] for c in choices if c["value"] == f"essay:{e.slug}")
               or len(e.title["en"]) + len(e.title["ja"]) > 97 for e in ESSAYS)
    await ask(discord_server, world.admin, "prompts post", essay=ESSAYS[1].title["ja"])
    (thread,) = await wait_for_threads(discord_server, forum, 1)
    assert thread.name == ESSAYS[1].title["en"]

    reply = await ask(discord_server, world.admin, "prompts post", essay="@everyone no such essay\u200b")
    assert "I don't know a prompt called" in reply.text and "\u200b" not in reply.text
    reply = await ask(discord_server, world.admin, "prompts post", essay="存在しない", locale="ja")
    assert "というお題は見つかりません" in reply.text
    assert len(discord_server.threads(forum)) == 1


async def test_members_cannot_use_prompts_commands(discord_server: FakeDiscord, world: World,
                                                   running_bot: KakehashiBot) -> None:
    discord_server.allow_command(world.guild, "prompts", world.guild.id)  # the server opened it to everyone
    reply = await ask(discord_server, world.member, "prompts post")
    assert "Manage Server" in reply.text


# ---------------------------------------------------------------------- schedule


async def schedule_mondays(server: FakeDiscord, world: World) -> str:
    return (await ask(server, world.admin, "config prompts", weekday="monday", time="09:00", enabled=True)).text


async def next_week(clock: FakeClock, bot: KakehashiBot) -> None:
    clock.advance(timedelta(weeks=1))
    bot.outbox.kick()


async def test_two_scheduled_slots_post_two_essays_and_the_third_cycles(
        discord_server: FakeDiscord, world: World, bot_runner: BotRunner, clock: FakeClock) -> None:
    bot = await bot_runner.start()
    forum = await use_channel(discord_server, world, "prompts", "discussions")
    text = await schedule_mondays(discord_server, world)
    assert "every Monday at 09:00 (UTC)" in text
    titles = []
    for week in (1, 2, 3):
        await next_week(clock, bot)
        threads = await wait_for_threads(discord_server, forum, week)
        titles.append(threads[-1].name)
        # Finished before the next slot comes, as a week apart it is (a slot that comes while the last post
        # is still being made adds none: after downtime, one catch-up post, not one per missed week).
        await wait_until_posted(discord_server, bot_runner, week)
    assert titles == [ESSAYS[0].title["en"], ESSAYS[1].title["en"], ESSAYS[0].title["en"]]
    await wait_until_posted(discord_server, bot_runner, 3)
    for thread in discord_server.threads(forum):
        assert_complete_post(discord_server, thread, discord_server.messages[thread.id])


async def test_three_weeks_of_downtime_make_one_catch_up_post(
        discord_server: FakeDiscord, world: World, bot_runner: BotRunner, clock: FakeClock) -> None:
    await bot_runner.start()
    forum = await use_channel(discord_server, world, "prompts", "discussions")
    await schedule_mondays(discord_server, world)
    await bot_runner.stop()
    clock.advance(timedelta(weeks=3, hours=2))
    bot = await bot_runner.start()
    await wait_for_threads(discord_server, forum, 1)
    await wait_until_posted(discord_server, bot_runner, 1)
    bot.outbox.kick()
    await asyncio.sleep(0.5)  # a second pass finds nothing more to post
    assert len(discord_server.threads(forum)) == 1


async def test_schedule_shows_in_config_show_and_bad_times_are_refused(
        discord_server: FakeDiscord, world: World, running_bot: KakehashiBot) -> None:
    text = await schedule_mondays(discord_server, world)
    assert "No prompts channel is set yet" in text
    assert (await schedule_mondays(discord_server, world)).startswith("Nothing changed.")
    assert "Nothing changed" not in (await ask(discord_server, world.admin, "config prompts")).text  # just asking
    reply = await ask(discord_server, world.admin, "config show")
    (embed,) = reply.embeds
    schedule = next(f["value"] for f in embed["fields"] if f["name"] == "Discussion prompts")
    assert schedule.startswith("Every Monday at 09:00 (UTC)")
    for bad in ("25:00", "@everyone", "9\u200b:00"):
        reply = await ask(discord_server, world.admin, "config prompts", time=bad)
        assert "is not a time I understand" in reply.text and "\u200b" not in reply.text
    reply = await ask(discord_server, world.admin, "config prompts", enabled=False, locale="ja")
    assert "定期投稿はオフです" in reply.text
    history = next(f["value"] for f in (await ask(discord_server, world.admin, "config show")).embeds[0]["fields"]
                   if f["name"] == "Recent changes")
    assert "prompt schedule: Off → Monday 09:00" in history


# ---------------------------------------------------------------------- the language button


async def test_the_language_button_answers_in_the_other_language_after_a_restart(
        discord_server: FakeDiscord, world: World, bot_runner: BotRunner) -> None:
    await bot_runner.start()
    forum = await use_channel(discord_server, world, "prompts", "discussions")
    await ask(discord_server, world.admin, "prompts post")
    (thread,) = await wait_for_threads(discord_server, forum, 1)
    starter = discord_server.messages[thread.id]
    await bot_runner.restart()
    await asyncio.sleep(0.2)
    reply = await (await discord_server.click(world.member, starter, starter.custom_ids[0])).reply()
    essay = ESSAYS[0]
    assert reply.ephemeral
    assert essay.title["ja"] in reply.content and essay.summary["ja"] in reply.content
    assert all(q in reply.content for q in essay.questions["ja"])


# ---------------------------------------------------------------------- failures


async def test_a_channel_the_bot_cannot_post_in_is_reported_kept_and_posted_once_fixed(
        discord_server: FakeDiscord, world: World, bot_runner: BotRunner, clock: FakeClock) -> None:
    locked = discord_server.add_channel(world.guild, "locked", overwrites=(
        Overwrite(discord_server.bot_user.id, 1, deny=Perm.SEND_MESSAGES),))
    bot = await bot_runner.start()
    await use_channel(discord_server, world, "log", "mod-log")
    await use_channel(discord_server, world, "prompts", "locked")
    reply = await ask(discord_server, world.admin, "prompts post")
    assert "couldn't post" in reply.text and "Send Messages" in reply.text
    (report,) = bot_messages(discord_server, world.guild.channel_named("mod-log"))
    assert "couldn't post the discussion prompt" in report.content and locked.mention in report.content
    queue = await ask(discord_server, world.admin, "prompts queue")
    assert "Waiting to be posted" in queue.text and "Tried 1 times" in queue.text

    # A retry with the same fault is not reported again.
    clock.advance(timedelta(minutes=2))
    bot.outbox.kick()
    await discord_server.wait_until(lambda: post_attempts(bot_runner) == [2], 5, "a second attempt")
    assert len(bot_messages(discord_server, world.guild.channel_named("mod-log"))) == 1

    general = await use_channel(discord_server, world, "prompts", "general")
    clock.advance(timedelta(minutes=10))
    bot.outbox.kick()
    (thread,) = await wait_for_threads(discord_server, general, 1)
    await wait_until_posted(discord_server, bot_runner, 1)
    assert "".join(essay_parts(discord_server, thread)) == ESSAYS[0].body
    assert bot_messages(discord_server, locked) == []


def post_attempts(bot_runner: BotRunner) -> list[int]:
    with sqlite3.connect(bot_runner.database_path) as db:
        return [n for (n,) in db.execute("SELECT attempts FROM outbox WHERE kind = 'prompt.post' ORDER BY id")]


# ---------------------------------------------------------------------- queue, skip, add, stats


async def test_queue_skip_and_stats(discord_server: FakeDiscord, world: World, running_bot: KakehashiBot) -> None:
    forum = await use_channel(discord_server, world, "prompts", "discussions")
    queue = await ask(discord_server, world.admin, "prompts queue")
    assert queue.text.index(ESSAYS[0].title["en"]) < queue.text.index(ESSAYS[1].title["en"])
    assert "No schedule" in queue.text
    skip = await ask(discord_server, world.admin, "prompts skip")
    assert f"Skipped “{ESSAYS[0].title['en']}”" in skip.text and ESSAYS[1].title["en"] in skip.text
    await ask(discord_server, world.admin, "prompts post")
    (thread,) = await wait_for_threads(discord_server, forum, 1)
    assert thread.name == ESSAYS[1].title["en"]

    for member, words in ((world.member, "I agree"), (world.ja_member, "そう思います"), (world.member, "Also…")):
        await discord_server.send_message(member, thread, words)
    await discord_server.send_message(world.member, world.guild.channel_named("general"), "not in a prompt thread")

    def replies() -> tuple[int, int] | None:
        with sqlite3.connect(running_bot.storage.path) as db:
            return db.execute("SELECT replies, participants FROM prompt_posts").fetchone()
    await discord_server.wait_until(lambda: replies() == (3, 2), 5, "the replies to be counted")
    stats = await ask(discord_server, world.admin, "prompts stats")
    assert f"1. {thread.mention} · replies: 3 · participants: 2" in stats.text
    stats = await ask(discord_server, world.admin, "prompts stats", locale="ja")
    assert "返信: 3件 · 参加者: 2人" in stats.text
    overview = await ask(discord_server, world.admin, "stats")
    assert "Discussion prompts\n1 posted · 3 replies" in overview.text
    overview = await ask(discord_server, world.admin, "stats", locale="ja")
    assert "ディスカッションのお題\n投稿1件・返信3件" in overview.text


async def test_a_hostile_custom_prompt_is_stored_intact_and_posted_without_pings(
        discord_server: FakeDiscord, world: World, running_bot: KakehashiBot) -> None:
    general = await use_channel(discord_server, world, "prompts", "general")
    role = world.guild.role_named("Admin")
    line = f"@everyone @here <@&{role.id}> <@{world.member.id}> **太字** \u200b\u202e mixed 日本語 text. "
    text = (line * 60)[:4000]
    opened = await discord_server.slash(world.admin, "prompts add")
    added = await (await discord_server.submit(opened, {
        "Title": "", "Text": text, "Question 1 (optional)": f"<@&{role.id}> what do you think?"})).reply()
    assert added.ephemeral and "It is number 3 in the queue" in added.text  # after the two essays
    with sqlite3.connect(running_bot.storage.path) as db:
        (stored,) = db.execute("SELECT title, body FROM prompt_custom").fetchall()
    assert stored == ("", text)

    await ask(discord_server, world.admin, "prompts post", essay="custom:1")
    (thread,) = await wait_for_threads(discord_server, general, 1)
    assert thread.name == "Discussion prompt #1"  # the title was left empty
    assert "".join(essay_parts(discord_server, thread)) == text
    assert split_message(text) == essay_parts(discord_server, thread)
    # The fixture fails the test if any message pinged anyone.


async def test_an_admin_prompt_given_in_both_languages_gets_the_language_button_and_one_in_one_does_not(
        discord_server: FakeDiscord, world: World, running_bot: KakehashiBot) -> None:
    general = await use_channel(discord_server, world, "prompts", "general")
    opened = await discord_server.slash(world.admin, "prompts add")
    added = await (await discord_server.submit(opened, {
        "Title": "Silent rivalry abroad", "Text": "Why do Japanese firms overseas share so little with each other?",
        "Question 1 (optional)": "What would you share with a competitor?"})).reply()
    assert "It reads as English. Add it in 日本語 too (optional)" in added.text
    (button,) = added.custom_ids
    assert button == f"prompt:translate:{world.guild.id}:custom:1"
    # The admin's private answer: only a modified client could press it for someone else, and is refused.
    refused = await (await discord_server.click(world.member, added, button)).reply()
    assert refused.ephemeral and "Manage Server" in refused.text

    opened = await discord_server.click(world.admin, added, button)
    modal = await opened.modal()
    assert modal["title"] == "The prompt in 日本語"
    saved = await (await discord_server.submit(opened, {
        "Title in 日本語 (optional)": "海外での静かなライバル関係",
        "Summary of the text in 日本語": "海外の日本企業は、なぜ互いにほとんど情報を共有しないのか。",
        "Question 1 in 日本語 (optional)": "競合相手と何なら共有できますか？"})).reply()
    assert "Saved “海外での静かなライバル関係” in 日本語" in saved.text

    opened = await discord_server.slash(world.admin, "prompts add")
    japanese = await (await discord_server.submit(opened, {
        "Title": "終身雇用と社外の人脈", "Text": "社外の人と知り合うことは、会社への裏切りなのでしょうか。"})).reply()
    assert "It reads as 日本語. Add it in English too (optional)" in japanese.text   # the admin's client: English

    await ask(discord_server, world.admin, "prompts post", essay="custom:1")
    await ask(discord_server, world.admin, "prompts post", essay="custom:2")
    await wait_for_threads(discord_server, general, 2)
    both, only = [m for m in bot_messages(discord_server, general) if not m.ephemeral]
    assert both.custom_ids == ["prompt:lang:1:ja"] and only.custom_ids == []
    assert "Silent rivalry abroad" in both.content and "What would you share with a competitor?" in both.content
    shown = await (await discord_server.click(world.ja_member, both, "prompt:lang:1:ja")).reply()
    assert shown.ephemeral
    for part in ("海外での静かなライバル関係", "海外の日本企業は", "1. 競合相手と何なら共有できますか？"):
        assert part in shown.text


# ---------------------------------------------------------------------- crash safety


async def launch(server: FakeDiscord, database: Path) -> asyncio.subprocess.Process:
    """``python -m bot`` in a process of its own, so it can be killed as a crash would kill it."""
    env = clean_env(FAKE_DISCORD_REST=server.rest_url, FAKE_DISCORD_GATEWAY=server.gateway_url,
                    DISCORD_TOKEN=server.token, DATABASE_PATH=str(database), LOG_LEVEL="INFO")
    identified = server.identify_count
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "playground.launch", cwd=database.parent, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    await server.wait_until(lambda: server.identify_count > identified and server.connected, 30,
                            "the bot process to connect")
    return process


@pytest.mark.parametrize(("channel_name", "held"), [
    ("discussions", r"/channels/{prompts}/threads"),  # the forum post itself
    ("general", r"/channels/{prompts}/messages"),  # the message the thread starts from
    ("general", r"/channels/{prompts}/messages/\d+/threads"),  # the thread started from it
    ("discussions", r"/channels/\d+/messages"),  # the first part of the essay in the post
], ids=["forum-post", "text-message", "text-thread", "essay-part"])
async def test_a_bot_killed_after_discord_accepted_a_post_finishes_it_without_a_second_copy(
        discord_server: FakeDiscord, world: World, tmp_path: Path, channel_name: str, held: str) -> None:
    database = tmp_path / "kakehashi.db"
    process = await launch(discord_server, database)
    try:
        channel = await use_channel(discord_server, world, "prompts", channel_name)
        hold = discord_server.hold("POST", held.replace("{prompts}", str(channel.id)))
        await discord_server.slash(world.admin, "prompts post")
        await hold.reached(20)
        process.kill()  # SIGKILL: no clean-up, no chance to record what Discord answered
        await process.wait()
        hold.release()

        process = await launch(discord_server, database)
        (thread,) = await wait_for_threads(discord_server, channel, 1, timeout=30)
        essay = ESSAYS[0]
        await discord_server.wait_until(
            lambda: "".join(essay_parts(discord_server, thread, discord_server.messages.get(thread.id)))
            == essay.body, 30, "the whole essay in the thread")
        await asyncio.sleep(0.5)  # anything sent twice would arrive now
        starter = discord_server.messages.get(thread.id)
        assert essay_parts(discord_server, thread, starter) == split_message(essay.body)
        if channel.type == ChannelType.TEXT:
            assert len(bot_messages(discord_server, channel)) == 1  # one first message, one thread
        assert len(discord_server.threads(channel)) == 1
        with sqlite3.connect(database) as db:
            assert db.execute("SELECT state FROM prompt_posts").fetchall() == [("posted",)]
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()
    assert discord_server.unhandled_calls() == []
