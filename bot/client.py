"""The bot: storage opened, cogs loaded, commands synced only when they changed (and only by the process that
runs shard 0, once for the whole deployment).

It is an ``AutoShardedBot``: with SHARD_COUNT and SHARD_IDS it runs those shards of that many, and does the
due work of their servers only (bot/shards.py); with neither, every shard Discord recommends."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from typing import Any, Final

import discord
from discord import app_commands
from discord.ext import commands

from bot import gateway, heap
from bot.clock import Clock, SystemClock
from bot.config import Settings
from bot.guilds.rules import all_required_permissions
from bot.guilds.service import GuildConfig
from bot.guilds.store import GuildSettingsStore
from bot.i18n import Catalog, default_catalog
from bot.interactions import report_error
from bot.intros.service import IntroService
from bot.intros.store import IntroStore
from bot.matching.service import MatchService
from bot.matching.store import MatchStore
from bot.matching.worker import RoundWorker
from bot.outbox.runner import Outbox
from bot.outbox.store import OutboxStore
from bot.prompts.essays import load_essays
from bot.prompts.service import PromptService
from bot.prompts.store import PromptStore
from bot.shards import EVERY, Shards
from bot.storage import Storage
from bot.sync.store import CommandSyncStore
from bot.translator import CatalogTranslator
from bot.ui import Forms

log = logging.getLogger(__name__)

# Every feature's cog, in load order. Each cog's setup() registers its own
# persistent (dynamic) buttons, so they work again right after a restart.
EXTENSIONS: Final = ("cogs.config", "cogs.prompts", "cogs.intros", "cogs.welcomes", "cogs.matching",
                     "cogs.rounds")

# Exactly what the invite link asks for: what the channels' purposes need.
REQUIRED_PERMISSIONS: Final = discord.Permissions(**dict.fromkeys(sorted(all_required_permissions()), True))
INVITE_SCOPES: Final = ("bot", "applications.commands")


def required_intents() -> discord.Intents:
    intents = discord.Intents.none()
    intents.guilds = True
    intents.members = True  # privileged: welcomes, reminders, leaving members
    intents.guild_messages = True
    intents.message_content = True  # privileged: reading introductions members write
    return intents


def invite_url(client_id: int) -> str:
    return discord.utils.oauth_url(client_id, permissions=REQUIRED_PERMISSIONS, scopes=INVITE_SCOPES)


class StartupError(Exception):
    """Discord refused something the bot needs to start; the message is one line for the operator."""


class KakehashiTree(app_commands.CommandTree["KakehashiBot"]):
    async def on_error(self, interaction: discord.Interaction[KakehashiBot], error: app_commands.AppCommandError,
                       /) -> None:
        await report_error(interaction, error)


def shards_of(settings: Settings) -> Shards:
    """The shards whose servers this process looks after."""
    if settings.shard_count is None or settings.shard_ids is None:
        return EVERY
    return Shards(settings.shard_count, frozenset(settings.shard_ids))


def _sharding(settings: Settings) -> dict[str, Any]:
    """What discord.py is told of shards: nothing (it asks Discord how many), or the count and these ids."""
    if settings.shard_count is None:
        return {}
    return {"shard_count": settings.shard_count, "shard_ids": list(settings.shard_ids or range(settings.shard_count))}


class KakehashiBot(commands.AutoShardedBot):
    def __init__(self, settings: Settings, *, clock: Clock | None = None, catalog: Catalog | None = None,
                 force_sync: bool = False) -> None:
        # The bot never joins voice; spare operators discord.py's start-up warnings about it.
        discord.VoiceClient.warn_nacl = False
        discord.VoiceClient.warn_dave = False
        gateway.install()   # events read one at a time, others' turns between them (bot/gateway.py)
        super().__init__(
            # No text commands: every command is a slash command.
            command_prefix=commands.when_mentioned,
            help_command=None,
            intents=required_intents(),
            allowed_mentions=discord.AllowedMentions.none(),
            tree_cls=KakehashiTree,
            **_sharding(settings),
        )
        self.settings = settings
        self.force_sync = force_sync
        self.clock: Clock = clock or SystemClock()
        self.catalog = catalog or default_catalog()
        self._storage: Storage | None = None
        self._guild_config: GuildConfig | None = None
        # Features register their job handlers while their cogs load, before the database is open.
        self.outbox = Outbox(self.clock, shards=shards_of(settings), lease_seconds=settings.lease_seconds)
        self._prompts: PromptService | None = None
        self._intros: IntroService | None = None
        self._matching: MatchService | None = None
        # The forms (modals) the cogs open, routed by custom id (bot/ui.py).
        self.forms = Forms()
        # Servers where Discord refused to close the bot's private threads to invitations (bot/threads.py): it
        # is not asked again there until a restart.
        self.invitations_refused: set[int] = set()
        # Rounds are planned in a process of their own, started at the first round (not at every start).
        self._round_worker = RoundWorker()
        # The bot's own tasks (the outbox, the heap's upkeep, the suggestion indexes made after a start),
        # stopped by close().
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def storage(self) -> Storage:
        if self._storage is None:
            raise RuntimeError("storage is opened in setup_hook; the bot has not started")
        return self._storage

    @property
    def guild_config(self) -> GuildConfig:
        if self._guild_config is None:
            raise RuntimeError("the bot has not started")
        return self._guild_config

    @property
    def prompts(self) -> PromptService:
        if self._prompts is None:
            raise RuntimeError("the bot has not started")
        return self._prompts

    @property
    def intros(self) -> IntroService:
        if self._intros is None:
            raise RuntimeError("the bot has not started")
        return self._intros

    @property
    def matching(self) -> MatchService:
        if self._matching is None:
            raise RuntimeError("the bot has not started")
        return self._matching

    async def setup_hook(self) -> None:
        essays = load_essays()
        self._storage = await Storage.open(self.settings.database)
        log.info("Database: %s (%s); running %s as %s", self._storage.where, self._storage.dialect,
                 self.outbox.shards.describe(), self.outbox.owner)
        self._guild_config = GuildConfig(GuildSettingsStore(self._storage), self.clock)
        outbox_store = OutboxStore(self._storage)
        self._prompts = PromptService(PromptStore(self._storage), outbox_store, self._guild_config, essays,
                                      self.clock)
        self._intros = IntroService(IntroStore(self._storage), self.clock, keep_left_days=self.settings.keep_left_days)
        self._intros.watch(self._guild_config.forget_language)
        self._matching = MatchService(MatchStore(self._storage), self._intros, self._prompts.store,
                                      self._guild_config, self.clock, planner=self._round_worker.plan,
                                      worker=self._round_worker)
        await self.tree.set_translator(CatalogTranslator(self.catalog))
        for extension in EXTENSIONS:
            await self.load_extension(extension)
        await self.sync_commands()
        await self._load_indexes()
        await self.outbox.start(outbox_store)
        self._tasks += [asyncio.create_task(self._run_outbox(), name="outbox"),
                        asyncio.create_task(heap.keep_settled(), name="heap"),
                        asyncio.create_task(self._prepare_indexes(), name="suggestion indexes")]

    async def on_interaction(self, interaction: discord.Interaction[Any]) -> None:
        """Answer a form's submit; remember the member's language for what they are sent alone (DMs). In a
        task of its own (discord.py's dispatch), so commands and buttons never wait for it."""
        await self.forms.dispatch(interaction)
        if interaction.guild_id is not None and self._guild_config is not None:
            await self._guild_config.remember_language(interaction.guild_id, interaction.user.id,
                                                       interaction.locale.value)

    async def _run_outbox(self) -> None:
        # Jobs need the servers and channels Discord sends on connecting.
        await self.wait_until_ready()
        await self.outbox.run_forever()

    async def _load_indexes(self) -> None:
        """Before connecting, the stored suggestion index of every large server (bot/matching/snapshots.py):
        well under a second for 100,000 members, where building one takes the worker seconds."""
        try:
            await self.matching.load_indexes(self.outbox.shards)
        except Exception:
            log.exception("Could not load the stored suggestion indexes; they are built after the start instead")

    async def _prepare_indexes(self) -> None:
        """After a start, the suggestion index of every large server not loaded, in the round worker: a
        server's first ``/match suggest`` then finds it ready (bot/matching/service.py, ``prepare_indexes``).
        Then the stored ones are kept current (``keep_snapshots``)."""
        await self.wait_until_ready()
        started = asyncio.get_running_loop().time()
        try:
            built = await self.matching.prepare_indexes(self.outbox.shards,
                                                        lambda guild: self.get_guild(guild) is not None)
        except Exception:
            log.exception("Could not prepare the suggestion indexes; each is built on its first use instead")
        else:
            if built:
                log.info("Suggestion indexes of %d large servers ready in %.1f s", built,
                         asyncio.get_running_loop().time() - started)
        await self.matching.keep_snapshots()

    async def sync_commands(self) -> None:
        """Send the command tree to Discord only if it differs from what was last sent.

        Global commands are rate-limited and take a while to spread, so syncing on
        every start is wasteful; the hash of the payload (translations included)
        is kept per scope in the database. With DEV_GUILD_ID set, commands go to
        that one server instead, where changes show at once. ``force_sync``
        (``python -m bot run --sync``) syncs anyway, e.g. after commands were
        removed on Discord's side.
        """
        if not self.outbox.shards.first:
            log.info("Commands are synced by the process running shard 0, not this one (%s)",
                     self.outbox.shards.describe())
            return
        guild = discord.Object(self.settings.dev_guild_id) if self.settings.dev_guild_id else None
        if guild is not None:
            self.tree.copy_global_to(guild=guild)
            scope = f"guild:{self.application_id}:{guild.id}"
        else:
            scope = f"global:{self.application_id}"
        translator = self.tree.translator
        payload: list[dict[str, Any]] = []
        for command in self.tree.get_commands(guild=guild):
            if translator is not None:
                payload.append(await command.get_translated_payload(self.tree, translator))
            else:
                payload.append(command.to_dict(self.tree))
        digest = hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()
        store = CommandSyncStore(self.storage)
        if not self.force_sync and await store.last_hash(scope) == digest:
            log.info("Commands unchanged since the last sync (%s); not syncing", scope)
            return
        try:
            synced = await self.tree.sync(guild=guild)
        except discord.Forbidden as exc:
            where = f"the server DEV_GUILD_ID={guild.id}" if guild is not None else "this application"
            raise StartupError(
                f"Discord refused the command sync to {where} ({exc.status}/{exc.code}): check that the bot is "
                "in that server and was invited with the applications.commands scope (python -m bot invite)"
            ) from None
        except discord.HTTPException as exc:
            raise StartupError(f"Discord refused the command sync ({exc.status}/{exc.code}: {exc.text})") from None
        await store.record(scope, digest, self.clock.now())
        log.info("Synced %d commands (%s)", len(synced), scope)

    async def on_socket_event_type(self, event_type: str) -> None:
        """A server's member list comes in chunks of 1,000 for up to a minute after a start: each chunk's
        members are settled once read (this runs after discord.py has read the event), so the collector's
        full runs meanwhile walk neither them nor the chunks before (bot/heap.py)."""
        if event_type == "GUILD_MEMBERS_CHUNK":
            heap.settled("a chunk of a server's members")

    async def on_ready(self) -> None:
        assert self.user is not None
        log.info("Ready as %s (id %s) in %d servers", self.user, self.user.id, len(self.guilds))

    async def close(self) -> None:
        # discord.py's READY waits up to two seconds for the servers' GUILD_CREATEs in a task
        # (ConnectionState._delay_ready) that closing does not stop: closed in that window, the bot would
        # still get on_ready, which it can no longer schedule ("coroutine 'Client._run_event' was never
        # awaited"). Stopped here instead.
        delayed_ready: asyncio.Task[None] | None = getattr(self._connection, "_ready_task", None)
        if delayed_ready is not None and not delayed_ready.done():
            delayed_ready.cancel()
        try:
            tasks, self._tasks = self._tasks, []
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self._round_worker.close()
            if self._matching is not None:
                await self._matching.close()
            if not hasattr(self, "_AutoShardedClient__queue"):
                # Closed before it logged in (a signal at once, a test that never starts it): discord.py's
                # AutoShardedClient makes the queue close() writes to only when logging in, and fails without it.
                await self._async_setup_hook()
            await super().close()
        finally:
            if self._storage is not None:
                await self._storage.close()
                self._storage = None
                log.info("Database closed")
            heap.released()
