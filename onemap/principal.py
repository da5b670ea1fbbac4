"""Who is asking: a person's or kiosk's role, the admin unit they are limited to, and what
that allows. The read side enforces it; ``onemap.accounts`` says who someone is."""

from __future__ import annotations

import getpass
from dataclasses import dataclass

ROLES = ("admin", "command_center", "street_official", "analyst", "kiosk", "feed")
TOKEN_ROLES = ("kiosk", "feed")  # sign in by a token instead of a password
# Act from the UI (督办, 提醒, 并案; acknowledge an alarm, dispatch it as a case), each inside
# their own unit; the others only read.
ACTING_ROLES = ("admin", "command_center", "street_official")
ROLE_HELP = {
    "admin": "everything, personal fields in clear, manages users",
    "command_center": "everything; personal fields masked",
    "street_official": "one admin unit and its subtree; acts on the alarms within it",
    "analyst": "read and export; personal fields only with --personal-grant",
    "kiosk": "big screens: read-only, no personal fields, no export (signs in by token)",
    "feed": "a 12345 system posting case events (POST /api/cases) by bearer token; reads "
            "nothing; with --scope only cases within that unit",
}


@dataclass(frozen=True)
class Principal:
    name: str
    role: str
    scope: str | None = None          # the admin code they are limited to; None: all
    personal_grant: bool = False

    @property
    def can_export(self) -> bool:
        return self.role not in TOKEN_ROLES

    @property
    def can_act(self) -> bool:
        """Whether this principal may act (not only read): ``ACTING_ROLES``."""
        return self.role in ACTING_ROLES

    @property
    def personal(self) -> str | None:
        """How personal fields reach this principal: 'clear', 'masked' or None (never)."""
        if self.role in TOKEN_ROLES:
            return None
        if self.role == "admin" or self.personal_grant:
            return "clear"
        return "masked"


def operator() -> Principal:
    """Whoever runs the command line: it holds the database's credentials already."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return Principal(f"cli:{user}", "admin")
