"""The introductions service on a real SQLite file: profiles, the introductions channel, reminders,
leaving, erasing and exporting a member, aliases and stats."""

from __future__ import annotations

import struct
from datetime import timedelta
from pathlib import Path

import pytest

from bot.errors import UserError
from bot.guilds.model import ChannelKind, ChannelRef
from bot.guilds.service import GuildConfig
from bot.guilds.store import GuildSettingsStore
from bot.intros.model import NUDGE_JOB, PURGE_JOB, WELCOME_JOB, About, MessageRef, More, Reconciled, Visibility
from bot.intros.service import IntroService
from bot.intros.store import IntroStore
from bot.outbox.store import OutboxStore
from bot.prompts.essays import load_essays
from bot.prompts.service import PromptService
from bot.prompts.store import PromptStore
from bot.shards import Shards
from bot.storage import Storage
from playground.clock import FakeClock

GUILD = 10
OTHER_GUILD = 11
AIKO = 123456789012345678
BEN = 223456789012345678
ADMIN = 323456789012345678
INTRO_MESSAGE = MessageRef(40, 41)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def service(storage: Storage, clock: FakeClock) -> IntroService:
    return IntroService(IntroStore(storage), clock, keep_left_days=30)


async def jobs(storage: Storage, kind: str) -> list[int]:
    rows = await storage.fetch_all("SELECT member_id FROM outbox WHERE kind = ? ORDER BY id", (kind,))
    return [int(row[0]) for row in rows]


async def aiko(service: IntroService, **more: str) -> None:
    await service.save_about(GUILD, AIKO, About("Aiko Tanaka", "Olympus Corporation", "Sales", "Medical devices",
                                                "Tokyo"), locale="ja")
    if more:
        await service.save_more(GUILD, AIKO, More(**more))


async def test_the_two_steps_build_one_profile(service: IntroService) -> None:
    await aiko(service, timezone="asia/tokyo", interests="Supply chains, ＡＩ、 ai; #Market entry",
               offer="Advice on Japan", seek="Partners in Vietnam", bio="Hello **there**")
    profile = await service.profile(GUILD, AIKO)
    assert profile is not None
    assert (profile.display_name, profile.company, profile.company_key) == ("Aiko Tanaka", "Olympus Corporation",
                                                                            "olympus")
    assert profile.timezone == "Asia/Tokyo"
    assert profile.interests == ("Supply chains", "ＡＩ", "Market entry")   # as written, one "AI"
    assert profile.languages == ("ja",)  # from the member's Discord language until they choose
    assert (profile.bio, profile.visibility, profile.open_to_intros) == ("Hello **there**", Visibility.EVERYONE, True)
    member = await service.member(GUILD, AIKO)
    assert member is not None and member.introduced_at is not None


async def test_step_one_again_keeps_step_two(service: IntroService) -> None:
    await aiko(service, interests="AI", bio="Bio")
    await service.save_about(GUILD, AIKO, About("Aiko", "Sony", ""), locale="en")
    profile = await service.profile(GUILD, AIKO)
    assert profile is not None and (profile.company, profile.interests, profile.bio) == ("Sony", ("AI",), "Bio")


async def test_step_two_needs_step_one(service: IntroService) -> None:
    with pytest.raises(UserError) as caught:
        await service.save_more(GUILD, AIKO, More(bio="x"))
    assert caught.value.key == "intros.edit.start_first"


@pytest.mark.parametrize(("about", "key"), [
    (About("", "Sony"), "intros.field.required"),
    (About("\u200b \u200f", "Sony"), "intros.field.required"),
    (About("Aiko", ""), "intros.field.required"),
    (About("Aiko", "!!!"), "intros.company.no_letters"),
    (About("A" * 81, "Sony"), "intros.field.too_long"),
    (About("Aiko", "S" * 101), "intros.field.too_long"),
    (About("Aiko", "Sony", role="r" * 101), "intros.field.too_long"),
    (About("Aiko", "Sony", industry="i" * 61), "intros.field.too_long"),
    (About("Aiko", "Sony", location="l" * 101), "intros.field.too_long"),
])
async def test_bad_first_steps_are_refused_and_nothing_is_stored(service: IntroService, about: About,
                                                                 key: str) -> None:
    with pytest.raises(UserError) as caught:
        await service.save_about(GUILD, AIKO, about, locale="en")
    assert caught.value.key == key
    assert await service.profile(GUILD, AIKO) is None


