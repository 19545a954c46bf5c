"""A community stored straight into the bot's database before the bot starts: profiles, languages and joined
match rounds for hundreds or thousands of members in a few seconds, where going through the slash commands
(``/intro edit``, the languages menu, ``/match join``) costs about a second a member.

Members must exist in the fake Discord too, with the same ids, or the bot takes them for members who left
while it was away (it compares its data with the server's member list when it connects). So a test makes
the fake's members first, then seeds their profiles by id::

    members = [discord_server.add_member(world.guild, f"m{n:04d}") for n in range(400)]
    await seed_community(bot_runner.database_path, world.guild.id, people(members), now=clock.now())
    await bot_runner.start()

Everything goes through the project's own stores, on a :class:`Storage` opened on the file (so the
migrations run as they would for the bot): each profile with ``IntroStore.change_profile`` (the store has no
batch write; it is one transaction a member, about a thousand members a second), and every member's choice to
take part in rounds with ``MatchStore.write_member``, all in one transaction. No SQL is written here.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Protocol

from bot.intros import companies
from bot.intros.model import Profile
from bot.intros.profile import parse_languages
from bot.intros.store import IntroStore
from bot.matching.model import MatchMember
from bot.matching.store import MatchStore
from bot.storage import Storage

# What members speak, in the proportions a Japanese-English community might have: everyone shares a language
# with two thirds of the others, so a round can pair (nearly) everyone.
LANGUAGES: tuple[tuple[str, ...], ...] = (("en", "ja"), ("en",), ("ja",))
ROLES = ("Engineer", "Sales", "Designer", "Product manager", "Researcher", "Consultant")
INDUSTRIES = ("Medical devices", "Finance", "Games", "Logistics", "Education", "Energy")
CITIES = ("Tokyo", "Osaka", "Singapore", "London", "San Francisco", "Sydney")


class FakeMember(Protocol):
    """What seeding needs of a member of the fake Discord (``tests.fakediscord.Member``)."""

    @property
    def id(self) -> int: ...


@dataclass(frozen=True)
class Person:
    """One member's profile as seeding writes it, and whether they joined match rounds."""

    user_id: int
    display_name: str
    company: str
    languages: tuple[str, ...] = ("en",)
    role: str = ""
    industry: str = ""
    location: str = ""
    joined: bool = True


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
    storage = await Storage.open(database)
    try:
        intros = IntroStore(storage)
        written = list(community)
        for person in written:
            await intros.change_profile(guild_id, person.user_id, _replace_with(profile_of(guild_id, person)), moment)
        joining = [person for person in written if person.joined]
        async with storage.transaction() as tx:
            for person in joining:
                await MatchStore.write_member(
                    tx, MatchMember(guild_id, person.user_id, joined=True, joined_at=moment), moment)
    finally:
        await storage.close()
    return Seeded(profiles=len(written), joined=len(joining))


def _replace_with(profile: Profile) -> Callable[[Profile | None], Profile]:
    return lambda _current: profile


def profile_of(guild_id: int, person: Person) -> Profile:
    """The profile ``/intro edit`` and the languages menu would have saved for ``person``."""
    key = companies.company_key(person.company)
    if not key:
        raise ValueError(f"{person.company!r} has no letters or digits to compare companies by")
    return Profile(guild_id, person.user_id, person.display_name, person.company, key, role=person.role,
                   industry=person.industry, location=person.location,
                   languages=parse_languages(person.languages))
