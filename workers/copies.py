"""Throwaway copies of a target's database, for rehearsals (``workers.rehearsal``).

A copy holds production data, so it lives where the real database lives — SQLite: a private file
in the database's own folder; PostgreSQL: a scratch database on the same server, or on the server
the environment's ``rehearsal_server`` names — nobody else can read it, and it is dropped when the
rehearsal ends, however it ends. Each copy has a random part in its name, so two requests never
share one, and a prefix that no real database has: ``migrabot_rehearsal_r<request>_<random>``,
``.migrabot-rehearsal-<pid>-<random>.sqlite3``.

A worker killed meanwhile runs no cleanup. ``sweep`` (before every rehearsal, and when a worker starts)
drops the copies nobody holds any more: a PostgreSQL copy's maker keeps a connection named after
it (``application_name``) from before the copy is created until after it is dropped, so a copy
without one has lost its maker; a SQLite copy's (or a dump's) name carries its maker's pid, on the
host that has the database file.

PostgreSQL copies are made by restoring a fresh, verified backup (``workers.backup``) into the
scratch database, so every rehearsal also proves that the backup restores; the dump is deleted as
soon as it is restored. Above ``rehearse_max_bytes`` the copy is partial: the whole schema, with the
rows of only the tables the plan touches, the tables they reference (every foreign key still holds)
and ``django_migrations``. Before anything is written the free space is checked: the copy may need
as much as the database (or the kept tables) takes, on the server and, for PostgreSQL, for the dump
in the backup folder. The server's free space can only be checked where the server's data directory
is visible to the worker (a local server, and a role allowed to read ``data_directory``).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from controlplane.errors import Refusal
from migrabot import messages
from migrabot.config import Environment
from migrabot.redact import redact
from workers.backup import (
    Database,
    alive,
    create_private,
    restore_backup,
    sqlite_connection,
    sqlite_copy,
    take_backup,
)

PG_PREFIX = "migrabot_rehearsal_"
HOLDER = "migrabot-holds "  # + the copy's name: the application_name of its maker's connection
SQLITE_COPY = re.compile(r"\.migrabot-rehearsal-(?P<pid>[0-9]+)-[0-9a-f]+\.sqlite3(-journal|-wal|-shm)?\Z")
DUMP_FOLDER = re.compile(r"\.rehearsal-(?P<pid>[0-9]+)-")
ALWAYS_KEPT = ("django_migrations",)


@dataclass(frozen=True)
class Copy:
    """Where a rehearsal's copy is (made or about to be) and what it holds."""

    database: Database
    real: Database
    partial: bool = False
    kept: tuple[str, ...] = ()  # a partial copy's tables with rows
    size: int = 0  # the real database's bytes when the copy was made
    seconds: float = 0.0  # making it
    server: Database | None = field(default=None, repr=False)  # where the copy's maker connects

    def settings(self) -> dict[str, str]:
        """Django's DATABASES entry for the copy (what ``migrabot_probe.copies`` applies)."""
        entry = {"NAME": self.database.name}
        if self.database.vendor == "postgresql":
            entry |= {"HOST": self.database.host, "PORT": self.database.port, "USER": self.database.user,
                      "PASSWORD": self.database.password}
        return entry


def copy_for(environment: Environment, real: Database, request_id: int) -> Copy:
    """Where the copy for ``request_id`` will be; nothing is made yet."""
    random = secrets.token_hex(4)
    if real.vendor == "sqlite":
        folder = Path(real.name).resolve().parent
        return Copy(Database("sqlite", str(folder / f".migrabot-rehearsal-{os.getpid()}-{random}.sqlite3")), real)
    server = real
    if environment.rehearsal_server is not None:
        url = os.environ.get(environment.rehearsal_server, "")
        if not url:
            raise Refusal(messages.rehearsal_server_unset(environment.name, environment.rehearsal_server))
        server = Database.from_url(url)
    name = f"{PG_PREFIX}r{request_id}_{random}"
    copy = Database("postgresql", name, server.host, server.port, server.user, server.password)
    return Copy(copy, real, server=server)