@pytest.mark.parametrize(("more", "key"), [
    (More(timezone="Mars/Olympus"), "intros.timezone.unknown"),
    (More(interests="x" * 301), "intros.field.too_long"),
    (More(interests=", ".join(f"tag{n}" for n in range(11))), "intros.interests.too_many"),
    (More(interests="a" * 31), "intros.interests.tag_too_long"),
    (More(offer="o" * 301), "intros.field.too_long"),
    (More(seek="s" * 301), "intros.field.too_long"),
    (More(bio="b" * 1001), "intros.field.too_long"),
])
async def test_bad_second_steps_are_refused(service: IntroService, more: More, key: str) -> None:
    await aiko(service)
    with pytest.raises(UserError) as caught:
        await service.save_more(GUILD, AIKO, more)
    assert caught.value.key == key


async def test_fields_at_their_limit_are_stored_intact(service: IntroService) -> None:
    hostile = "@everyone <@&1> <@2> **bold** \u200b\u202e右から左 ミックス"
    name = (hostile * 3)[:80]
    await service.save_about(GUILD, AIKO, About(name, "Olympus " + "x" * 92, "r" * 100, "i" * 60, "l" * 100),
                             locale="en")
    bio = (hostile * 30)[:1000]
    await service.save_more(GUILD, AIKO, More("Asia/Tokyo", ", ".join(["t" * 26] * 10), "o" * 300, "s" * 300, bio))
    profile = await service.profile(GUILD, AIKO)
    assert profile is not None and profile.display_name == name.strip() and profile.bio == bio.strip()
    assert len(profile.company) == 100 and len(profile.offer) == 300


async def test_choices(service: IntroService) -> None:
    await aiko(service)
    await service.set_languages(GUILD, AIKO, ["en", "ja"])
    await service.set_visibility(GUILD, AIKO, "matches")
    profile = await service.set_open(GUILD, AIKO, False)
    assert (profile.languages, profile.visibility, profile.open_to_intros) == (("ja", "en"), Visibility.MATCHES,
                                                                               False)
    assert profile.company_for(None) is None and profile.company_for(BEN) is None
    assert profile.company_for(AIKO) == "Olympus Corporation"
    for values in ([], ["fr"]):
        with pytest.raises(UserError):
            await service.set_languages(GUILD, AIKO, values)
    with pytest.raises(UserError):
        await service.set_visibility(GUILD, AIKO, "nobody")


def test_a_members_card_lock_is_theirs_alone(service: IntroService) -> None:
    """The glue posts a card and erases a member under this lock: one per member and server, the same each
    time it is asked for."""
    lock = service.card_lock(GUILD, AIKO)
    assert service.card_lock(GUILD, AIKO) is lock
    assert service.card_lock(GUILD, BEN) is not lock and service.card_lock(OTHER_GUILD, AIKO) is not lock


async def test_the_first_message_in_the_introductions_channel_counts_and_offers_once(service: IntroService) -> None:
    outcome = await service.intro_message(GUILD, BEN, INTRO_MESSAGE, "Hi!\n**Company:** Olympus\n役職：営業")
    assert outcome.counted and dict(outcome.offer or {}) == {"company": "Olympus", "role": "営業"}
    assert dict(await service.draft(GUILD, BEN)) == {"company": "Olympus", "role": "営業"}
    again = await service.intro_message(GUILD, BEN, MessageRef(40, 42), "Company: Sony")
    assert not again.counted and again.offer is None
    member = await service.member(GUILD, BEN)
    assert member is not None and member.intro_message == INTRO_MESSAGE and member.introduced_at is not None


async def test_no_offer_to_a_member_with_a_profile(service: IntroService) -> None:
    await aiko(service)
    outcome = await service.intro_message(GUILD, AIKO, INTRO_MESSAGE, "Company: Sony")
    assert outcome.counted and outcome.offer is None


async def test_a_reminder_once_after_the_delay_never_after_leaving(service: IntroService, storage: Storage,
                                                                    clock: FakeClock) -> None:
    await service.set_reminders(GUILD, 3, True, actor_id=ADMIN)
    await service.joined(GUILD, AIKO)
    await service.joined(GUILD, BEN)
    await service.joined(GUILD, ADMIN)
    await service.left(GUILD, ADMIN)
    clock.advance(timedelta(days=2, hours=23))
    await service.materialise_due(clock.now())
    assert await jobs(storage, NUDGE_JOB) == []
    clock.advance(timedelta(hours=2))
    await service.materialise_due(clock.now())
    await service.materialise_due(clock.now())
    assert sorted(await jobs(storage, NUDGE_JOB)) == sorted([AIKO, BEN])
    assert await service.needs_nudge(GUILD, BEN)
    await service.intro_message(GUILD, BEN, INTRO_MESSAGE, "hello")
    assert not await service.needs_nudge(GUILD, BEN)
    clock.advance(timedelta(days=30))
    await service.materialise_due(clock.now())
    assert sorted(await jobs(storage, NUDGE_JOB)) == sorted([AIKO, BEN])


