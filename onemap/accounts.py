"""Users, kiosk tokens, sign-in and the audit log, stored in PostGIS.

Passwords are hashed with argon2id at the parameters of OWASP's Password Storage Cheat
Sheet (19 MiB, 2 passes, 1 lane); hashes of older parameters (scrypt at N=2^14) still
verify and are replaced at the next sign-in. Kiosk tokens are random 256-bit secrets stored
as SHA-256. Failed sign-ins are counted per name typed, and each one past the first few
locks that name for twice as long as the last; the sign-ins of one name take their turn,
so parallel guesses are counted like sequential ones.
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
import threading
from dataclasses import dataclass
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cachetools import TTLCache
from sqlalchemy import Connection, Engine, text
from sqlalchemy.exc import IntegrityError

from onemap.errors import OnemapError
from onemap.principal import ROLES, TOKEN_ROLES, Principal
from onemap.sessions import end_sessions

HASHER = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
MIN_PASSWORD = 8
MAX_PASSWORD = 1024       # longer ones are refused unread: no one types them
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
    return HASHER.hash(password)


def verify_password(password: str, stored: str | None) -> bool:
    if stored and stored.startswith("scrypt$"):
        return _verify_scrypt(password, stored)
    try:
        return HASHER.verify(stored or _dummy_hash(), password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    """True when ``stored`` was made with other parameters than today's."""
    return stored.startswith("scrypt$") or HASHER.check_needs_rehash(stored)


def _verify_scrypt(password: str, stored: str) -> bool:
    """Hashes made before argon2id: ``scrypt$N$r$p$salt$digest``."""
    try:
        _, n, r, p, salt, digest = stored.split("$")
        expected = base64.b64decode(digest)
        found = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n),
                               r=int(r), p=int(p), dklen=len(expected))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(found, expected)


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
    """Create a user; returns the new kiosk's or feed's token (shown once), else None."""
    _check_new(name, role, scope, password)
    token = secrets.token_urlsafe(32) if role in TOKEN_ROLES else None
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
    if not _NAME.fullmatch(name):
        raise AccountError(f"user name '{name}': use 1–64 letters, digits or _ . @ -")
    if role not in ROLES:
        raise AccountError(f"role '{role}': must be one of {', '.join(ROLES)}")
    if role == "street_official" and not scope:
        raise AccountError("a street_official needs --scope, the admin code of their unit")
    if role not in TOKEN_ROLES:
        _check_password(password)


