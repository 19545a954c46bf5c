"""The prompt service on a real SQLite file: queue, schedule, custom prompts, engagement."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.errors import UserError
from bot.guilds.model import ChannelKind, ChannelRef
from bot.guilds.service import GuildConfig
from bot.guilds.store import GuildSettingsStore
from bot.outbox.store import OutboxStore
from bot.prompts.essays import load_essays
from bot.prompts.model import POST_JOB, Post, PostState
from bot.prompts.service import PromptService
from bot.prompts.store import PromptStore
from bot.storage import Storage
from playground.clock import FakeClock

GUILD = 10
ADMIN = 20
CHANNEL = ChannelRef(30, ChannelKind.FORUM, "<#30>")
MONDAY_0900_TOKYO = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(MONDAY_0900_TOKYO - timedelta(days=1))


@pytest.fixture
async def service(storage: Storage, clock: FakeClock) -> PromptService:
    guilds = GuildConfig(GuildSettingsStore(storage), clock)
    await guilds.set_channel(GUILD, "prompts", CHANNEL, actor_id=ADMIN)
    await guilds.set_timezone(GUILD, "Asia/Tokyo", actor_id=ADMIN)
    return PromptService(PromptStore(storage), OutboxStore(storage), guilds, load_essays(), clock)


async def waiting(service: PromptService) -> list[Post]:
    """The posts not sent yet, as /prompts queue sees them."""
    return [pending.post for pending in (await service.queue(GUILD)).pending]


async def test_a_post_is_recorded_with_its_job_before_anything_is_sent(service: PromptService) -> None:
    post, job = await service.post_now(GUILD, None)
    assert post.state is PostState.PENDING and post.prompt_key == "essay:why-japanese-professionals-dont-network"
    assert job.kind == POST_JOB and job.payload == {"post": post.id}
    assert (post.message_id, post.thread_id, post.parts_sent) == (None, None, 0)


async def test_posting_needs_a_prompts_channel(storage: Storage, clock: FakeClock) -> None:
    guilds = GuildConfig(GuildSettingsStore(storage), clock)
    service = PromptService(PromptStore(storage), OutboxStore(storage), guilds, load_essays(), clock)
    with pytest.raises(UserError) as caught:
        await service.post_now(GUILD, None)
    assert caught.value.key == "prompts.no_channel"


async def test_prompts_are_found_by_key_slug_or_title_in_either_language(service: PromptService) -> None:
    essays = load_essays()
    for essay in essays:
        for query in (f"essay:{essay.slug}", essay.slug, essay.title["en"].upper(), essay.title["ja"]):
            assert (await service.find(GUILD, query)).key == f"essay:{essay.slug}"
    with pytest.raises(UserError) as caught:
        await service.find(GUILD, "no such essay")
    assert caught.value.key == "prompts.unknown"


async def test_scheduled_slots_post_the_essays_in_turn_and_then_cycle(service: PromptService,
                                                                      clock: FakeClock) -> None:
    await service.set_schedule(GUILD, "monday", "09:00", True, actor_id=ADMIN)
    keys = []
    for week in range(3):
        clock.advance(timedelta(weeks=1) if week else timedelta(days=1))
        await service.materialise_due(clock.now())
        pending = await waiting(service)
        assert len(pending) == 1
        keys.append(pending[0].prompt_key)
        await service.store.mark_posted(pending[0].id, clock.now())
    assert keys[0] != keys[1] and keys[2] == keys[0]


async def test_three_missed_weeks_make_one_post(service: PromptService, clock: FakeClock) -> None:
    await service.set_schedule(GUILD, "monday", "09:00", True, actor_id=ADMIN)
    clock.advance(timedelta(weeks=3, days=1))
    await service.materialise_due(clock.now())
    await service.materialise_due(clock.now())
    assert len(await waiting(service)) == 1


async def test_a_slot_adds_nothing_while_a_post_is_still_waiting(service: PromptService, clock: FakeClock) -> None:
    await service.set_schedule(GUILD, "monday", "09:00", True, actor_id=ADMIN)
    clock.advance(timedelta(days=1))
    await service.materialise_due(clock.now())
    clock.advance(timedelta(weeks=1))
    await service.materialise_due(clock.now())
    assert len(await waiting(service)) == 1


async def test_switching_the_schedule_on_does_not_post_for_a_slot_already_past(service: PromptService,
                                                                              clock: FakeClock) -> None:
    clock.advance(timedelta(days=1, hours=2))  # Monday 11:00 in Tokyo
    change = await service.set_schedule(GUILD, "monday", "09:00", True, actor_id=ADMIN)
    await service.materialise_due(clock.now())
    assert await waiting(service) == []
    assert change.next_slot == MONDAY_0900_TOKYO + timedelta(weeks=1)


async def test_schedule_changes_are_audited_and_unchanged_ones_are_not(service: PromptService,
                                                                       storage: Storage) -> None:
    first = await service.set_schedule(GUILD, "friday", "18:30", True, actor_id=ADMIN)
    again = await service.set_schedule(GUILD, None, None, None, actor_id=ADMIN)
    off = await service.set_schedule(GUILD, None, None, False, actor_id=ADMIN)
    assert (first.changed, again.changed, off.changed) == (True, False, True)
    changes = await GuildSettingsStore(storage).recent_changes(GUILD)
    assert [(c.setting, c.old, c.new) for c in changes[:2]] == [("prompts", "friday 18:30", "off"),
                                                                 ("prompts", "off", "friday 18:30")]


async def test_skip_moves_the_next_prompt_to_the_end(service: PromptService) -> None:
    before = (await service.queue(GUILD)).upcoming
    skipped = await service.skip(GUILD)
    after = (await service.queue(GUILD)).upcoming
    assert skipped.skipped.key == before[0].key and skipped.next is not None
    assert [p.key for p in after] == [p.key for p in before[1:]] + [before[0].key]


async def test_a_custom_prompt_is_stored_intact_and_queued_before_repeats(service: PromptService) -> None:
    await service.post_now(GUILD, None)
    await service.post_now(GUILD, None)
    hostile = "@everyone <@&123> <@456> **bold** \u200b\u202e mixed 日本語 text"
    prompt, place = await service.add(GUILD, "", hostile * 3, ["Q1 @here", "", "Q3"], author_id=ADMIN)
    assert place == 1
    assert prompt.body == hostile * 3 and prompt.title("ja") == ""
    assert prompt.questions_in("en") == ("Q1 @here", "Q3")
    stored = await service.find(GUILD, prompt.key)
    assert stored.body == hostile * 3


@pytest.mark.parametrize(("title", "text", "questions", "key"), [
    ("Title", "   \u200b\n", [], "prompts.add.empty_text"),
    ("T" * 101, "text", [], "prompts.add.too_long"),
    ("Title", "x" * 4001, [], "prompts.add.too_long"),
    ("Title", "text", ["q" * 301], "prompts.add.too_long"),
    ("Title", "text", ["a", "b", "c", "d"], "prompts.add.too_long"),
])
async def test_custom_prompts_out_of_bounds_are_refused(service: PromptService, title: str, text: str,
                                                        questions: list[str], key: str) -> None:
    with pytest.raises(UserError) as caught:
        await service.add(GUILD, title, text, questions, author_id=ADMIN)
    assert caught.value.key == key
    assert len(await service.catalogue(GUILD)) == len(load_essays())


async def test_replies_and_distinct_participants_are_counted(service: PromptService) -> None:
    first, _ = await service.post_now(GUILD, None)
    second, _ = await service.post_now(GUILD, None)
    now = datetime(2026, 11, 2, tzinfo=UTC)
    for post, thread in ((first, 1001), (second, 1002)):
        await service.store.set_message(post.id, thread, thread)
        await service.store.mark_posted(post.id, now)
    assert [await service.record_reply(GUILD, 1002, user) for user in (1, 2, 1, 3)] == [True, True, False, True]
    assert await service.record_reply(GUILD, 1001, 1)   # a new participant there
    assert not await service.record_reply(GUILD, 999, 1)  # not a prompt's thread
    assert not await service.record_reply(GUILD + 1, 1002, 1)  # another server's thread of that id
    ranked, total = await service.most_discussed(GUILD, 10)
    assert total == 2
    assert [(p.id, p.replies, p.participants) for p in ranked] == [(second.id, 4, 3), (first.id, 1, 1)]