async def test_reminders_across_servers_follow_each_servers_delay_and_only_the_process_shards(
        service: IntroService, storage: Storage, clock: FakeClock) -> None:
    quick, slow, elsewhere = 1 << 22, 2 << 22, 3 << 22   # on shards 1, 0 and 1 of 2
    await service.set_reminders(quick, 1, True, actor_id=ADMIN)
    await service.set_reminders(slow, 5, True, actor_id=ADMIN)
    await service.set_reminders(elsewhere, 1, True, actor_id=ADMIN)
    for guild in (quick, slow, elsewhere):
        await service.joined(guild, AIKO)
    clock.advance(timedelta(days=2))
    shard_0, shard_1 = Shards(2, frozenset({0})), Shards(2, frozenset({1}))
    await service.materialise_due(clock.now(), shard_0)
    assert await jobs(storage, NUDGE_JOB) == []   # "slow" waits five days; the others are not shard 0's
    await service.materialise_due(clock.now(), shard_1)
    rows = await storage.fetch_all("SELECT guild_id FROM outbox WHERE kind = ? ORDER BY guild_id", (NUDGE_JOB,))
    assert [int(row[0]) for row in rows] == [quick, elsewhere]
    clock.advance(timedelta(days=3))
    await service.materialise_due(clock.now(), shard_0)
    rows = await storage.fetch_all("SELECT guild_id FROM outbox WHERE kind = ? ORDER BY guild_id", (NUDGE_JOB,))
    assert [int(row[0]) for row in rows] == [quick, slow, elsewhere]


async def test_no_reminders_when_off_or_for_members_who_introduced(service: IntroService, storage: Storage,
                                                                   clock: FakeClock) -> None:
    await service.joined(GUILD, AIKO)
    clock.advance(timedelta(days=10))
    await service.materialise_due(clock.now())
    assert await jobs(storage, NUDGE_JOB) == []
    await aiko(service)
    await service.set_reminders(GUILD, None, True, actor_id=ADMIN)
    await service.materialise_due(clock.now())
    assert await jobs(storage, NUDGE_JOB) == []


async def test_welcomes_follow_the_setting(service: IntroService, storage: Storage) -> None:
    assert await service.joined(GUILD, AIKO) is not None
    await service.set_welcome(GUILD, "off", actor_id=ADMIN)
    assert await service.joined(GUILD, BEN) is None
    assert await jobs(storage, WELCOME_JOB) == [AIKO]


async def test_leaving_hides_at_once_and_erases_after_the_delay_unless_back(service: IntroService, storage: Storage,
                                                                           clock: FakeClock) -> None:
    await aiko(service)
    await service.left(GUILD, AIKO)
    profile = await service.profile(GUILD, AIKO)
    assert profile is not None and not profile.active
    clock.advance(timedelta(days=29))
    await service.materialise_due(clock.now())
    assert await jobs(storage, PURGE_JOB) == []
    clock.advance(timedelta(days=2))
    await service.materialise_due(clock.now())
    assert await jobs(storage, PURGE_JOB) == [AIKO]
    assert await service.has_left(GUILD, AIKO)
    await service.joined(GUILD, AIKO)
    assert not await service.has_left(GUILD, AIKO)  # the purge job finds them back and does nothing
    profile = await service.profile(GUILD, AIKO)
    assert profile is not None and profile.active


