"""The layers of docs/architecture.md hold: nothing in ``bot/`` imports ``cogs/``, no cog imports another cog, and
no feature package (nor the core modules beside them) imports discord. Every module of ``bot/`` is imported (it must
import cleanly on its own), and its own import statements are read, so an import that happens to be satisfied
elsewhere still counts."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import bot

BOT = Path(bot.__file__).resolve().parent
# The glue: the only modules of bot/ that may import discord (docs/architecture.md).
GLUE = {"bot.__main__", "bot.client", "bot.interactions", "bot.posting", "bot.translator", "bot.checks", "bot.ui",
        "bot.channels", "bot.threads", "bot.profile_form", "bot.gateway"}
MODULES = sorted(info.name for info in pkgutil.walk_packages([str(BOT)], prefix="bot."))


def imported(module: str) -> set[str]:
    """The top-level names of what the module's own source imports."""
    path = BOT.joinpath(*module.split(".")[1:])
    source = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    names: set[str] = set()
    for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def test_every_module_of_bot_is_found() -> None:
    expected = {"bot.storage", "bot.heap", "bot.matching.service", "bot.matching.worker", "bot.outbox.store"}
    assert expected | GLUE <= set(MODULES)


@pytest.mark.parametrize("module", MODULES)
def test_a_module_of_bot_imports_on_its_own_and_keeps_to_its_layer(module: str) -> None:
    if module != "bot.__main__":   # importing it would start the command line
        importlib.import_module(module)
    names = imported(module)
    assert "cogs" not in names, f"{module} imports cogs/: bot/ must not depend on the cogs"
    if module not in GLUE:
        assert "discord" not in names, f"{module} imports discord: only the glue may ({sorted(GLUE)})"


COGS = BOT.parent / "cogs"


@pytest.mark.parametrize("path", sorted(COGS.glob("*.py")), ids=lambda path: path.name)
def test_a_cog_never_imports_another_cog(path: Path) -> None:
    """What two cogs share is a glue module of bot/ (bot/threads.py, bot/profile_form.py), not one cog imported
    by the other."""
    cogs = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            cogs.update(alias.name for alias in node.names if alias.name.split(".")[0] == "cogs")
        elif isinstance(node, ast.ImportFrom) and (node.level > 0 or (node.module or "").split(".")[0] == "cogs"):
            cogs.add("." * node.level + (node.module or ""))
    assert cogs == set(), f"{path.name} imports {sorted(cogs)}"


def test_the_bots_own_process_never_loads_numba() -> None:
    """Rounds are planned in the round worker's process (bot/matching/worker.py): the bot and its cogs import
    the pairing, and with it numba and LLVM (58 MB of the bot's memory), only where a round is planned."""
    modules = ["bot.__main__", "bot.client", *(f"cogs.{path.stem}" for path in sorted(COGS.glob("*.py")))]
    code = (f"import importlib, sys\nfor name in {modules!r}: importlib.import_module(name)\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'numba', 'llvmlite'}))")
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           cwd=BOT.parent)
    assert found.stdout.strip() == "[]", found.stdout
