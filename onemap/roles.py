"""Who may connect to the embedded cluster, and as what.

Three roles sign in to it: the admin (its superuser: creates databases, roles and the PostGIS
extension, nothing else connects as it), the app (owns its database and everything in it,
and holds no other right: no superuser, no new databases or roles) and the reader (SELECT on
the app's tables in read-only transactions; it serves the reads when no replica is set).

Every connection signs in with scram-sha-256. The passwords are generated once and kept in
``ONEMAP_HOME/pgpass`` (mode 0600), which libpq reads through the ``passfile`` parameter of
the URLs: a URL can be printed and logged, and another OS user, who cannot read the file, is
refused.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

MARK = "# written by onemap"
HBA = f"""\
{MARK}: every connection signs in with a password (scram-sha-256); the
# passwords are in {{passfile}} (mode 0600). A cluster without this line trusted every
# local connection and is secured in place by `onemap db up`.
local   all           all                       scram-sha-256
host    all           all       127.0.0.1/32    scram-sha-256
host    all           all       ::1/128         scram-sha-256
"""


@dataclass(frozen=True)
class Roles:
    """The names of the cluster's roles."""

    admin: str
    app: str
    read: str
    replicator: str = "replicator"

    def all(self) -> tuple[str, ...]:
        return (self.admin, self.app, self.read, self.replicator)


class Credentials:
    """The generated passwords of ``roles``, in a pgpass file libpq reads (mode 0600)."""

    def __init__(self, path: Path, roles: Roles):
        self.path, self.roles = path, roles

    @property
    def exists(self) -> bool:
        return self.path.exists()

    def ensure(self) -> None:
        """Make the file once: written whole under a private name, then linked into place,
        so two processes starting together agree on one set of passwords."""
        if self.path.exists():
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lines = "".join(f"*:*:*:{role}:{secrets.token_urlsafe(24)}\n"
                        for role in self.roles.all())
        draft = self.path.with_name(f".pgpass.{os.getpid()}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, lines.encode())
        finally:
            os.close(fd)
        with contextlib.suppress(FileExistsError):  # another process made it first
            os.link(draft, self.path)
        draft.unlink()

    def password(self, role: str) -> str:
        for line in self.path.read_text().splitlines():
            *_, user, password = line.split(":")
            if user == role:
                return password
        raise KeyError(role)


def ensure_role(conn: psycopg.Connection, name: str, password: str,
                read_only: bool = False, replication: bool = False) -> None:
    """Create the login role ``name`` if missing (only LOGIN: no superuser, no new
    databases or roles); a read-only role's transactions are read-only by default."""
    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone()
    if exists:
        return
    extra = sql.SQL(" REPLICATION") if replication else sql.SQL("")
    conn.execute(sql.SQL("CREATE ROLE {} LOGIN{} PASSWORD {}").format(
        sql.Identifier(name), extra, sql.Literal(password)))
    if read_only:
        conn.execute(sql.SQL("ALTER ROLE {} SET default_transaction_read_only = on").format(
            sql.Identifier(name)))


def set_password(conn: psycopg.Connection, name: str, password: str) -> None:
    conn.execute(sql.SQL("ALTER ROLE {} PASSWORD {}").format(
        sql.Identifier(name), sql.Literal(password)))


def create_database(admin_url: str, name: str, owner: str, reader: str | None = None) -> None:
    """A new database ``name`` owned by ``owner``, with PostGIS (an extension only a
    superuser may create), and readable by ``reader`` when given; ``admin_url`` is a role
    that may create databases and extensions."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
            sql.Identifier(name), sql.Identifier(owner)))
    with psycopg.connect(admin_url, dbname=name, autocommit=True) as conn:
        conn.execute("CREATE EXTENSION IF NOT EXISTS postgis")
        if reader:
            grant_reads(conn, owner, reader)


def grant_reads(conn: psycopg.Connection, owner: str, reader: str) -> None:
    """``reader`` may read every table of the connected database's public schema, those
    ``owner`` creates later (by migrations) included."""
    names = {"owner": sql.Identifier(owner), "reader": sql.Identifier(reader)}
    for statement in (
        "GRANT USAGE ON SCHEMA public TO {reader}",
        "GRANT SELECT ON ALL TABLES IN SCHEMA public TO {reader}",
        "ALTER DEFAULT PRIVILEGES FOR ROLE {owner} IN SCHEMA public "
        "GRANT SELECT ON TABLES TO {reader}",
    ):
        conn.execute(sql.SQL(statement).format(**names))


# Objects a role owns in the connected database outside the system schemas, except an
# extension's (PostGIS's stay the superuser's) and those that follow their table (indexes,
# a serial or identity column's sequence, a table's row type).
OWNED = """
WITH mine AS (SELECT oid FROM pg_roles WHERE rolname = %(owner)s),
outside AS (SELECT oid FROM pg_namespace WHERE nspname NOT IN ('pg_catalog',
            'information_schema') AND nspname NOT LIKE 'pg\\_toast%%'
            AND nspname NOT LIKE 'pg\\_temp%%')
SELECT CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
       WHEN 'S' THEN 'SEQUENCE' WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END,
       c.oid::regclass::text
FROM pg_class c
WHERE c.relowner IN (SELECT oid FROM mine) AND c.relnamespace IN (SELECT oid FROM outside)
  AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass
                  AND d.objid = c.oid AND d.deptype IN ('e', 'a', 'i'))
UNION ALL
SELECT CASE p.prokind WHEN 'p' THEN 'PROCEDURE' WHEN 'a' THEN 'AGGREGATE'
       ELSE 'FUNCTION' END, p.oid::regprocedure::text
FROM pg_proc p
WHERE p.proowner IN (SELECT oid FROM mine) AND p.pronamespace IN (SELECT oid FROM outside)
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                  AND d.objid = p.oid AND d.deptype = 'e')
UNION ALL
SELECT CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, t.oid::regtype::text
FROM pg_type t
WHERE t.typowner IN (SELECT oid FROM mine) AND t.typnamespace IN (SELECT oid FROM outside)
  AND t.typtype IN ('c', 'd', 'e', 'r') AND t.typelem = 0
  AND (t.typrelid = 0 OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_type'::regclass
                  AND d.objid = t.oid AND d.deptype = 'e')
UNION ALL
SELECT 'SCHEMA', quote_ident(n.nspname)
FROM pg_namespace n
WHERE n.nspowner IN (SELECT oid FROM mine) AND n.oid IN (SELECT oid FROM outside)
  AND n.nspname <> 'public'
  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_namespace'::regclass
                  AND d.objid = n.oid AND d.deptype = 'e')
"""


def hand_over(conn: psycopg.Connection, database: str, old: str, new: str) -> int:
    """Give ``new`` the database and what ``old`` owns in it (``conn``: a superuser's
    connection to that database, in a transaction); the number of objects given.

    ``REASSIGN OWNED`` cannot be used: the old owner of a cluster made before the roles
    existed is the bootstrap superuser, who also owns the system catalogs."""
    conn.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(
        sql.Identifier(database), sql.Identifier(new)))
    owned = conn.execute(OWNED, {"owner": old}).fetchall()
    for kind, name in owned:
        # ``name`` is the catalog's own quoted rendering of the object (regclass, …).
        conn.execute(sql.SQL("ALTER {} {} OWNER TO {}").format(
            sql.SQL(kind), sql.SQL(name), sql.Identifier(new)))
    return len(owned)