@contextmanager
def made(copy: Copy, *, touched: Sequence[str], max_bytes: int, dump_folder: Path) -> Iterator[Copy]:
    """Make the copy (whole, or partial above ``max_bytes``), yield it, and drop it whatever happens."""
    started = time.monotonic()
    if copy.database.vendor == "sqlite":
        with _sqlite_made(copy, touched, max_bytes, started) as done:
            yield done
        return
    with _pg_made(copy, touched, max_bytes, dump_folder, started) as done:
        yield done


def sweep(real: Database, environment: Environment, dump_folder: Path) -> list[str]:
    """Drop the copies and dumps of makers that are gone; their names."""
    dropped = _sweep_files(dump_folder, DUMP_FOLDER)
    if real.vendor == "sqlite":
        return dropped + _sweep_files(Path(real.name).resolve().parent, SQLITE_COPY)
    server = copy_for(environment, real, 0).server
    assert server is not None
    with _connect(server, "migrabot-sweep") as connection:
        return dropped + _pg_sweep(connection)


def history_digest(database: Database) -> str:
    """The sha256 of a database's migration history (django_migrations' app and name rows)."""
    query = "SELECT app, name FROM django_migrations ORDER BY app, name"
    rows: list[list[str]] = []  # no table yet: nothing was ever migrated
    if database.vendor == "sqlite":
        with sqlite_connection(database.name, "ro") as connection, suppress(sqlite3.OperationalError):
            rows = [list(row) for row in connection.execute(query)]
    else:
        with _connect(database, "migrabot-rehearsal") as connection, suppress(psycopg.errors.UndefinedTable):
            rows = [list(row) for row in connection.execute(query)]
    return hashlib.sha256(json.dumps(rows).encode()).hexdigest()


# --- SQLite --------------------------------------------------------------------------------------


@contextmanager
def _sqlite_made(copy: Copy, touched: Sequence[str], max_bytes: int, started: float) -> Iterator[Copy]:
    path = Path(copy.database.name)
    source = Path(copy.real.name)
    size = sum(p.stat().st_size for p in (source, source.with_name(source.name + "-wal")) if p.exists())
    try:
        with sqlite_connection(copy.real.name, "ro") as real:
            kept = _sqlite_kept(real, touched) if size > max_bytes else None
        _check_space(path.parent, size, copy.real.name)
        if kept is None:
            sqlite_copy(copy.real, path)
        else:
            _sqlite_partial(copy.real, path, kept)
        yield _Made(copy, size, kept) | started
    finally:
        for leftover in path.parent.glob(path.name + "*"):
            leftover.unlink(missing_ok=True)


