"""The one exception rules raise to talk to a member."""

from __future__ import annotations

from typing import Any


class UserError(Exception):
    """Something the member can fix. ``key`` names a message in data/locales.

    The glue turns it into an ephemeral reply in the member's language; it is
    never logged as a fault.
    """

    def __init__(self, key: str, **params: Any) -> None:
        super().__init__(key)
        self.key = key
        self.params = params
