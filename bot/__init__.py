"""Kakehashi (架け橋): introductions across companies, on Discord."""

from pathlib import Path

__version__ = "0.1.0"

# Bundled, read-only content (locales, essays) lives beside the code, never in
# the writable database and never relative to the working directory.
DATA_DIR = Path(__file__).resolve().parent.parent / "data"
