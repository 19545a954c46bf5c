"""``python -m bot demo`` as a newcomer runs it: a process of its own, no token, no ``.env``, no network; what it
prints, the page it serves, its exit status."""

from __future__ import annotations

import asyncio
import signal
import socket
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import aiohttp
import pytest

from tests.e2e.test_cli import assert_one_line_error, clean_env, run

START_WITHIN = 15.0   # seconds from the command to a page (the target)


def demo_env(home: Path) -> dict[str, str]:
    """A fresh shell's environment, its home (and so the playground's data folder) in ``home``."""
    return clean_env(HOME=str(home), XDG_DATA_HOME=str(home / "data"))


async def test_a_busy_port_stops_with_one_line_and_status_2(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        outcome = await run(["-m", "bot", "demo", "--no-browser", "--port", str(port)], demo_env(tmp_path), tmp_path)
    assert_one_line_error(outcome, 2, f"port {port} on 127.0.0.1 is already in use", "--port")


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "example.com"])
async def test_a_host_other_than_loopback_is_refused_without_allow_remote(tmp_path: Path, host: str) -> None:
    outcome = await run(["-m", "bot", "demo", "--no-browser", "--host", host], demo_env(tmp_path), tmp_path)
    assert_one_line_error(outcome, 2, "--allow-remote", host)


async def start_demo(home: Path, *args: str) -> tuple[asyncio.subprocess.Process, str, float, str]:
    """Start the demo; wait for the line with its address. Returns the process, the address, the seconds it
    took and what it printed until then."""
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "demo", "--no-browser", "--port", "0", *args, cwd=home, env=demo_env(home),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    assert process.stdout is not None
    printed = ""
    while True:
        line = (await asyncio.wait_for(process.stdout.readline(), 60)).decode()
        assert line, f"the demo ended before it was ready: {(await process.communicate())[1].decode()}"
        printed += line
        if line.startswith("Ready in"):
            return process, line.split(": ", 1)[1].split()[0], time.monotonic() - started, printed


async def stop_demo(process: asyncio.subprocess.Process, signum: int) -> tuple[str, str]:
    process.send_signal(signum)
    stdout, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, stderr.decode()
    return stdout.decode(), stderr.decode()


async def test_the_demo_serves_the_page_without_a_token_and_stops_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    (tmp_path / "data" / "kakehashi" / "playground").mkdir(parents=True)
    old = tmp_path / "data" / "kakehashi" / "playground" / "kakehashi-playground.db"
    old.write_bytes(b"what an earlier start left")
    process, url, took, printed = await start_demo(tmp_path)
    try:
        assert url.startswith("http://127.0.0.1:") and took < START_WITHIN, (url, took)
        async with aiohttp.ClientSession() as http:
            async with http.get(url) as page:
                assert page.status == 200 and page.headers["Content-Type"] == "text/html; charset=utf-8"
                assert "Content-Security-Policy" in page.headers
                assert "/static/app.js" in await page.text()
            async with http.get(url + "api/world") as world:
                people = (await world.json())["people"]
                assert len(people) == 24 and sum(p["admin"] for p in people) == 1
            # Another name for this address (a page elsewhere pointing its domain here) gets nothing.
            async with http.get(url, headers={"Host": f"rebound.example:{url.rsplit(':', 1)[1]}"}) as rebound:
                assert rebound.status == 421
            async with http.post(url + "api/clock", data="to=day") as form:   # a form from another site
                assert form.status == 415
    finally:
        stdout, stderr = await stop_demo(process, signal.SIGINT)
    assert "Traceback" not in stderr and stderr.strip() == "", stderr
    assert "new database" in printed and stdout.rstrip().endswith("Stopped.")
    assert old.read_bytes() != b"what an earlier start left"   # without a kept world: a new database
    assert not (tmp_path / "kakehashi.db").exists()             # and never the bot's own


async def test_the_demo_goes_on_where_it_stopped_and_fresh_starts_afresh(tmp_path: Path) -> None:
    async def run(*options: str) -> tuple[str, object, datetime]:
        process, url, _, printed = await start_demo(tmp_path, *options)
        try:
            async with aiohttp.ClientSession() as http:
                async with http.get(url + "api/world") as world:
                    people = (await world.json())["people"]
                async with http.post(url + "api/clock", json={"to": "day"}) as moved:
                    now = datetime.fromisoformat((await moved.json())["now"])
        finally:
            await stop_demo(process, signal.SIGINT)
        return printed, people, now

    first_printed, first, first_now = await run()
    again_printed, again, again_now = await run()
    assert "new database" in first_printed and "going on where it stopped" in again_printed
    assert again == first and again_now == first_now + timedelta(days=1)   # the world and its clock kept
    fresh_printed, _, _ = await run("--fresh")
    assert "new database" in fresh_printed
    world = tmp_path / "data" / "kakehashi" / "playground" / "kakehashi-playground.world"
    world.write_bytes(b"not a world this version wrote")
    unreadable_printed, people, _ = await run()
    assert "new database" in unreadable_printed   # built afresh, as on a first start: new people (new ids)
    assert [p["name"] for p in people] == [p["name"] for p in first] and people != first


async def test_allow_remote_serves_on_another_host_with_a_warning(tmp_path: Path) -> None:
    process, url, _, _ = await start_demo(tmp_path, "--host", "0.0.0.0", "--allow-remote")
    try:
        async with aiohttp.ClientSession() as http, http.get(url + "api/world") as world:
            assert world.status == 200
    finally:
        _, stderr = await stop_demo(process, signal.SIGTERM)
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kakehashi: warning: serving on 0.0.0.0"), stderr


async def test_the_kakehashi_console_script_runs_the_demo_too(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("kakehashi")
    if not script.exists():
        pytest.skip("the project is not installed in this environment (pip install -e .)")
    process = await asyncio.create_subprocess_exec(
        str(script), "demo", "--host", "0.0.0.0", cwd=tmp_path, env=demo_env(tmp_path),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2 and "--allow-remote" in stderr.decode()
