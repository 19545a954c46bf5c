"""``python -m bot``: run the bot; ``python -m bot invite --client-id ID``: print its invite link;
``python -m bot demo``: the playground (playground/demo.py), the bot on a local Discord with a page to try it;
``python -m bot migrate``: bring the database's schema up to date and stop (no token needed).

Exit status: 0 after a clean shutdown (SIGINT or SIGTERM), 1 when Discord
refuses the bot (a rejected token, intents not enabled) or cannot be reached, 2 when a setting
or the database needs fixing first. Those cases print one line, never a
traceback, and never the token.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

import aiohttp
import discord
from dotenv import load_dotenv

from bot import DATA_DIR
from bot.client import KakehashiBot, StartupError, invite_url
from bot.config import Settings, SettingsError, load_database, load_settings, parse_snowflake
from bot.storage import Storage, StorageError

log = logging.getLogger("bot")

EXIT_OK = 0
EXIT_REFUSED = 1
EXIT_CONFIG = 2


class Refused(Exception):
    """Discord would not let the bot in, or could not be reached; the message says what to do."""


def _fail(message: str, status: int) -> int:
    print(f"kakehashi: {message}", file=sys.stderr)
    return status


def _sentence(text: object) -> str:
    words = str(text)
    return words if words.endswith((".", "?", "!")) else f"{words}."


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bot", description="Kakehashi, the Discord bot.")
    commands = parser.add_subparsers(dest="command", metavar="{run,invite,demo,migrate}")
    run_command = commands.add_parser("run", help="run the bot (the default)")
    run_command.add_argument("--sync", action="store_true",
                             help="sync commands to Discord even if they have not changed since the last sync")
    invite = commands.add_parser("invite", help="print the link that adds the bot to a server")
    invite.add_argument("--client-id", required=True,
                        help="the application id (Developer Portal → your application → General Information)")
    commands.add_parser("migrate", help="bring the database (DATABASE_URL or DATABASE_PATH) up to this version's "
                                        "schema, then stop; the bot does it too when it starts")
    # The entry point reaches the playground; nothing else in bot/ does.
    from playground import demo

    demo.add_arguments(commands.add_parser(
        "demo", help="try Kakehashi without Discord: a local Discord, a seeded community and a page on 127.0.0.1"))
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "demo":
        from playground import demo

        if not (DATA_DIR / "locales").is_dir():
            return _fail(f"bundled data not found in {DATA_DIR}: install from a checkout with "
                         "`pip install -e .` (see README).", EXIT_CONFIG)
        return demo.main(args)
    if args.command == "invite":
        try:
            client_id = parse_snowflake(args.client_id, "--client-id")
        except SettingsError as exc:
            return _fail(str(exc), EXIT_CONFIG)
        print(invite_url(client_id))
        return EXIT_OK

    if not (DATA_DIR / "locales").is_dir():
        return _fail(f"bundled data not found in {DATA_DIR}: install from a checkout with "
                     "`pip install -e .` (see README).", EXIT_CONFIG)
    # Values already in the environment win over .env, as usual.
    load_dotenv(Path.cwd() / ".env", override=False)
    if args.command == "migrate":
        return migrate(os.environ)
    try:
        settings = load_settings(os.environ)
    except SettingsError as exc:
        return _fail(str(exc), EXIT_CONFIG)
    discord.utils.setup_logging(level=settings.log_level, root=True)
    try:
        asyncio.run(run(settings, force_sync=getattr(args, "sync", False)))
    except Refused as exc:
        return _fail(str(exc), EXIT_REFUSED)
    except StorageError as exc:
        return _fail(_sentence(f"database: {exc}"), EXIT_CONFIG)
    return EXIT_OK


def migrate(env: Mapping[str, str]) -> int:
    """Migrate the database alone (before starting new versions of the shard processes, say). Under
    PostgreSQL's advisory lock, as at every start: processes starting meanwhile wait, then find it done."""
    try:
        url, path = load_database(env)
    except SettingsError as exc:
        return _fail(str(exc), EXIT_CONFIG)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    async def upgrade() -> tuple[str, int]:
        storage = await Storage.open(url if url is not None else path)
        try:
            return storage.where, await storage.version()
        finally:
            await storage.close()

    try:
        where, version = asyncio.run(upgrade())
    except StorageError as exc:
        return _fail(_sentence(f"database: {exc}"), EXIT_CONFIG)
    print(f"kakehashi: {where} is at schema {version:04d}")
    return EXIT_OK


async def run(settings: Settings, *, force_sync: bool = False) -> None:
    """Run until Discord stops us or a signal asks us to stop; always close the database."""
    bot = KakehashiBot(settings, force_sync=force_sync)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    runner = asyncio.create_task(bot.start(settings.token), name="kakehashi-bot")
    stopper = asyncio.create_task(stop.wait(), name="kakehashi-stop")
    try:
        await asyncio.wait({runner, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if stopper.done():
            log.info("Shutting down")
            await bot.close()
        await _outcome(runner)
    finally:
        stopper.cancel()
        if not bot.is_closed():
            await bot.close()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)


async def _outcome(runner: asyncio.Task[None]) -> None:
    try:
        await runner
    except discord.LoginFailure:
        raise Refused("Discord rejected DISCORD_TOKEN: reset the token in the Developer Portal "
                      "(your application → Bot → Reset Token) and put the new one in .env.") from None
    except discord.PrivilegedIntentsRequired:
        raise Refused("Discord refused the privileged intents: enable Server Members Intent and "
                      "Message Content Intent (Developer Portal → your application → Bot).") from None
    except StartupError as exc:
        raise Refused(str(exc)) from None
    except discord.HTTPException as exc:
        raise Refused(f"Discord answered {exc.status}/{exc.code} ({exc.text}); try again later.") from None
    except (aiohttp.ClientError, OSError) as exc:
        raise Refused(f"cannot reach Discord ({type(exc).__name__}: {exc}); check the network "
                      "and try again.") from None


if __name__ == "__main__":
    sys.exit(main())
