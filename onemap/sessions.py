"""Sessions kept on the server. A signed-in browser holds only a random id; the principal
behind it is read from the database on every request, so a session that is ended (signed
out, a new password or kiosk token, a disabled user) is over on every worker at once.

Only the id's SHA-256 is stored: a copy of the table opens no session. A session lasts
``hours`` from its last use, renewed at most once per half of that (not a write per
request).
"""

from __future__ import annotations

import hashlib
import secrets

from sqlalchemy import Connection, Engine, text

from onemap.principal import Principal

LOOKUP = text(
    "SELECT u.name, u.role, u.scope_code, u.personal_grant, "
    "       s.expires_at < now() + make_interval(secs => :seconds / 2) AS stale "
    "FROM app_session s JOIN app_user u ON u.name = s.user_name "
    "WHERE s.id_hash = :id AND s.expires_at > now() AND NOT u.disabled")
RENEW = text("UPDATE app_session SET expires_at = now() + make_interval(secs => :seconds) "
             "WHERE id_hash = :id")


def _key(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8", "surrogatepass")).hexdigest()


def start_session(engine: Engine, name: str, hours: float) -> str:
    """A new session for the user ``name``; returns its id (for the cookie only)."""
    session_id = secrets.token_urlsafe(32)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM app_session WHERE expires_at < now()"))
        conn.execute(text("INSERT INTO app_session (id_hash, user_name, expires_at) VALUES "
                          "(:id, :name, now() + make_interval(secs => :seconds))"),
                     {"id": _key(session_id), "name": name, "seconds": hours * 3600})
    return session_id


def session_principal(engine: Engine, session_id: str, hours: float) -> Principal | None:
    """Who holds the session ``session_id`` now: None when it was ended, has expired or
    its user is disabled. A database error propagates: the caller fails closed."""
    params = {"id": _key(session_id), "seconds": hours * 3600}
    with engine.begin() as conn:
        row = conn.execute(LOOKUP, params).first()
        if row is None:
            return None
        if row.stale:
            conn.execute(RENEW, params)
    return Principal(row.name, row.role, row.scope_code, row.personal_grant)


def end_session(engine: Engine, session_id: str) -> None:
    """Sign one session out."""
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM app_session WHERE id_hash = :id"),
                     {"id": _key(session_id)})


def end_sessions(conn: Connection, name: str) -> None:
    """End every session of the user ``name``, in the caller's transaction."""
    conn.execute(text("DELETE FROM app_session WHERE user_name = :n"), {"n": name})
