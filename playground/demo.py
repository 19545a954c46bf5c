"""``python -m bot demo``: the playground. The local Discord, the real bot on it with the seeded community, and
the page to act in, all in this process on 127.0.0.1; no token, no network, no ``.env``.

The playground goes on where it was stopped: its database (in the user's data folder, never
``DATABASE_PATH``) and the local Discord's world, kept beside it when it stops. ``--fresh`` (or a first start)
builds the community afresh on a new database. Exit status: 0 after Ctrl-C (or SIGTERM), 2 when it
cannot start (the port is taken, a host other than loopback without ``--allow-remote``); those print one line.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import ipaddress
import logging
import os
import signal
import socket
import sys
import threading
import time
import webbrowser
from pathlib import Path
from typing import Final

from dotenv import dotenv_values

DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 8765
DATABASE_NAME: Final = "kakehashi-playground.db"
WORLD_NAME: Final = "kakehashi-playground.world"   # the local Discord's world and clock, between runs
EXIT_OK: Final = 0
EXIT_CANNOT_START: Final = 2


class CannotStart(Exception):
    """Why the playground cannot start, in one line that says what to do."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help=f"the page's port on 127.0.0.1 (default {DEFAULT_PORT}; 0 picks a free one)")
    parser.add_argument("--host", default=DEFAULT_HOST,
                        help="the address to serve the page on (default 127.0.0.1; another needs --allow-remote)")
    parser.add_argument("--allow-remote", action="store_true",
                        help="serve on a --host other than loopback: anyone who reaches it can act as any member")
    parser.add_argument("--no-browser", action="store_true", help="do not open the page in the default browser")
    parser.add_argument("--fresh", action="store_true",
                        help="start afresh: a new database and the community built again (else it goes on where "
                             "it was stopped)")
    parser.add_argument("--verbose", action="store_true", help="log what the bot does (INFO)")


def data_dir() -> Path:
    """Where the playground keeps its database: the user's data folder, not the working one."""
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / "kakehashi" / "playground"


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """The page's listening socket, bound before anything starts, so a busy port is one line, at once."""
    if not 0 <= port <= 65535:
        raise CannotStart(f"--port {port}: a port is a number from 0 to 65535.")
    try:
        family, kind, proto, _, address = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM)[0]
    except socket.gaierror:
        raise CannotStart(f"--host {host}: not an address of this machine.") from None
    sock = socket.socket(family, kind, proto)
    if os.name != "nt":   # reuse a port left in TIME_WAIT; on Windows the flag would share a busy one
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise CannotStart(f"port {port} on {host} is already in use (another playground?): stop it, or "
                              f"choose another port with --port.") from None
        if exc.errno == errno.EACCES:
            raise CannotStart(f"port {port} on {host} needs privileges: choose a port above 1023 with --port.") \
                from None
        raise CannotStart(f"cannot listen on {host} port {port}: {exc.strerror or exc}.") from None
    sock.setblocking(False)
    return sock


def database_path(*, fresh: bool) -> tuple[Path, bool]:
    """The playground's own database, and whether it goes on where it stopped (its world kept beside it);
    else, or when ``fresh``, it is erased. Refused if DATABASE_PATH (the environment's or .env's) names the
    same file."""
    from playground.session import load

    path = data_dir() / DATABASE_NAME
    configured = os.environ.get("DATABASE_PATH") or dotenv_values(Path.cwd() / ".env").get("DATABASE_PATH")
    if configured and Path(configured).expanduser().resolve() == path.resolve():
        raise CannotStart(f"DATABASE_PATH is {path}, the playground's own database, which --fresh erases: "
                          "point DATABASE_PATH elsewhere.")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        going_on = not fresh and load(path.with_name(WORLD_NAME), path) is not None
        if not going_on:
            for old in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm"),
                        path.with_name(WORLD_NAME)):
                old.unlink(missing_ok=True)
    except OSError as exc:
        raise CannotStart(f"cannot prepare {path}: {exc.strerror or exc}.") from None
    return path, going_on


def page_url(sock: socket.socket, host: str) -> str:
    port = sock.getsockname()[1]
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else ("localhost" if host == "localhost" else host)
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/"


def can_open_browser() -> bool:
    """A desktop to open a browser on: without one, ``webbrowser`` falls back to text browsers in this terminal."""
    if sys.platform in ("win32", "darwin"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def main(args: argparse.Namespace) -> int:
    host: str = args.host
    if not is_loopback(host) and not args.allow_remote:
        print(f"kakehashi: the playground lets whoever reaches it act as any member and the admin, so it serves "
              f"only 127.0.0.1; to serve on {host} anyway, add --allow-remote.", file=sys.stderr)
        return EXIT_CANNOT_START
    try:
        sock = bind(host, args.port)
        database, going_on = database_path(fresh=args.fresh)
    except CannotStart as exc:
        print(f"kakehashi: {exc}", file=sys.stderr)
        return EXIT_CANNOT_START
    if not is_loopback(host):
        print(f"kakehashi: warning: serving on {host}: anyone who can reach this address can act as any member "
              "and the admin of the playground.", file=sys.stderr)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(serve(sock, host, database, going_on=going_on, open_browser=not args.no_browser))
    except KeyboardInterrupt:   # where the loop cannot take signals (Windows), Ctrl-C arrives as this
        print("Stopped.", flush=True)
    finally:
        sock.close()
    return EXIT_OK


async def serve(sock: socket.socket, host: str, database: Path, *, going_on: bool, open_browser: bool) -> None:
    from aiohttp import web

    from playground.session import Playground
    from playground.web import PlaygroundPage

    started = time.monotonic()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):   # Windows: Ctrl-C raises KeyboardInterrupt instead
            loop.add_signal_handler(signum, stop.set)
    if going_on:
        print(f"Kakehashi playground: going on where it stopped ({database}; --fresh starts afresh)…", flush=True)
    else:
        print(f"Kakehashi playground: building the community on a new database ({database})…", flush=True)
    playground = await Playground.start(database, kept=database.with_name(WORLD_NAME))
    port = sock.getsockname()[1]
    hosts = None if not is_loopback(host) else {f"{name}:{port}" for name in ("127.0.0.1", "localhost", "[::1]")}
    page = PlaygroundPage(playground, allowed_hosts=hosts)
    runner = web.AppRunner(page.app(), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    await web.SockSite(runner, sock).start()
    url = page_url(sock, host)
    print(f"Ready in {time.monotonic() - started:.1f} s: {url}  (Ctrl-C to stop)", flush=True)
    if open_browser:
        if can_open_browser():
            threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()
        else:
            print("No desktop to open a browser on: open the address above in yours.", flush=True)
    try:
        await stop.wait()
    finally:
        print("Stopping…", flush=True)
        page.close()
        await runner.cleanup()
        await playground.stop()
        print("Stopped.", flush=True)
