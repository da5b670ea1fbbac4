"""Users, kiosk tokens, sign-in and the audit log, stored in PostGIS.

Passwords are hashed with scrypt (a standard memory-hard KDF, RFC 7914) and a random salt;
kiosk tokens are random 256-bit secrets stored as SHA-256. Failed sign-ins are counted per
name typed, and each one past the first few locks that name for twice as long as the last.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import math
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, text
from sqlalchemy.exc import IntegrityError

from onemap.errors import OnemapError
from onemap.principal import ROLES, Principal

SCRYPT = {"n": 2**14, "r": 8, "p": 1}
MIN_PASSWORD = 8
FREE_TRIES = 3            # failures before sign-in slows down
MAX_LOCK_SECONDS = 300
_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")


class AccountError(OnemapError):
    """A user cannot be created or changed as asked; the message says why."""


class LoginRefused(OnemapError):
    """Sign-in refused: wrong name or password, disabled, or too many recent failures."""

    def __init__(self, message: str, retry_after: int = 0):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class UserRow:
    name: str
    role: str
    scope: str | None
    personal_grant: bool
    disabled: bool
    created_at: datetime


# -- hashing ------------------------------------------------------------------------------
def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **SCRYPT)
    return "scrypt${n}${r}${p}$".format(**SCRYPT) + "$".join(
        base64.b64encode(part).decode() for part in (salt, digest))


def verify_password(password: str, stored: str | None) -> bool:
    try:
        kind, n, r, p, salt, digest = (stored or _dummy_hash()).split("$")
        expected = base64.b64decode(digest)
        found = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n),
                               r=int(r), p=int(p), dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return kind == "scrypt" and stored is not None and hmac.compare_digest(found, expected)


@functools.cache
def _dummy_hash() -> str:
    """Checked against when the name is unknown: a wrong name costs as much as a wrong
    password, so timing does not tell which names exist."""
    return hash_password(secrets.token_hex(8))


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# -- managing users -----------------------------------------------------------------------
def add_user(engine: Engine, name: str, role: str, scope: str | None = None,
             password: str | None = None, personal_grant: bool = False) -> str | None:
    """Create a user; returns the new kiosk's token (shown once), else None."""
    _check_new(name, role, scope, password)
    token = secrets.token_urlsafe(32) if role == "kiosk" else None
    with engine.begin() as conn:
        _check_scope(conn, scope)
        try:
            conn.execute(text(
                "INSERT INTO app_user (name, role, scope_code, personal_grant, password_hash, "
                "token_hash) VALUES (:name, :role, :scope, :grant, :pw, :token)"),
                {"name": name, "role": role, "scope": scope, "grant": personal_grant,
                 "pw": hash_password(password) if password else None,
                 "token": token_hash(token) if token else None})
        except IntegrityError:
            raise AccountError(f"user '{name}' exists already") from None
    return token


def _check_new(name: str, role: str, scope: str | None, password: str | None) -> None:
    if not _NAME.match(name):
        raise AccountError(f"user name '{name}': use 1–64 letters, digits or _ . @ -")
    if role not in ROLES:
        raise AccountError(f"role '{role}': must be one of {', '.join(ROLES)}")
    if role == "street_official" and not scope:
        raise AccountError("a street_official needs --scope, the admin code of their unit")
    if role != "kiosk":
        _check_password(password)


def _check_password(password: str | None) -> None:
    if not password or len(password) < MIN_PASSWORD:
        raise AccountError(f"the password must have at least {MIN_PASSWORD} characters")


def _check_scope(conn, scope: str | None) -> None:
    if scope and conn.execute(text("SELECT 1 FROM admin_unit WHERE code = :c"),
                              {"c": scope}).first() is None:
        raise AccountError(f"scope '{scope}' is not a loaded admin unit")


def list_users(engine: Engine) -> list[UserRow]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT name, role, scope_code, personal_grant, disabled, "
                                 "created_at FROM app_user ORDER BY name"))
        return [UserRow(*row) for row in rows]


def set_disabled(engine: Engine, name: str, disabled: bool = True) -> None:
    _update(engine, name, "disabled = :value", value=disabled)