def _check_password(password: str | None) -> None:
    if not password or len(password) < MIN_PASSWORD:
        raise AccountError(f"the password must have at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise AccountError(f"the password must have at most {MAX_PASSWORD} characters")


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
    """Disable (their sessions end at once) or enable a user."""
    _update(engine, name, "disabled = :value", value=disabled)


def set_password(engine: Engine, name: str, password: str | None = None) -> str | None:
    """A new password for a person, or a new token for a kiosk or feed (returned, shown once);
    the sessions signed in with the old one end at once."""
    with engine.connect() as conn:
        role = conn.execute(text("SELECT role FROM app_user WHERE name = :n"),
                            {"n": name}).scalar()
    if role is None:
        raise AccountError(f"no user '{name}'")
    if role in TOKEN_ROLES:
        token = secrets.token_urlsafe(32)
        _update(engine, name, "token_hash = :value", value=token_hash(token))
        return token
    _check_password(password)
    _update(engine, name, "password_hash = :value", value=hash_password(password))
    return None


def _update(engine: Engine, name: str, assignment: str, **values) -> None:
    """Change a user and end their sessions, in one transaction: whatever was changed (a
    password, a token, enabled or not), what was signed in before no longer stands."""
    with engine.begin() as conn:
        done = conn.execute(text(f"UPDATE app_user SET {assignment}, changed_at = now() "
                                 "WHERE name = :name"), {"name": name, **values}).rowcount
        end_sessions(conn, name)
    if not done:
        raise AccountError(f"no user '{name}'")


# -- signing in ---------------------------------------------------------------------------
USER_SQL = text("SELECT name, role, scope_code, personal_grant, password_hash, disabled "
                "FROM app_user WHERE name = :name")
# The sign-ins of one name wait for each other (a lock held to the end of the transaction,
# in a key space of its own): the throttling row does not exist before the first failure,
# so there is no row to lock, and parallel guesses would all read "no failures yet".
TAKE_TURN = text("SELECT pg_advisory_xact_lock(20190, hashtext(:n))")
WRONG = "wrong user name or password, or the account is disabled"


class CredentialCache:
    """HTTP Basic credentials verified lately, kept briefly in this process under a keyed
    hash (never the password): a QGIS client sending them with each of twenty tiles pays
    one password hash, not twenty. The stored hash is part of the key, so a new password
    misses at once; disabling is checked on every request anyway."""

    def __init__(self, seconds: float = 60, size: int = 1024):
        self._key = secrets.token_bytes(32)
        self._seen: TTLCache = TTLCache(maxsize=size, ttl=seconds)
        self._lock = threading.Lock()  # TTLCache is not safe across threads by itself

    def _digest(self, name: str, password: str, stored: str) -> bytes:
        message = "\0".join((name, password, stored)).encode("utf-8", "surrogatepass")
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def holds(self, name: str, password: str, stored: str) -> bool:
        digest = self._digest(name, password, stored)
        with self._lock:
            return self._seen.get(digest, False)

    def add(self, name: str, password: str, stored: str) -> None:
        digest = self._digest(name, password, stored)
        with self._lock:
            self._seen[digest] = True


def authenticate(engine: Engine, name: str, password: str,
                 cache: CredentialCache | None = None) -> Principal:
    """The principal behind ``name``/``password``, or :class:`LoginRefused`. Only failures
    write (their count); a success writes only to clear earlier failures or to store a
    hash of today's parameters. ``cache`` spares the hash of credentials verified lately."""
    if not _well_formed(name, password):
        raise LoginRefused(WRONG)  # no such user can exist: nothing to count or check
    with engine.begin() as conn:  # the failure count commits before the refusal is raised
        conn.execute(TAKE_TURN, {"n": name})
        wait, failures = _locked_for(conn, name)
        row = None if wait else conn.execute(USER_SQL, {"name": name}).mappings().first()
        good = not wait and _checked(name, password, row and row["password_hash"], cache)
        if good and not row["disabled"]:
            if failures:
                conn.execute(text("DELETE FROM login_failure WHERE name = :n"), {"n": name})
            _rehash(conn, name, password, row["password_hash"], cache)
        elif not wait:
            _fail(conn, name)
    if wait:
        raise LoginRefused(f"too many failed attempts; try again in {wait} s", wait)
    if not good or row["disabled"]:
        raise LoginRefused(WRONG)
    return _principal(row)


def _well_formed(name: str, password: str) -> bool:
    """A name a user could have (it bounds what the failure count stores) and a password
    of a length anyone types."""
    return bool(_NAME.fullmatch(name)) and len(password) <= MAX_PASSWORD


def _checked(name: str, password: str, stored: str | None,
             cache: CredentialCache | None) -> bool:
    if stored and cache is not None and cache.holds(name, password, stored):
        return True
    return verify_password(password, stored)


def _rehash(conn, name: str, password: str, stored: str,
            cache: CredentialCache | None) -> None:
    """Store a hash of today's parameters when ``stored`` is older (not a new password:
    sessions stay); remember the credentials when a cache is kept."""
    if needs_rehash(stored):
        fresh = hash_password(password)
        conn.execute(text("UPDATE app_user SET password_hash = :new WHERE name = :n "
                          "AND password_hash = :old"), {"new": fresh, "n": name, "old": stored})
        stored = fresh
    if cache is not None:
        cache.add(name, password, stored)


def _locked_for(conn, name: str) -> tuple[int, int]:
    """(seconds ``name`` must still wait, failures counted so far)."""
    # The database's clock on both sides: app servers' clocks may differ.
    row = conn.execute(text("SELECT failures, extract(epoch FROM now() - last_at) AS ago "
                            "FROM login_failure WHERE name = :n"), {"n": name}).first()
    if row is None:
        return 0, 0
    if row.failures < FREE_TRIES:
        return 0, row.failures
    lock = min(2 ** (row.failures - FREE_TRIES), MAX_LOCK_SECONDS)
    return max(0, math.ceil(lock - float(row.ago))), row.failures


def _fail(conn, name: str) -> None:
    conn.execute(text(
        "INSERT INTO login_failure (name, failures, last_at) VALUES (:n, 1, now()) "
        "ON CONFLICT (name) DO UPDATE SET failures = login_failure.failures + 1, "
        "last_at = now()"), {"n": name})


def by_token(engine: Engine, token: str) -> Principal | None:
    """The kiosk or feed holding ``token`` (enabled), or None."""
    with engine.connect() as conn:
        row = conn.execute(text("SELECT name, role, scope_code, personal_grant, disabled "
                                "FROM app_user WHERE token_hash = :t"),
                           {"t": token_hash(token)}).mappings().first()
    return None if row is None or row["disabled"] else _principal(row)


def _principal(row) -> Principal:
    return Principal(row["name"], row["role"], row["scope_code"], row["personal_grant"])


# -- the audit log ------------------------------------------------------------------------
def audit(engine: Engine, who: Principal, action: str, allowed: bool,
          target: str | None = None, **detail) -> None:
    """Record who did (or tried) what."""
    with engine.begin() as conn:
        audit_in(conn, who, action, allowed, target, **detail)


def audit_in(conn: Connection, who: Principal, action: str, allowed: bool,
             target: str | None = None, **detail) -> None:
    """Record who did what in ``conn``'s transaction: with the write it records, or not
    at all."""
    conn.execute(text(
        "INSERT INTO audit_log (user_name, role, action, allowed, target, detail) "
        "VALUES (:u, :r, :a, :ok, :t, CAST(:d AS jsonb))"),
        {"u": who.name, "r": who.role, "a": action, "ok": allowed, "t": target,
         "d": json.dumps(detail, ensure_ascii=False, default=str)})
