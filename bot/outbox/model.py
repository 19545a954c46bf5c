"""Jobs of the outbox as plain, frozen data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import Any


class JobState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"


@dataclass(frozen=True)
class Failure:
    """Why an attempt failed, as a message key and its parameters (plain JSON values), for admins."""

    key: str
    params: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class NewJob:
    """A job to add (``OutboxStore.enqueue_many``): what ``OutboxStore.enqueue`` takes for one."""

    kind: str
    guild_id: int
    dedupe_key: str
    payload: Mapping[str, Any]
    due_at: datetime
    member_id: int | None = None


@dataclass(frozen=True)
class Job:
    id: int
    kind: str
    guild_id: int
    dedupe_key: str
    payload: Mapping[str, Any]
    state: JobState
    due_at: datetime
    attempts: int
    last_error: Failure | None
    created_at: datetime


@dataclass(frozen=True)
class Claim:
    """A job just claimed, and whether its server had another job due then (so its turn comes round again)."""

    job: Job
    more_due: bool


class RetryLater(Exception):
    """Raised by a handler when the work cannot be done now for a reason admins can fix
    (a channel gone, a permission missing): the job is kept and tried again later."""

    def __init__(self, key: str, **params: Any) -> None:
        super().__init__(key)
        self.failure = Failure(key, MappingProxyType(params))
