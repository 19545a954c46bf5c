"""Prompt operations, one call a command or a tick: rules first, then one transaction in the store."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from types import MappingProxyType
from zoneinfo import ZoneInfo

from bot.clock import Clock
from bot.errors import UserError
from bot.guilds.model import Change, Purpose
from bot.guilds.service import GuildConfig
from bot.i18n import LANGUAGES, fold, shorten, visible, written_in
from bot.outbox.model import Job
from bot.outbox.store import OutboxStore
from bot.prompts import queue as queue_rules
from bot.prompts import schedule as schedule_rules
from bot.prompts.essays import Essay
from bot.prompts.model import (
    POST_JOB,
    CustomPrompt,
    PendingPost,
    Post,
    Prompt,
    PromptKind,
    QueueView,
    Schedule,
    ScheduleChange,
    Skipped,
    Translation,
)
from bot.prompts.store import PromptStore
from bot.shards import EVERY, Shards
from bot.storage import Transaction

log = logging.getLogger(__name__)

SCHEDULE_SETTING = "prompts"
TITLE_MAX = 100
TEXT_MAX = 4000
QUESTION_MAX = 300
QUESTIONS_MAX = 3
SUMMARY_MAX = 1000
UPCOMING = 5


def essay_prompt(essay: Essay) -> Prompt:
    return Prompt(
        key=f"{PromptKind.ESSAY.value}:{essay.slug}",
        kind=PromptKind.ESSAY,
        titles=essay.title,
        summaries=essay.summary,
        questions=essay.questions,
        body=essay.body,
    )


def custom_prompt(custom: CustomPrompt) -> Prompt:
    """A prompt an admin added, in the language they wrote it in and, when given, the other one (a summary
    of the text stands in for the text, which is posted as written)."""
    written = written_language(custom)
    titles, summaries, questions = {written: custom.title}, {}, {written: custom.questions}
    if custom.translation is not None:
        other = other_language(written)
        titles[other] = custom.translation.title or custom.title
        if custom.translation.summary:
            summaries[other] = custom.translation.summary
        if custom.translation.questions:
            questions[other] = custom.translation.questions
    return Prompt(key=custom.key, kind=PromptKind.CUSTOM, titles=MappingProxyType(titles),
                  summaries=MappingProxyType(summaries), questions=MappingProxyType(questions), body=custom.body)


def written_language(custom: CustomPrompt) -> str:
    """The language the prompt was written in (read from its text if it was added before this was kept)."""
    return custom.language or written_in("\n".join((custom.title, custom.body, *custom.questions)))


def other_language(language: str) -> str:
    return next(other for other in LANGUAGES if other != language)


def _questions(questions: Sequence[str]) -> tuple[str, ...]:
    """The questions given (blank ones dropped), as typed; refused past the count or a question's length."""
    kept = tuple(q for q in questions if visible(q))
    if len(kept) > QUESTIONS_MAX or any(len(q) > QUESTION_MAX for q in kept):
        raise UserError("prompts.add.too_long", title=TITLE_MAX, text=TEXT_MAX, question=QUESTION_MAX)
    return kept


def _find(prompts: Sequence[Prompt], query: str) -> Prompt:
    wanted = fold(query)
    for prompt in prompts:
        names = {prompt.key, prompt.key.split(":", 1)[1], *prompt.titles.values()}
        if wanted and wanted in {fold(name) for name in names}:
            return prompt
    raise UserError("prompts.unknown", query=shorten(query, 80))