def set_password(engine: Engine, name: str, password: str | None = None) -> str | None:
    """A new password for a person, or a new token for a kiosk (returned, shown once)."""
    with engine.connect() as conn:
        role = conn.execute(text("SELECT role FROM app_user WHERE name = :n"),
                            {"n": name}).scalar()
    if role is None:
        raise AccountError(f"no user '{name}'")
    if role == "kiosk":
        token = secrets.token_urlsafe(32)
        _update(engine, name, "token_hash = :value", value=token_hash(token))
        return token
    _check_password(password)
    _update(engine, name, "password_hash = :value", value=hash_password(password))
    return None


def _update(engine: Engine, name: str, assignment: str, **values) -> None:
    with engine.begin() as conn:
        done = conn.execute(text(f"UPDATE app_user SET {assignment}, changed_at = now() "
                                 "WHERE name = :name"), {"name": name, **values}).rowcount
    if not done:
        raise AccountError(f"no user '{name}'")


# -- signing in ---------------------------------------------------------------------------
USER_SQL = text("SELECT name, role, scope_code, personal_grant, password_hash, disabled "
                "FROM app_user WHERE name = :name")


def authenticate(engine: Engine, name: str, password: str) -> Principal:
    """The principal behind ``name``/``password``, or :class:`LoginRefused`."""
    with engine.begin() as conn:  # the failure count commits before the refusal is raised
        wait = _locked_for(conn, name)
        row = None if wait else conn.execute(USER_SQL, {"name": name}).mappings().first()
        good = not wait and verify_password(password, row and row["password_hash"])
        if good and not row["disabled"]:
            conn.execute(text("DELETE FROM login_failure WHERE name = :n"), {"n": name})
        elif not wait:
            _fail(conn, name)
    if wait:
        raise LoginRefused(f"too many failed attempts; try again in {wait} s", wait)
    if not good or row["disabled"]:
        raise LoginRefused("wrong user name or password, or the account is disabled")
    return _principal(row)


def _locked_for(conn, name: str) -> int:
    # The database's clock on both sides: app servers' clocks may differ.
    row = conn.execute(text("SELECT failures, extract(epoch FROM now() - last_at) AS ago "
                            "FROM login_failure WHERE name = :n FOR UPDATE"),
                       {"n": name}).first()
    if row is None or row.failures < FREE_TRIES:
        return 0
    lock = min(2 ** (row.failures - FREE_TRIES), MAX_LOCK_SECONDS)
    return max(0, math.ceil(lock - float(row.ago)))


def _fail(conn, name: str) -> None:
    conn.execute(text(
        "INSERT INTO login_failure (name, failures, last_at) VALUES (:n, 1, now()) "
        "ON CONFLICT (name) DO UPDATE SET failures = login_failure.failures + 1, "
        "last_at = now()"), {"n": name})


def by_token(engine: Engine, token: str) -> Principal | None:
    """The kiosk holding ``token`` (enabled), or None."""
    with engine.connect() as conn:
        row = conn.execute(text("SELECT name, role, scope_code, personal_grant, disabled "
                                "FROM app_user WHERE token_hash = :t"),
                           {"t": token_hash(token)}).mappings().first()
    return None if row is None or row["disabled"] else _principal(row)


def current(engine: Engine, name: str) -> Principal | None:
    """The principal ``name`` as stored now: None when removed or disabled since sign-in."""
    with engine.connect() as conn:
        row = conn.execute(USER_SQL, {"name": name}).mappings().first()
    return None if row is None or row["disabled"] else _principal(row)


def _principal(row) -> Principal:
    return Principal(row["name"], row["role"], row["scope_code"], row["personal_grant"])


# -- the audit log ------------------------------------------------------------------------
def audit(engine: Engine, who: Principal, action: str, allowed: bool,
          target: str | None = None, **detail) -> None:
    """Record who did (or tried) what."""
    with engine.begin() as conn:
        conn.execute(text(
            "INSERT INTO audit_log (user_name, role, action, allowed, target, detail) "
            "VALUES (:u, :r, :a, :ok, :t, CAST(:d AS jsonb))"),
            {"u": who.name, "r": who.role, "a": action, "ok": allowed, "t": target,
             "d": json.dumps(detail, ensure_ascii=False, default=str)})
