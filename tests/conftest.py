"""Settings for every test."""

from __future__ import annotations

from hypothesis import settings

# Property tests check rules, not speed (benchmarks under bench/ do that): hypothesis's 200 ms deadline
# per example only makes them flaky on a loaded two-core machine.
settings.register_profile("kakehashi", deadline=None)
settings.load_profile("kakehashi")