# A byte scan of SQLite's file; PostgreSQL's autovacuum reclaims deleted rows in its own time (docs/deploying.md).
@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
async def test_forgetting_leaves_no_trace_in_the_file(service: IntroService, storage: Storage, clock: FakeClock,
                                                      tmp_path: Path) -> None:
    guilds = GuildConfig(GuildSettingsStore(storage), clock)
    await guilds.set_channel(GUILD, "prompts", ChannelRef(30, ChannelKind.TEXT, "<#30>"), actor_id=AIKO)
    prompts = PromptService(PromptStore(storage), OutboxStore(storage), guilds, load_essays(), clock)
    await prompts.add(GUILD, "Aiko's prompt", "Text", [], author_id=AIKO)
    post, _ = await prompts.post_now(GUILD, None)
    await PromptStore(storage).set_message(post.id, 50, 51)
    await prompts.record_reply(GUILD, 51, AIKO)
    await service.set_reminders(GUILD, 3, True, actor_id=AIKO)
    await service.joined(GUILD, AIKO)
    await service.intro_message(GUILD, AIKO, INTRO_MESSAGE, "Company: Zuiko Optical Works")
    await service.delete_reply_later(GUILD, AIKO, MessageRef(40, 43))
    await service.save_about(GUILD, AIKO, About("Aikoyamamotoname", "Zuiko Optical Works", "Sales"), locale="en")
    await service.set_card(GUILD, AIKO, MessageRef(40, 44))
    await service.save_about(GUILD, BEN, About("Ben", "Sony"), locale="en")

    forgotten = await service.forget(GUILD, AIKO)

    assert forgotten.card == MessageRef(40, 44) and forgotten.replies == (MessageRef(40, 43),)
    files = [p for p in tmp_path.iterdir() if p.name.startswith("k.db")]
    data = b"".join(p.read_bytes() for p in files)
    for trace in (str(AIKO).encode(), struct.pack(">q", AIKO), b"Aikoyamamotoname", b"Zuiko",
                  b"zuikoopticalworks"):
        assert trace not in data, trace
    assert b"Sony" in data  # the other member is still there
    posts = await storage.fetch_all("SELECT replies, participants FROM prompt_posts")
    assert [tuple(r) for r in posts] == [(1, 1)]  # anonymous counts stay
    export = await service.export(GUILD, AIKO)
    assert export["profile"] is None and export["membership"] is None and export["settings_changed"] == []


async def test_export_holds_everything_entered(service: IntroService) -> None:
    await aiko(service, timezone="Asia/Tokyo", interests="AI", offer="Offer", seek="Seek", bio="Bio")
    await service.intro_message(GUILD, AIKO, INTRO_MESSAGE, "hello")
    await service.set_alias(GUILD, "ソニー", "Sony", actor_id=AIKO)
    data = await service.export(GUILD, AIKO)
    profile = data["profile"]
    assert {k: profile[k] for k in ("display_name", "company", "role", "industry", "location", "timezone",
                                    "interests", "offer", "seek", "bio", "languages", "company_visibility",
                                    "open_to_intros")} == {
        "display_name": "Aiko Tanaka", "company": "Olympus Corporation", "role": "Sales",
        "industry": "Medical devices", "location": "Tokyo", "timezone": "Asia/Tokyo", "interests": ["AI"],
        "offer": "Offer", "seek": "Seek", "bio": "Bio", "languages": ["ja"], "company_visibility": "everyone",
        "open_to_intros": 1}
    assert data["membership"]["intro_message_id"] == INTRO_MESSAGE.message_id
    assert [change["setting"] for change in data["settings_changed"]] == ["company_alias"]
    assert (await service.export(OTHER_GUILD, AIKO))["profile"] is None  # another server's data is apart


async def test_aliases_join_companies_and_follow_each_other(service: IntroService) -> None:
    change = await service.set_alias(GUILD, "ソニー", "Sony Corporation", actor_id=ADMIN)
    assert change.changed and change.new == "ソニー → Sony Corporation"
    assert await service.alias_map(GUILD) == {"ソニー": "sony"}
    unchanged = await service.set_alias(GUILD, "ソニー株式会社", "SONY", actor_id=ADMIN)
    assert not unchanged.changed
    await service.set_alias(GUILD, "SCE", "ソニー", actor_id=ADMIN)  # an alias of an alias points at the company
    assert (await service.alias_map(GUILD))["sce"] == "sony"
    with pytest.raises(UserError):
        await service.set_alias(GUILD, "Sony Corp.", "SONY", actor_id=ADMIN)
    removed = await service.set_alias(GUILD, "ソニー", None, actor_id=ADMIN)
    assert removed.changed and await service.alias_map(GUILD) == {"sce": "sony"}
    assert not (await service.set_alias(GUILD, "nothing", None, actor_id=ADMIN)).changed


