"""Introductions: one call per thing a member or admin does, rules first, then the store.

Profiles are per server and member. Everything that must happen later or
exactly once (a welcome, the one reminder, deleting a reply, erasing a member
who left) becomes an outbox job that names the member, so erasing the member
erases the job too.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, Final

from bot.clock import Clock, to_text
from bot.errors import UserError
from bot.guilds import store as guild_store
from bot.guilds.model import Change
from bot.i18n import fold
from bot.intros import companies
from bot.intros.model import (
    NUDGE_JOB,
    PURGE_JOB,
    REPLY_CLEANUP_JOB,
    WELCOME_JOB,
    About,
    Alias,
    Forgotten,
    IntroMessage,
    IntroSettings,
    IntroStats,
    MemberRecord,
    MessageRef,
    More,
    Profile,
    Reconciled,
    Visibility,
    WelcomeMode,
)
from bot.intros.parse import parse_intro
from bot.intros.profile import (
    clean_field,
    default_languages,
    parse_languages,
    parse_profile_timezone,
    parse_tags,
)
from bot.intros.store import ROWS_AT_ONCE, IntroStore
from bot.matching.store import MatchStore
from bot.outbox.model import Job, JobState
from bot.outbox.store import OutboxStore
from bot.prompts.store import PromptStore
from bot.shards import EVERY, Shards

REMINDERS_SETTING: Final = "reminders"
WELCOME_SETTING: Final = "welcome"
ALIAS_SETTING: Final = "company_alias"
MIN_REMINDER_DAYS: Final = 1
MAX_REMINDER_DAYS: Final = 90
REPLY_LIFETIME: Final = timedelta(minutes=10)
# Reminders (of each length servers chose) and erasures a pass of the outbox turns into jobs at most, so that a
# burst cannot hold up the loop; the rest wait for the next pass.
BATCH: Final = 1000
INDUSTRY_ROWS: Final = 10


def reminders_value(settings: IntroSettings) -> str:
    """How the audit trail writes a reminder setting: "on 3" or "off 3" (the days are kept when off)."""
    return f"{'on' if settings.reminders_enabled else 'off'} {settings.reminder_days}"


class IntroService:
    def __init__(self, store: IntroStore, clock: Clock, *, keep_left_days: int = 30) -> None:
        self._store = store
        self._clock = clock
        self.keep_left = timedelta(days=keep_left_days)
        self._watchers: list[Callable[[int, int | None], None]] = []
        self._card_locks: dict[tuple[int, int], asyncio.Lock] = {}

    def watch(self, callback: Callable[[int, int | None], None]) -> None:
        """Call ``callback(guild_id, user_id)`` after a member's profile changes, appears or goes, and
        ``callback(guild_id, None)`` after a change that touches every profile (a company alias)."""
        self._watchers.append(callback)

    def _changed(self, guild_id: int, user_id: int | None) -> None:
        for callback in self._watchers:
            callback(guild_id, user_id)

    # -- profiles

    async def profile(self, guild_id: int, user_id: int) -> Profile | None:
        return await self._store.profile(guild_id, user_id)

    async def active_profiles(self, guild_id: int) -> list[Profile]:
        return await self._store.active_profiles(guild_id)

    async def count_active(self, guild_id: int) -> int:
        return await self._store.count_active(guild_id)

    async def active_ids(self, guild_id: int) -> set[int]:
        return await self._store.active_ids(guild_id)

    async def saved_since(self, guild_id: int, since: datetime) -> set[int]:
        return await self._store.saved_since(guild_id, since)

    async def large_servers(self, at_least: int, shards: Shards = EVERY) -> list[int]:
        return await self._store.large_servers(at_least, shards)

    async def save_about(self, guild_id: int, user_id: int, about: About, *, locale: str | None) -> Profile:
        """The modal's first step: creates the profile, or updates these five fields of it."""
        company = clean_field("company", about.company)
        key = companies.company_key(company)
        if not key:
            raise UserError("intros.company.no_letters")
        display_name = clean_field("display_name", about.display_name)
        role = clean_field("role", about.role)
        industry = clean_field("industry", about.industry)
        location = clean_field("location", about.location)

        def change(current: Profile | None) -> Profile:
            base = current or Profile(guild_id, user_id, "", "", "", languages=default_languages(locale))
            return replace(base, display_name=display_name, company=company, company_key=key, role=role,
                           industry=industry, location=location)

        profile = await self._store.change_profile(guild_id, user_id, change, self._clock.now())
        self._changed(guild_id, user_id)
        return profile

    async def save_more(self, guild_id: int, user_id: int, more: More) -> Profile:
        """The modal's second step; the first must have created the profile. What the member's free-form
        introduction offered is used up by now."""
        fields: dict[str, Any] = {
            "timezone": parse_profile_timezone(more.timezone), "interests": parse_tags(more.interests),
            "offer": clean_field("offer", more.offer), "seek": clean_field("seek", more.seek),
            "bio": clean_field("bio", more.bio)}
        return await self._change(guild_id, user_id, fields, clear_draft=True)

    async def set_languages(self, guild_id: int, user_id: int, values: Iterable[str]) -> Profile:
        return await self._change(guild_id, user_id, {"languages": parse_languages(values)})

    async def set_visibility(self, guild_id: int, user_id: int, value: str) -> Profile:
        try:
            visibility = Visibility(value)
        except ValueError:
            raise UserError("errors.bad_value") from None
        return await self._change(guild_id, user_id, {"visibility": visibility})

    async def set_open(self, guild_id: int, user_id: int, open_to_intros: bool) -> Profile:
        return await self._change(guild_id, user_id, {"open_to_intros": open_to_intros})

    def card_lock(self, guild_id: int, user_id: int) -> asyncio.Lock:
        """Held by the glue while the member's card is posted or edited (``bot/profile_form.py``) and while the
        member is erased with it (``/intro delete``, erasure after leaving), so that a quick second change
        cannot post a second card, nor a change post one for a member being erased."""
        return self._card_locks.setdefault((guild_id, user_id), asyncio.Lock())

    async def set_card(self, guild_id: int, user_id: int, card: MessageRef | None) -> bool:
        return await self._store.set_card(guild_id, user_id, card)

    async def _change(self, guild_id: int, user_id: int, fields: dict[str, Any], *,
                      clear_draft: bool = False) -> Profile:
        def change(current: Profile | None) -> Profile:
            if current is None:
                raise UserError("intros.edit.start_first")
            return replace(current, **fields)

        profile = await self._store.change_profile(guild_id, user_id, change, self._clock.now(),
                                                   clear_draft=clear_draft)
        self._changed(guild_id, user_id)
        return profile

    # -- members coming, writing, going

    async def member(self, guild_id: int, user_id: int) -> MemberRecord | None:
        return await self._store.member(guild_id, user_id)

    async def joined(self, guild_id: int, user_id: int, *, welcome: bool = True) -> Job | None:
        """A member joined: remember when (reminders count from it) and, unless welcomes are off (or
        ``welcome`` is False), a welcome."""
        now = self._clock.now()
        await self._store.member_joined(guild_id, user_id, now)
        self._changed(guild_id, user_id)
        if not welcome:
            return None
        settings = await self._store.settings(guild_id)
        if settings.welcome is WelcomeMode.OFF:
            return None
        async with self._store.storage.transaction() as tx:
            return await OutboxStore.enqueue(
                tx, WELCOME_JOB, guild_id, f"{WELCOME_JOB}:{guild_id}:{user_id}:{to_text(now)}", {"user": user_id},
                due_at=now, now=now, member_id=user_id)

    async def left(self, guild_id: int, user_id: int) -> None:
        """A member left: their profile is hidden at once and erased after ``keep_left`` unless they return."""
        await self._store.member_left(guild_id, user_id, self._clock.now())
        self._changed(guild_id, user_id)

    async def reconcile(self, guild_id: int, is_member: Callable[[int], bool]) -> Reconciled:
        """The bot was not watching (it started, or opened a new gateway session): members stored as present
        whom the server no longer has left meanwhile, and members stored as left whom it has again came back.
        Each is handled as the leave or the return the bot would have seen; a return is not welcomed, as
        nobody who joined meanwhile is. ``is_member`` answers from the server's complete member list and is
        asked again just before each change, so a join or leave seen meanwhile wins."""
        stored = await self._store.presence(guild_id)
        departed = await _those(sorted(stored.present), lambda user_id: not is_member(user_id))
        returned = await _those(sorted(stored.left), is_member)
        done_departed, done_returned = [], []
        for user_id in departed:
            if not is_member(user_id):
                await self.left(guild_id, user_id)
                done_departed.append(user_id)
        for user_id in returned:
            if is_member(user_id):
                await self.joined(guild_id, user_id, welcome=False)
                done_returned.append(user_id)
        return Reconciled(tuple(done_departed), tuple(done_returned))

    async def intro_message(self, guild_id: int, user_id: int, message: MessageRef, content: str) -> IntroMessage:
        """A member wrote in the introductions channel. The first message counts them as introduced; if
        they have no profile yet, what it says is offered (once) as the start of one."""
        now = self._clock.now()
        if not await self._store.record_intro_message(guild_id, user_id, message, now):
            return IntroMessage(counted=False)
        if await self._store.profile(guild_id, user_id) is not None:
            return IntroMessage(counted=True)
        draft = parse_intro(content)
        if not await self._store.offer_draft(guild_id, user_id, draft, now):
            return IntroMessage(counted=True)
        return IntroMessage(counted=True, offer=MappingProxyType(draft))

    async def draft(self, guild_id: int, user_id: int) -> Mapping[str, str]:
        member = await self._store.member(guild_id, user_id)
        return member.draft if member is not None else MappingProxyType({})

    async def delete_reply_later(self, guild_id: int, user_id: int, reply: MessageRef) -> Job:
        """A reply in the introductions channel (the member's DMs were closed) goes away after ten minutes."""
        now = self._clock.now()
        async with self._store.storage.transaction() as tx:
            return await OutboxStore.enqueue(
                tx, REPLY_CLEANUP_JOB, guild_id, f"{REPLY_CLEANUP_JOB}:{reply.channel_id}:{reply.message_id}",
                {"channel_id": reply.channel_id, "message_id": reply.message_id},
                due_at=now + REPLY_LIFETIME, now=now, member_id=user_id)

    async def needs_nudge(self, guild_id: int, user_id: int) -> bool:
        """Whether the reminder job for this member should still be sent: here, and still not introduced."""
        member = await self._store.member(guild_id, user_id)
        return (member is not None and member.left_at is None and member.introduced_at is None
                and await self._store.profile(guild_id, user_id) is None)

    async def has_left(self, guild_id: int, user_id: int) -> bool:
        member = await self._store.member(guild_id, user_id)
        return member is not None and member.left_at is not None

    async def materialise_due(self, now: datetime, shards: Shards = EVERY) -> None:
        """Turn what is due in the servers of ``shards`` into jobs: the one reminder of members not introduced
        in time, and the erasure of members who left long enough ago."""
        for days in await self._store.reminder_days(shards):
            for guild_id, user_id in await self._store.due_nudges(days, now - timedelta(days=days), BATCH, shards):
                async with self._store.storage.transaction() as tx:
                    if await IntroStore.mark_nudged(tx, guild_id, user_id, now):
                        await OutboxStore.enqueue(tx, NUDGE_JOB, guild_id, f"{NUDGE_JOB}:{guild_id}:{user_id}",
                                                  {"user": user_id}, due_at=now, now=now, member_id=user_id)
        for guild_id, user_id, left_at in await self._store.left_before(now - self.keep_left, BATCH, shards):
            key = f"{PURGE_JOB}:{guild_id}:{user_id}:{to_text(left_at)}"
            async with self._store.storage.transaction() as tx:
                await OutboxStore.enqueue(tx, PURGE_JOB, guild_id, key, {"user": user_id}, due_at=now, now=now,
                                          member_id=user_id)

    # -- settings

    async def settings(self, guild_id: int) -> IntroSettings:
        return await self._store.settings(guild_id)

    async def set_reminders(self, guild_id: int, after_days: int | None, enabled: bool | None, *,
                            actor_id: int) -> tuple[Change, IntroSettings]:
        """Change what was given; what was left out keeps its value."""
        if after_days is not None and not MIN_REMINDER_DAYS <= after_days <= MAX_REMINDER_DAYS:
            raise UserError("intros.reminders.bad_days", low=MIN_REMINDER_DAYS, high=MAX_REMINDER_DAYS)
        now = self._clock.now()
        async with self._store.storage.transaction() as tx:
            old = await IntroStore.current_settings(tx, guild_id)
            new = replace(old, reminder_days=old.reminder_days if after_days is None else after_days,
                          reminders_enabled=old.reminders_enabled if enabled is None else enabled)
            change = Change(REMINDERS_SETTING, reminders_value(old), reminders_value(new))
            if change.changed:
                await IntroStore.write_settings(tx, new, now)
                await guild_store.record_change(tx, guild_id, actor_id, change, now)
        return change, new

    async def set_welcome(self, guild_id: int, where: str, *, actor_id: int) -> Change:
        try:
            mode = WelcomeMode(where)
        except ValueError:
            raise UserError("errors.bad_value") from None
        now = self._clock.now()
        async with self._store.storage.transaction() as tx:
            old = await IntroStore.current_settings(tx, guild_id)
            change = Change(WELCOME_SETTING, old.welcome.value, mode.value)
            if change.changed:
                await IntroStore.write_settings(tx, replace(old, welcome=mode), now)
                await guild_store.record_change(tx, guild_id, actor_id, change, now)
        return change

    # -- companies

    async def aliases(self, guild_id: int) -> list[Alias]:
        return await self._store.aliases(guild_id)

    async def alias_map(self, guild_id: int) -> dict[str, str]:
        return {alias.alias_key: alias.company_key for alias in await self._store.aliases(guild_id)}

    async def set_alias(self, guild_id: int, alias: str, company: str | None, *, actor_id: int) -> Change:
        """Join ``alias`` to ``company`` ("ソニー" → "Sony"); without a company, the alias is removed."""
        change = await self._set_alias(guild_id, alias, company, actor_id=actor_id)
        if change.changed:
            self._changed(guild_id, None)
        return change

    async def _set_alias(self, guild_id: int, alias: str, company: str | None, *, actor_id: int) -> Change:
        now = self._clock.now()
        async with self._store.storage.transaction() as tx:
            existing = await IntroStore.current_aliases(tx, guild_id)
            current = {a.alias_key: a for a in existing}
            if company is None:
                alias_key = companies.company_key(alias)
                old = current.get(alias_key)
                change = Change(ALIAS_SETTING, None if old is None else f"{old.alias} → {old.company}", None)
                if old is not None:
                    await IntroStore.remove_alias(tx, guild_id, alias_key)
                    await guild_store.record_change(tx, guild_id, actor_id, change, now)
                return change
            alias_key, company_key = companies.plan_alias(alias, company, {a.alias_key: a.company_key
                                                                           for a in existing})
            target = next((a.company for a in existing if a.alias_key == companies.company_key(company)), company)
            new = Alias(alias.strip(), target.strip(), alias_key, company_key)
            old = current.get(alias_key)
            change = Change(ALIAS_SETTING, None if old is None else f"{old.alias} → {old.company}",
                            f"{new.alias} → {new.company}")
            if old is not None and old.company_key == company_key:
                return Change(ALIAS_SETTING, change.old, change.old)  # already joined, however spelled
            await IntroStore.put_alias(tx, guild_id, new, now)
            await guild_store.record_change(tx, guild_id, actor_id, change, now)
        return change

    # -- the member's own data

    async def forget(self, guild_id: int, user_id: int) -> Forgotten:
        """Erase everything stored about a member in a server, except anonymous counts; what it left on
        Discord (their card, replies to them) is returned for the glue to delete."""
        storage = self._store.storage
        async with storage.transaction() as tx:
            card = await IntroStore.forget(tx, guild_id, user_id)
            jobs = await OutboxStore.forget_member(tx, guild_id, user_id)
            await PromptStore.forget_member(tx, guild_id, user_id)
            asked = await MatchStore.forget(tx, guild_id, user_id)
            await guild_store.forget_actor(tx, guild_id, user_id)
        await storage.flush_deleted()
        self._changed(guild_id, user_id)
        replies = tuple(MessageRef(int(job.payload["channel_id"]), int(job.payload["message_id"]))
                        for job in jobs if job.kind == REPLY_CLEANUP_JOB and job.state is not JobState.DONE)
        # Requests still waiting for an answer show the member's card to whoever they asked.
        replies += tuple(MessageRef(channel_id, message_id) for channel_id, message_id in asked)
        return Forgotten(card, replies)

    async def export(self, guild_id: int, user_id: int) -> dict[str, Any]:
        """Everything stored about a member in a server, as JSON values."""
        async with self._store.storage.transaction() as tx:
            data: dict[str, Any] = {"server_id": guild_id, "member_id": user_id,
                                    "exported_at": to_text(self._clock.now())}
            data.update(await IntroStore.member_rows(tx, guild_id, user_id))
            data.update(await PromptStore.member_rows(tx, guild_id, user_id))
            data.update(await MatchStore.member_rows(tx, guild_id, user_id))
            data["settings_changed"] = await guild_store.changes_by(tx, guild_id, user_id)
            data["language"] = await guild_store.member_language(tx, guild_id, user_id)
            data["scheduled_messages"] = [
                {"kind": job.kind, "due_at": to_text(job.due_at), "state": job.state.value}
                for job in await OutboxStore.member_jobs(tx, guild_id, user_id)]
        return data

    # -- the admin's view

    async def stats(self, guild_id: int, members: int) -> IntroStats:
        """``members``: how many (human) members the server has now, as Discord says."""
        profiles = await self._store.active_profiles(guild_id)
        aliases = await self.alias_map(guild_id)
        introduced = await self._store.count_introduced(guild_id)
        spellings: dict[str, Counter[str]] = {}
        for profile in profiles:
            if profile.industry:
                folded = fold(profile.industry)
                spellings.setdefault(folded, Counter())[profile.industry] += 1
        ranked = sorted(((sum(c.values()), c.most_common(1)[0][0]) for c in spellings.values()),
                        key=lambda item: (-item[0], item[1]))
        keys = {aliases.get(p.company_key, p.company_key) for p in profiles}
        keys.discard("")
        return IntroStats(
            members=max(members, introduced),
            introduced=introduced,
            by_industry=tuple((name, count) for count, name in ranked[:INDUSTRY_ROWS]),
            no_industry=sum(1 for p in profiles if not p.industry),
            companies=len(keys),
        )


async def _those(user_ids: list[int], keep: Callable[[int], bool]) -> list[int]:
    """``user_ids`` that ``keep`` keeps, a slice between two turns of the event loop (a server's 100,000)."""
    kept: list[int] = []
    for start in range(0, len(user_ids), ROWS_AT_ONCE):
        kept += [user_id for user_id in user_ids[start:start + ROWS_AT_ONCE] if keep(user_id)]
        await asyncio.sleep(0)
    return kept