def _sqlite_kept(real: sqlite3.Connection, touched: Sequence[str]) -> tuple[str, ...]:
    tables = {name for (name,) in real.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    kept, todo = set(), [t for t in [*touched, *ALWAYS_KEPT] if t in tables]
    while todo:
        table = todo.pop()
        if table not in kept:
            kept.add(table)
            todo += [row[2] for row in real.execute(f"PRAGMA foreign_key_list({_sqlite_name(table)})")]
    return tuple(sorted(kept & tables))


def _sqlite_partial(real: Database, path: Path, kept: tuple[str, ...]) -> None:
    """The schema whole, the rows of ``kept`` only: tables first, then their rows, then the rest."""
    create_private(path).close()
    with sqlite_connection(str(path), "rw") as copy:
        copy.execute("ATTACH DATABASE ? AS real", (f"{Path(real.name).resolve().as_uri()}?mode=ro",))
        schema = copy.execute(
            "SELECT type, name, sql FROM real.sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' "
            "ORDER BY type <> 'table', rowid"
        ).fetchall()
        for kind, name, statement in schema:
            exists = copy.execute("SELECT 1 FROM main.sqlite_master WHERE name = ?", (name,)).fetchone()
            if kind == "table" and not exists:
                copy.execute(statement)  # (a virtual table made its shadow tables itself)
        for table in kept:
            copy.execute(f"INSERT INTO main.{_sqlite_name(table)} SELECT * FROM real.{_sqlite_name(table)}")
        if copy.execute("SELECT 1 FROM real.sqlite_master WHERE name = 'sqlite_sequence'").fetchone():
            copy.execute("INSERT INTO main.sqlite_sequence SELECT * FROM real.sqlite_sequence")
        for kind, _name, statement in schema:
            if kind != "table":
                copy.execute(statement)
        copy.commit()
        copy.execute("DETACH DATABASE real")


def _sqlite_name(table: str) -> str:
    return '"' + table.replace('"', '""') + '"'


# --- PostgreSQL ----------------------------------------------------------------------------------


@contextmanager
def _pg_made(copy: Copy, touched: Sequence[str], max_bytes: int, dump_folder: Path, started: float) -> Iterator[Copy]:
    server = copy.server
    assert server is not None
    name = copy.database.name
    # Connected before the copy exists and until it is gone: what tells a sweep the copy is held.
    with _connect(server, HOLDER + name) as holder:
        with _connect(copy.real, "migrabot-rehearsal") as real:
            size, needed, kept, excluded, encoding = _pg_facts(real, touched, max_bytes)
        dump_folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        _check_space(dump_folder, needed, "the backup folder")
        if (data := _data_directory(holder, server)) is not None:
            _check_space(data, needed, "the database server")
        # The scratch database is created while the backup is taken (one is the server's work, the
        # other pg_dump's), and the backup restored into it once both are done.
        with ThreadPoolExecutor(max_workers=1) as pool:
            created = pool.submit(_create_private_database, holder, server, name, encoding)
            try:
                with tempfile.TemporaryDirectory(prefix=f".rehearsal-{os.getpid()}-", dir=dump_folder) as folder:
                    dump = take_backup(copy.real, Path(folder), label="rehearsal", without_rows_of=excluded)
                    created.result()
                    restore_backup(copy.database, dump.path, dump.sha256)
                yield _Made(copy, size, kept if size > max_bytes else None) | started
            finally:
                wait([created])  # whatever failed, the database is created (or not) before it is dropped
                holder.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _create_private_database(
    holder: psycopg.Connection[Any], server: Database, name: str, encoding: tuple[str, str, str]
) -> None:
    """The scratch database, empty, with the real one's encoding and locale; only its owner may connect."""
    try:
        holder.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING {} LC_COLLATE {} LC_CTYPE {}").format(
                sql.Identifier(name), *map(sql.Literal, encoding)
            )
        )
    except psycopg.errors.InsufficientPrivilege:
        raise Refusal(messages.rehearsal_cannot_create(server.host or "localhost", server.user)) from None
    holder.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(name)))


def _pg_facts(
    real: psycopg.Connection[Any], touched: Sequence[str], max_bytes: int
) -> tuple[int, int, tuple[str, ...], tuple[str, ...], tuple[str, str, str]]:
    """The database's size, the bytes the copy needs, the tables a partial copy keeps rows of and
    those it does not, and the encoding and locale the copy is created with."""
    row = real.execute(
        "SELECT pg_database_size(datname), pg_encoding_to_char(encoding), datcollate, datctype "
        "FROM pg_database WHERE datname = current_database()"
    ).fetchone()
    assert row is not None
    size, encoding = int(row[0]), (str(row[1]), str(row[2]), str(row[3]))
    if size <= max_bytes:
        return size, size, (), (), encoding
    tables = dict(real.execute(_USER_TABLES).fetchall())  # "schema.table" → oid
    kept = {row[0] for row in real.execute(_REFERENCED, [[*touched, *ALWAYS_KEPT]]).fetchall()}
    kept_size = real.execute("SELECT coalesce(sum(pg_total_relation_size(oid)), 0) FROM pg_class WHERE oid = ANY(%s)",
                             [[tables[t] for t in kept if t in tables]]).fetchone()
    needed = int(kept_size[0]) if kept_size else size
    return size, needed, tuple(sorted(kept)), tuple(sorted(set(tables) - kept)), encoding


