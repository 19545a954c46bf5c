"""Prompts, the queue, the schedule and posts as plain, frozen data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, time
from enum import StrEnum

from bot.outbox.model import Failure

POST_JOB = "prompt.post"


class PromptKind(StrEnum):
    ESSAY = "essay"  # bundled in data/essays, with texts in every language
    CUSTOM = "custom"  # added by an admin with /prompts add, in the language they wrote it


class PostState(StrEnum):
    PENDING = "pending"  # intended (and maybe partly sent); the outbox finishes it
    POSTED = "posted"


@dataclass(frozen=True)
class Prompt:
    """What the bot posts: an essay or a custom prompt, in a shape that serves both."""

    key: str  # "essay:<slug>" or "custom:<id>"
    kind: PromptKind
    titles: Mapping[str, str]  # language -> title, in the languages it exists in (the first serves the others)
    summaries: Mapping[str, str]  # a custom prompt's only in the language it was translated into
    questions: Mapping[str, tuple[str, ...]]
    body: str

    @property
    def translated(self) -> bool:
        """Whether the title and questions exist in more than one language (an essay, or a prompt an admin
        gave in both), so a member can ask for the other language."""
        return len(self.titles) > 1

    @property
    def languages(self) -> tuple[str, ...]:
        """The languages its title and questions exist in (a custom prompt's first: the one it was written in)."""
        return tuple(self.titles)

    def title(self, language: str) -> str:
        return self.titles.get(language) or next(iter(self.titles.values()), "")

    def summary(self, language: str) -> str:
        return self.summaries.get(language, "")

    def questions_in(self, language: str) -> tuple[str, ...]:
        return self.questions.get(language) or next(iter(self.questions.values()), ())


@dataclass(frozen=True)
class Translation:
    """A custom prompt's title, a summary of its text and its questions in the other language."""

    title: str
    summary: str
    questions: tuple[str, ...]


@dataclass(frozen=True)
class CustomPrompt:
    id: int
    guild_id: int
    title: str
    body: str
    questions: tuple[str, ...]
    author_id: int
    created_at: datetime
    language: str | None = None              # the language it was written in; None: added before this was kept
    translation: Translation | None = None   # in the other language

    @property
    def key(self) -> str:
        return f"{PromptKind.CUSTOM.value}:{self.id}"


@dataclass(frozen=True)
class QueueEntry:
    prompt_key: str
    position: int
    last_cycle: int


@dataclass(frozen=True)
class Schedule:
    weekday: int  # Monday = 0
    at: time
    enabled: bool
    last_slot: datetime | None = None


@dataclass(frozen=True)
class ScheduleChange:
    old: Schedule
    new: Schedule
    timezone: str
    next_slot: datetime | None

    @property
    def changed(self) -> bool:
        return (self.old.weekday, self.old.at, self.old.enabled) != (self.new.weekday, self.new.at, self.new.enabled)


@dataclass(frozen=True)
class Post:
    id: int
    guild_id: int
    prompt_key: str
    title: str
    slot: datetime | None
    state: PostState
    language: str | None
    channel_id: int | None
    message_id: int | None
    thread_id: int | None
    parts_sent: int
    created_at: datetime
    posted_at: datetime | None
    replies: int
    participants: int


@dataclass(frozen=True)
class PendingPost:
    """A post the outbox has not finished: waiting for its first try, or failing and retried later."""

    post: Post
    prompt: Prompt | None  # None if this version no longer ships it
    attempts: int
    failure: Failure | None
    next_try: datetime


@dataclass(frozen=True)
class QueueView:
    """What ``/prompts queue`` shows."""

    upcoming: tuple[Prompt, ...]
    schedule: Schedule
    timezone: str
    next_slot: datetime | None
    pending: tuple[PendingPost, ...]


@dataclass(frozen=True)
class Skipped:
    skipped: Prompt
    next: Prompt | None
