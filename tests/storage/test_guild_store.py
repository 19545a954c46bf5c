"""GuildSettingsStore and CommandSyncStore on a real SQLite file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.guilds.model import ChannelKind, ChannelRef, Purpose, Setting
from bot.guilds.service import GuildConfig
from bot.guilds.store import GuildSettingsStore, forget_actor
from bot.storage import Storage
from bot.sync.store import CommandSyncStore
from playground.clock import FakeClock
from tests.postgres import INTEGRITY_ERRORS

NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


async def test_a_server_without_settings_has_the_defaults(storage: Storage) -> None:
    settings = await GuildSettingsStore(storage).get(1)
    assert (settings.language, settings.timezone, dict(settings.channels)) == (None, None, {})
    assert settings.timezone_name == "UTC"


async def test_a_change_is_stored_with_its_audit_row(storage: Storage) -> None:
    store = GuildSettingsStore(storage)
    change = await store.set_value(1, Setting.TIMEZONE, "Asia/Tokyo", actor_id=7, now=NOW)
    assert (change.setting, change.old, change.new, change.changed) == ("timezone", None, "Asia/Tokyo", True)
    later = NOW + timedelta(minutes=5)
    again = await store.set_value(1, Setting.TIMEZONE, "Europe/London", actor_id=8, now=later)
    assert (again.old, again.new) == ("Asia/Tokyo", "Europe/London")
    assert (await store.get(1)).timezone == "Europe/London"
    history = await store.recent_changes(1)
    assert [(e.actor_id, e.setting, e.old, e.new, e.changed_at) for e in history] == [
        (8, "timezone", "Asia/Tokyo", "Europe/London", later),
        (7, "timezone", None, "Asia/Tokyo", NOW),
    ]


async def test_setting_the_same_value_again_changes_and_audits_nothing(storage: Storage) -> None:
    store = GuildSettingsStore(storage)
    await store.set_value(1, Setting.LANGUAGE, "ja", actor_id=7, now=NOW)
    same = await store.set_value(1, Setting.LANGUAGE, "ja", actor_id=7, now=NOW)
    assert not same.changed
    assert len(await store.recent_changes(1)) == 1


async def test_channels_are_set_moved_and_cleared(storage: Storage) -> None:
    store = GuildSettingsStore(storage)
    await store.set_channel(1, Purpose.PROMPTS, 100, actor_id=7, now=NOW)
    moved = await store.set_channel(1, Purpose.PROMPTS, 200, actor_id=7, now=NOW)
    assert (moved.setting, moved.old, moved.new) == ("channel.prompts", "100", "200")
    await store.set_channel(1, Purpose.LOG, 300, actor_id=7, now=NOW)
    assert dict((await store.get(1)).channels) == {Purpose.PROMPTS: 200, Purpose.LOG: 300}
    cleared = await store.set_channel(1, Purpose.LOG, None, actor_id=7, now=NOW)
    assert (cleared.old, cleared.new) == ("300", None)
    assert dict((await store.get(1)).channels) == {Purpose.PROMPTS: 200}
    assert not (await store.set_channel(1, Purpose.LOG, None, actor_id=7, now=NOW)).changed


async def test_servers_do_not_see_each_others_settings(storage: Storage) -> None:
    store = GuildSettingsStore(storage)
    await store.set_value(1, Setting.LANGUAGE, "ja", actor_id=7, now=NOW)
    await store.set_channel(1, Purpose.WELCOME, 100, actor_id=7, now=NOW)
    other = await store.get(2)
    assert (other.language, dict(other.channels)) == (None, {})
    assert await store.recent_changes(2) == []


async def test_the_schema_refuses_a_language_it_does_not_know(storage: Storage) -> None:

    with pytest.raises(INTEGRITY_ERRORS):
        await GuildSettingsStore(storage).set_value(1, Setting.LANGUAGE, "fr", actor_id=7, now=NOW)
    assert await GuildSettingsStore(storage).recent_changes(1) == []


async def test_command_sync_hash_is_kept_per_scope(storage: Storage) -> None:
    store = CommandSyncStore(storage)
    assert await store.last_hash("global:1") is None
    await store.record("global:1", "abc", NOW)
    await store.record("guild:1:2", "def", NOW)
    await store.record("global:1", "xyz", NOW)
    assert (await store.last_hash("global:1"), await store.last_hash("guild:1:2")) == ("xyz", "def")


async def test_a_member_language_follows_their_last_interaction_per_server_and_goes_with_them(
        storage: Storage) -> None:
    store = GuildSettingsStore(storage)
    config = GuildConfig(store, FakeClock(NOW))
    await config.remember_language(1, 7, "ja")
    await config.remember_language(2, 7, "en-GB")
    assert (await config.member_language(1, 7), await config.member_language(2, 7)) == ("ja", "en")
    await config.remember_language(1, 7, "ja")   # unchanged: nothing written
    await config.remember_language(1, 7, "fr")   # a language the bot does not speak: the server's serves
    assert await config.member_language(1, 7) is None
    await config.remember_language(1, 7, "ja")
    async with storage.transaction() as tx:
        await forget_actor(tx, 1, 7)
    assert (await config.member_language(1, 7), await config.member_language(2, 7)) == (None, "en")
    config.forget_language(1, 7)   # the erasure tells the service (IntroService.watch): the next one writes
    await config.remember_language(1, 7, "ja")
    assert await config.member_language(1, 7) == "ja"


async def test_settings_are_read_once_and_a_change_is_seen_at_once(storage: Storage) -> None:
    config = GuildConfig(GuildSettingsStore(storage), FakeClock(NOW))
    first = await config.settings(1)
    assert await config.settings(1) is first   # kept: the services an interaction calls read no more
    await config.set_timezone(1, "Asia/Tokyo", actor_id=7)
    assert (await config.settings(1)).timezone == "Asia/Tokyo"
    forum = ChannelRef(30, ChannelKind.FORUM, "<#30>")
    await config.set_channel(1, "prompts", forum, actor_id=7)
    await config.set_language(1, "ja", actor_id=7)
    settings = await config.settings(1)
    assert (settings.channel(Purpose.PROMPTS), settings.language) == (30, "ja")
    assert (await GuildSettingsStore(storage).get(1)) == settings