async def test_stats_count_introductions_industries_and_companies(service: IntroService) -> None:
    await service.joined(GUILD, BEN)
    await service.save_about(GUILD, AIKO, About("Aiko", "Sony Corporation", industry="Electronics"), locale="en")
    await service.save_about(GUILD, BEN, About("Ben", "SONY", industry="electronics "), locale="en")
    await service.save_about(GUILD, ADMIN, About("Admin", "ソニー株式会社"), locale="en")
    assert (await service.stats(GUILD, 10)).companies == 2
    await service.set_alias(GUILD, "ソニー", "Sony", actor_id=ADMIN)
    stats = await service.stats(GUILD, 10)
    assert (stats.members, stats.introduced, stats.companies) == (10, 3, 1)
    assert stats.by_industry == (("Electronics", 2),) and stats.no_industry == 1


async def test_members_who_left_or_came_back_unseen_are_handled_as_a_leave_or_a_return(
        service: IntroService, storage: Storage, clock: FakeClock) -> None:
    chie, dan, eri = 423456789012345678, 523456789012345678, 623456789012345678
    await aiko(service)                       # a profile, gone from the server
    await service.joined(GUILD, BEN)          # joined, never introduced, gone from the server
    await service.joined(GUILD, chie)         # still here
    await service.joined(GUILD, dan)
    await service.left(GUILD, dan)            # left, and back in the server
    await service.joined(GUILD, eri)
    await service.left(GUILD, eri)            # left, still gone
    await service.joined(OTHER_GUILD, AIKO)   # another server's member list says nothing of this one
    seen: list[tuple[int, int | None]] = []
    service.watch(lambda guild_id, user_id: seen.append((guild_id, user_id)))
    welcomes = await jobs(storage, WELCOME_JOB)
    here = {chie, dan, ADMIN}

    found = await service.reconcile(GUILD, here.__contains__)

    assert found.departed == tuple(sorted((AIKO, BEN))) and found.returned == (dan,)
    assert sorted(seen) == sorted([(GUILD, AIKO), (GUILD, BEN), (GUILD, dan)])  # matching hears of each
    profile = await service.profile(GUILD, AIKO)
    assert profile is not None and not profile.active
    assert await service.has_left(GUILD, AIKO) and await service.has_left(GUILD, BEN)
    assert not await service.has_left(GUILD, dan) and not await service.has_left(GUILD, chie)
    assert await service.member(GUILD, ADMIN) is None  # nothing stored about someone the bot never saw
    assert not await service.has_left(OTHER_GUILD, AIKO)
    assert await jobs(storage, WELCOME_JOB) == welcomes  # a return found late is not welcomed

    # Nothing changed since: nothing to do, and nobody's leaving time moves (so erasure is not put off).
    before = await service.member(GUILD, AIKO)
    clock.advance(timedelta(days=1))
    assert await service.reconcile(GUILD, here.__contains__) == Reconciled()
    after = await service.member(GUILD, AIKO)
    assert before is not None and after is not None and after.left_at == before.left_at
    clock.advance(timedelta(days=30))
    await service.materialise_due(clock.now())
    assert sorted(await jobs(storage, PURGE_JOB)) == sorted([AIKO, BEN, eri])


async def test_a_join_or_leave_seen_while_catching_up_wins(service: IntroService) -> None:
    await service.joined(GUILD, AIKO)
    await service.joined(GUILD, BEN)
    await service.left(GUILD, BEN)
    asked: dict[int, int] = {}

    def is_member(user_id: int) -> bool:
        """The list says Aiko is gone and Ben is back; by the time each is handled, the opposite holds."""
        asked[user_id] = asked.get(user_id, 0) + 1
        return (user_id == BEN) == (asked[user_id] == 1)

    assert await service.reconcile(GUILD, is_member) == Reconciled()
    assert not await service.has_left(GUILD, AIKO) and await service.has_left(GUILD, BEN)


async def test_a_profile_saved_after_leaving_is_set_right_either_way(service: IntroService) -> None:
    await aiko(service)
    await service.left(GUILD, AIKO)
    await aiko(service)  # saving a profile makes it active, left or not
    profile = await service.profile(GUILD, AIKO)
    assert profile is not None and profile.active and await service.has_left(GUILD, AIKO)
    assert await service.reconcile(GUILD, lambda user_id: False) == Reconciled(departed=(AIKO,))
    profile = await service.profile(GUILD, AIKO)
    assert profile is not None and not profile.active
    await aiko(service)
    assert await service.reconcile(GUILD, lambda user_id: True) == Reconciled(returned=(AIKO,))
    profile = await service.profile(GUILD, AIKO)
    assert profile is not None and profile.active and not await service.has_left(GUILD, AIKO)