_USER_TABLES = """
SELECT CASE WHEN n.nspname = 'public' THEN '' ELSE n.nspname || '.' END || c.relname, c.oid
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'
"""
# The tables named, and every table they reference through foreign keys, transitively.
_REFERENCED = """
WITH RECURSIVE kept(oid) AS (
    SELECT to_regclass(name)::oid FROM unnest(%s::text[]) AS name WHERE to_regclass(name) IS NOT NULL
    UNION
    SELECT c.confrelid FROM pg_constraint c JOIN kept ON c.conrelid = kept.oid WHERE c.contype = 'f'
)
SELECT CASE WHEN n.nspname = 'public' THEN '' ELSE n.nspname || '.' END || c.relname
FROM kept JOIN pg_class c ON c.oid = kept.oid JOIN pg_namespace n ON n.oid = c.relnamespace
"""


def _pg_sweep(connection: psycopg.Connection[Any]) -> list[str]:
    """Drop this role's copies whose maker's connection is gone."""
    orphans = [
        name for (name,) in connection.execute(
            "SELECT d.datname FROM pg_database d WHERE starts_with(d.datname, %s) "
            "AND pg_get_userbyid(d.datdba) = current_user AND NOT EXISTS ("
            "SELECT 1 FROM pg_stat_activity a WHERE a.application_name = %s || d.datname)",
            [PG_PREFIX, HOLDER],
        ).fetchall()
    ]
    for name in orphans:
        connection.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    return orphans


def _data_directory(connection: psycopg.Connection[Any], server: Database) -> Path | None:
    """The server's data directory, where this worker can see it (a local server); else None."""
    if server.host not in ("", "localhost", "127.0.0.1", "::1") and not server.host.startswith("/"):
        return None
    row = connection.execute("SELECT setting FROM pg_settings WHERE name = 'data_directory'").fetchone()
    if row is None or not row[0]:
        return None  # not readable by this role
    with suppress(OSError):
        if Path(row[0]).is_dir():
            return Path(row[0])
    return None


@contextmanager
def _connect(database: Database, application: str) -> Iterator[psycopg.Connection[Any]]:
    settings = {"dbname": database.name, "host": database.host, "port": database.port, "user": database.user,
                "password": database.password}
    try:
        conninfo = make_conninfo(**{key: value for key, value in settings.items() if value})
        connection = psycopg.connect(conninfo, application_name=application, autocommit=True)
    except psycopg.Error as error:
        said = redact(str(error).strip(), [database.password or ""])
        raise Refusal(messages.rehearsal_cannot_connect(database.host or "localhost", said)) from None
    with connection:
        yield connection


# --- shared --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Made:
    copy: Copy
    size: int
    kept: tuple[str, ...] | None  # None: a whole copy

    def __or__(self, started: float) -> Copy:
        """The copy as made, timed from ``started``."""
        return Copy(self.copy.database, self.copy.real, self.kept is not None, self.kept or (), self.size,
                    round(time.monotonic() - started, 3), self.copy.server)


def _check_space(folder: Path, needed: int, where: str) -> None:
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise Refusal(messages.rehearsal_no_space(where, needed, free))


def _sweep_files(folder: Path, pattern: re.Pattern[str]) -> list[str]:
    try:
        names = os.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):  # nothing was ever made there
        return []
    stale = [name for name in names if (match := pattern.match(name)) and not alive(int(match["pid"]))]
    for name in stale:
        path = folder / name
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return stale