class PromptService:
    def __init__(self, store: PromptStore, outbox: OutboxStore, guilds: GuildConfig, essays: Sequence[Essay],
                 clock: Clock) -> None:
        self.store = store
        self._outbox = outbox
        self._guilds = guilds
        self._clock = clock
        self._essays = tuple(essay_prompt(essay) for essay in essays)

    # -- what can be posted

    def starter(self, language: str, seed: int) -> str:
        """A conversation starter from the essays' questions, in ``language``; ``seed`` picks which, so the
        same introduction gets the same question."""
        questions = [question for essay in self._essays for question in essay.questions_in(language)]
        return questions[seed % len(questions)] if questions else ""

    async def catalogue(self, guild_id: int) -> list[Prompt]:
        """Every prompt of the server: the bundled essays, then the custom prompts in the order added."""
        customs = await self.store.read_customs(guild_id)
        return [*self._essays, *(custom_prompt(c) for c in customs)]

    async def find(self, guild_id: int, query: str) -> Prompt:
        """A prompt by its key (what autocomplete sends), an essay's slug, or a title in any language."""
        return _find(await self.catalogue(guild_id), query)

    # -- posting

    async def post_now(self, guild_id: int, query: str | None) -> tuple[Post, Job]:
        """Record a post of ``query`` (or of the next prompt in the queue) and the job that sends it."""
        settings = await self._guilds.settings(guild_id)
        if settings.channel(Purpose.PROMPTS) is None:
            raise UserError("prompts.no_channel")
        catalogue = await self.catalogue(guild_id)
        wanted = None if query is None else _find(catalogue, query)
        prompts = {p.key: p for p in catalogue}
        now = self._clock.now()
        async with self.store.transaction() as tx:
            prompt = await self._take(tx, guild_id, prompts, None if wanted is None else wanted.key, now)
            return await self._create_post(tx, guild_id, prompt, None, now)

    async def materialise_due(self, now: datetime, shards: Shards = EVERY) -> None:
        """The ticker: each server (of ``shards``) whose scheduled slot has come gets one post. After downtime
        only the latest missed slot is posted. While a post of the server is still waiting (its channel is
        broken), a new slot adds nothing: the waiting one goes out when the channel works, not a pile of them."""
        for guild_id, schedule in await self.store.enabled_schedules(shards):
            try:
                await self._materialise(guild_id, schedule, now)
            except Exception:
                # One server's fault must not stop the others' prompts.
                log.exception("Could not schedule the prompt of guild %s", guild_id)

    async def _materialise(self, guild_id: int, schedule: Schedule, now: datetime) -> None:
        """One server's due slot, if any, as a post and its job, written together."""
        settings = await self._guilds.settings(guild_id)
        slot = schedule_rules.due_slot(schedule, ZoneInfo(settings.timezone_name), now)
        if slot is None:
            return
        prompts = {p.key: p for p in await self.catalogue(guild_id)}
        async with self.store.transaction() as tx:
            if not await self.store.advance_slot(tx, guild_id, schedule.last_slot, slot):
                return
            if await self.store.pending_posts(tx, guild_id):
                log.info("Guild %s: a prompt is still waiting to be posted; the slot %s adds none",
                         guild_id, slot.isoformat())
                return
            prompt = await self._take(tx, guild_id, prompts, None, now)
            post, _ = await self._create_post(tx, guild_id, prompt, slot, now)
        log.info("Guild %s: scheduled prompt %s for the slot %s (post %s)", guild_id, prompt.key,
                 slot.isoformat(), post.id)

    async def _take(self, tx: Transaction, guild_id: int, prompts: dict[str, Prompt], wanted: str | None,
                    now: datetime) -> Prompt:
        """The prompt to post (``wanted`` or the next one), moved to the end of the queue."""
        entries = await self.store.queue(tx, guild_id, list(prompts))
        _, cycle = await self.store.schedule(tx, guild_id, now)
        entry, current = queue_rules.next_entry(entries, cycle, prompts)
        if entry is None:
            raise UserError("prompts.empty_queue")
        if current != cycle:
            await self.store.set_cycle(tx, guild_id, current)
        key = wanted or entry.prompt_key
        await self.store.take(tx, guild_id, key, current)
        return prompts[key]

    async def _create_post(self, tx: Transaction, guild_id: int, prompt: Prompt, slot: datetime | None,
                           now: datetime) -> tuple[Post, Job]:
        post_id = await self.store.create_post(tx, guild_id, prompt.key, prompt.title("en"), slot, now)
        job = await self._outbox.enqueue(tx, POST_JOB, guild_id, f"{POST_JOB}:{post_id}", {"post": post_id},
                                         due_at=now, now=now)
        post = await self.store.post_in(tx, post_id)
        return post, job

    async def prompt_of(self, post: Post) -> Prompt:
        """The prompt a post was made from (it may have been an essay this version no longer ships)."""
        for prompt in await self.catalogue(post.guild_id):
            if prompt.key == post.prompt_key:
                return prompt
        raise UserError("prompts.gone", title=post.title)

    async def post(self, post_id: int) -> Post:
        post = await self.store.post(post_id)
        if post is None:
            raise UserError("prompts.gone", title=str(post_id))
        return post

    # -- the queue

    async def queue(self, guild_id: int) -> QueueView:
        prompts = {p.key: p for p in await self.catalogue(guild_id)}
        settings = await self._guilds.settings(guild_id)
        now = self._clock.now()
        async with self.store.transaction() as tx:
            entries = await self.store.queue(tx, guild_id, list(prompts))
            schedule, cycle = await self.store.schedule(tx, guild_id, now)
            waiting = await self.store.pending_posts(tx, guild_id)
        jobs = {int(job.payload.get("post", 0)): job for job in await self._outbox.open_jobs(guild_id, POST_JOB)}
        pending = tuple(
            PendingPost(post, prompts.get(post.prompt_key), job.attempts, job.last_error, job.due_at)
            for post in waiting if (job := jobs.get(post.id)) is not None
        )
        zone = ZoneInfo(settings.timezone_name)
        next_slot = schedule_rules.next_post_time(schedule, zone, now)
        upcoming = tuple(prompts[e.prompt_key] for e in queue_rules.upcoming(entries, cycle, prompts, UPCOMING))
        return QueueView(upcoming, schedule, settings.timezone_name, next_slot, pending)

    async def skip(self, guild_id: int) -> Skipped:
        prompts = {p.key: p for p in await self.catalogue(guild_id)}
        now = self._clock.now()
        async with self.store.transaction() as tx:
            skipped = await self._take(tx, guild_id, prompts, None, now)
            entries = await self.store.queue(tx, guild_id, [])
            _, cycle = await self.store.schedule(tx, guild_id, now)
        following, _ = queue_rules.next_entry(entries, cycle, prompts)
        return Skipped(skipped, None if following is None else prompts[following.prompt_key])

    async def add(self, guild_id: int, title: str, text: str, questions: Sequence[str], *,
                  author_id: int) -> tuple[Prompt, int]:
        """Store a custom prompt exactly as typed (blank questions dropped); it joins the current cycle.
        The prompt and its place among the upcoming ones."""
        kept = _questions(questions)
        if not visible(text):
            raise UserError("prompts.add.empty_text")
        if len(title) > TITLE_MAX or len(text) > TEXT_MAX:
            raise UserError("prompts.add.too_long", title=TITLE_MAX, text=TEXT_MAX, question=QUESTION_MAX)
        now = self._clock.now()
        language = written_in("\n".join((title, text, *kept)))
        async with self.store.transaction() as tx:
            custom = await self.store.add_custom(tx, guild_id, title, text, kept, author_id, now, language)
            prompts = {p.key: p for p in self._essays}
            prompts.update((c.key, custom_prompt(c)) for c in await self.store.customs(tx, guild_id))
            entries = await self.store.queue(tx, guild_id, list(prompts))
            _, cycle = await self.store.schedule(tx, guild_id, now)
        order = [e.prompt_key for e in queue_rules.upcoming(entries, cycle, prompts, len(entries))]
        return custom_prompt(custom), order.index(custom.key) + 1

    async def translate(self, guild_id: int, key: str, title: str, summary: str,
                        questions: Sequence[str]) -> tuple[Prompt, str]:
        """Give a custom prompt (``key``: "custom:<id>") its title, a summary and its questions in the other
        language (given again: replaced); its posts, past ones too, then get a button for it. The prompt, and
        the language it was given in."""
        kind, _, number = key.partition(":")
        kept = _questions(questions)
        if not (visible(title) or visible(summary) or kept):
            raise UserError("prompts.translate.empty")
        if len(title) > TITLE_MAX or len(summary) > SUMMARY_MAX:
            raise UserError("prompts.translate.too_long", title=TITLE_MAX, summary=SUMMARY_MAX, question=QUESTION_MAX)
        async with self.store.transaction() as tx:
            custom = next((c for c in await self.store.customs(tx, guild_id)
                           if kind == PromptKind.CUSTOM.value and str(c.id) == number), None)
            if custom is None:
                raise UserError("prompts.translate.gone")
            translation = Translation(title, summary, kept)
            await self.store.set_translation(tx, guild_id, custom.id, translation)
        return custom_prompt(replace(custom, translation=translation)), other_language(written_language(custom))

    # -- the schedule

    async def schedule(self, guild_id: int) -> tuple[Schedule, str, datetime | None]:
        """The schedule, the server's time zone, and the next slot (None when off)."""
        settings = await self._guilds.settings(guild_id)
        now = self._clock.now()
        async with self.store.transaction() as tx:
            schedule, _ = await self.store.schedule(tx, guild_id, now)
        zone = ZoneInfo(settings.timezone_name)
        upcoming = schedule_rules.next_post_time(schedule, zone, now)
        return schedule, settings.timezone_name, upcoming

    async def set_schedule(self, guild_id: int, weekday: str | None, at: str | None, enabled: bool | None, *,
                           actor_id: int) -> ScheduleChange:
        """Change what is given, keep the rest. A schedule switched on (or moved) starts with the next slot:
        a slot that passed before the change is never posted for it."""
        day = None if weekday is None else schedule_rules.parse_weekday(weekday)
        clock_time = None if at is None else schedule_rules.parse_time(at)
        settings = await self._guilds.settings(guild_id)
        zone = ZoneInfo(settings.timezone_name)
        now = self._clock.now()
        async with self.store.transaction() as tx:
            old, _ = await self.store.schedule(tx, guild_id, now)
            new = Schedule(old.weekday if day is None else day, old.at if clock_time is None else clock_time,
                           old.enabled if enabled is None else enabled, old.last_slot)
            change = ScheduleChange(old, new, settings.timezone_name, None)
            if change.changed:
                if new.enabled:
                    new = Schedule(new.weekday, new.at, True, schedule_rules.latest_slot(now, new.weekday, new.at,
                                                                                          zone))
                audit = Change(SCHEDULE_SETTING, describe_schedule(old), describe_schedule(new))
                await self.store.set_schedule(tx, guild_id, new, audit, actor_id=actor_id, now=now)
        upcoming = schedule_rules.next_post_time(new, zone, now)
        return ScheduleChange(old, new, settings.timezone_name, upcoming)

    # -- engagement

    async def record_reply(self, guild_id: int, thread_id: int, user_id: int) -> bool:
        return await self.store.record_reply(guild_id, thread_id, user_id)

    async def most_discussed(self, guild_id: int, limit: int) -> tuple[list[Post], int]:
        return await self.store.most_discussed(guild_id, limit)

    async def totals(self, guild_id: int) -> tuple[int, int]:
        """Prompts posted in the server, and their replies in all (for /stats)."""
        return await self.store.totals(guild_id)


def describe_schedule(schedule: Schedule) -> str:
    """A schedule as the audit trail keeps it: "monday 09:00", or "off"."""
    if not schedule.enabled:
        return "off"
    return f"{schedule_rules.WEEKDAYS[schedule.weekday]} {schedule.at.strftime('%H:%M')}"
