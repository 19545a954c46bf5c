"""A community stored straight into the bot's database before the bot starts: profiles, languages and joined
match rounds for hundreds or a hundred thousand members in seconds, where going through the slash commands
(``/intro edit``, the languages menu, ``/match join``) costs about a second a member.

Members must exist in the fake Discord too, with the same ids, or the bot takes them for members who left
while it was away (it compares its data with the server's member list when it connects). So a test makes
the fake's members first, then seeds their profiles by id::

    members = [discord_server.add_member(world.guild, f"m{n:04d}") for n in range(400)]
    await seed_community(bot_runner.database_path, world.guild.id, people(members), now=clock.now())
    await bot_runner.start()

The database is created and migrated by :meth:`Storage.open`, as the bot would; then every row is written
with the stores' own statements (``IntroStore``'s profile upsert and member rows, ``MatchStore``'s member
upsert and avoid list) and the values ``IntroStore.change_profile``, ``MatchStore.write_member`` and
``MatchStore.add_avoided`` would give them, in one transaction on a plain ``sqlite3`` connection, a batch of
rows a statement (``executemany``): a store call per member costs about a millisecond, so 100,000 members
would take minutes; this way they take about 4 s (``bench/interactions_during_round.py`` seeds 100,000). No
SQL is written here.
"""

from __future__ import annotations

import asyncio
import json
import random
import sqlite3
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from bot.clock import to_text
from bot.intros import companies
from bot.intros.model import Profile
from bot.intros.profile import parse_languages
from bot.intros.store import ENSURE_MEMBER, MARK_INTRODUCED, UPSERT_PROFILE
from bot.matching.store import INSERT_AVOID, UPSERT_MEMBER
from bot.storage import Storage

# What members speak, in the proportions a Japanese-English community might have: everyone shares a language
# with two thirds of the others, so a round can pair (nearly) everyone.
LANGUAGES: tuple[tuple[str, ...], ...] = (("en", "ja"), ("en",), ("ja",))
ROLES = ("Engineer", "Sales", "Designer", "Product manager", "Researcher", "Consultant")
INDUSTRIES = ("Medical devices", "Finance", "Games", "Logistics", "Education", "Energy")
CITIES = ("Tokyo", "Osaka", "Singapore", "London", "San Francisco", "Sydney")


class FakeMember(Protocol):
    """What seeding needs of a member of the fake Discord (``playground.fakediscord.Member``)."""

    @property
    def id(self) -> int: ...


@dataclass(frozen=True)
class Person:
    """One member's profile as seeding writes it (the second step of ``/intro edit`` too, when given, and the
    companies they avoid), and whether they joined match rounds."""

    user_id: int
    display_name: str
    company: str
    languages: tuple[str, ...] = ("en",)
    role: str = ""
    industry: str = ""
    location: str = ""
    joined: bool = True
    timezone: str | None = None
    interests: tuple[str, ...] = ()
    offer: str = ""
    seek: str = ""
    open_to_intros: bool = True
    avoid: tuple[str, ...] = ()     # company names, as /match avoid takes them


def people(members: Sequence[FakeMember], *, seed: int = 1, companies_count: int | None = None,
           names: Sequence[str] | None = None) -> list[Person]:
    """A profile for each member, by id: a company among ``companies_count`` (default: one for every ten
    members, at least two), languages from :data:`LANGUAGES` in turn, a role, an industry and a city drawn
    with ``seed``. ``names`` (default ``member <n>``) are the profiles' display names."""
    rng = random.Random(seed)
    count = companies_count or max(2, len(members) // 10)
    return [Person(
        user_id=member.id,
        display_name=names[n] if names is not None else f"member {n}",
        company=f"Company {rng.randrange(count)}",
        languages=LANGUAGES[n % len(LANGUAGES)],
        role=rng.choice(ROLES),
        industry=rng.choice(INDUSTRIES),
        location=rng.choice(CITIES),
    ) for n, member in enumerate(members)]


@dataclass(frozen=True)
class Seeded:
    profiles: int
    joined: int


async def seed_community(database: Path, guild_id: int, community: Iterable[Person], *,
                         now: datetime | None = None) -> Seeded:
    """Store ``community``'s profiles in ``guild_id`` and the joins of those who ``joined``, in the database
    the bot will open at ``database`` (created and migrated if new). ``now`` is when they were written (the
    bot's clock, in tests that move one)."""
    moment = now or datetime.now(UTC)
    written = list(community)
    profiles = [profile_of(guild_id, person) for person in written]
    joining = [person for person in written if person.joined]
    avoiding = [(person.user_id, name) for person in written for name in person.avoid]
    storage = await Storage.open(database)   # created and migrated as the bot would
    await storage.close()
    await asyncio.to_thread(_write, database, guild_id, profiles, joining, avoiding, moment)
    return Seeded(profiles=len(written), joined=len(joining))


_BATCH = 5000   # rows a statement


def _write(database: Path, guild_id: int, profiles: Sequence[Profile], joining: Sequence[Person],
           avoiding: Sequence[tuple[int, str]], now: datetime) -> None:
    """The rows ``IntroStore.change_profile`` (a new profile, saved whole), ``MatchStore.write_member`` (joined
    rounds at ``now``) and ``MatchStore.add_avoided`` write, with their statements, in one transaction."""
    at = to_text(now)
    connection = sqlite3.connect(database, isolation_level=None)
    try:
        connection.execute("PRAGMA foreign_keys = ON")
        connection.execute("BEGIN IMMEDIATE")
        for start in range(0, len(profiles), _BATCH):
            batch = profiles[start:start + _BATCH]
            connection.executemany(UPSERT_PROFILE, [(
                guild_id, p.user_id, p.display_name, p.company, p.company_key, p.role, p.industry, p.location,
                p.timezone, json.dumps(list(p.languages)), json.dumps(list(p.interests), ensure_ascii=False),
                p.offer, p.seek, p.bio, p.visibility.value, int(p.open_to_intros), at, at,
            ) for p in batch])
            connection.executemany(ENSURE_MEMBER, [(guild_id, p.user_id) for p in batch])
            connection.executemany(MARK_INTRODUCED, [(at, guild_id, p.user_id) for p in batch])
        for start in range(0, len(joining), _BATCH):
            connection.executemany(UPSERT_MEMBER, [
                (guild_id, person.user_id, 1, None, 0, at, at) for person in joining[start:start + _BATCH]])
        connection.executemany(INSERT_AVOID, [
            (guild_id, user_id, companies.company_key(name), name, at) for user_id, name in avoiding])
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise
    finally:
        connection.close()


def profile_of(guild_id: int, person: Person) -> Profile:
    """The profile ``/intro edit`` and the languages menu would have saved for ``person``."""
    key = companies.company_key(person.company)
    if not key:
        raise ValueError(f"{person.company!r} has no letters or digits to compare companies by")
    return Profile(guild_id, person.user_id, person.display_name, person.company, key, role=person.role,
                   industry=person.industry, location=person.location, timezone=person.timezone,
                   languages=parse_languages(person.languages), interests=person.interests, offer=person.offer,
                   seek=person.seek, open_to_intros=person.open_to_intros)
