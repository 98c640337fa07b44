"""Backups of a target's database: taken and verified before anything changes it, and restored.

The product's promise is that no rollback, fake or restore runs without a recorded, *verified*
backup taken just before. So `take_backup` either returns a `Backup` that passed verification or
raises `BackupError`, and leaves no file that could pass for a backup: it writes to a hidden
`.{final}.{pid}.partial` name and links the final name only once the file is complete, synced and
verified. A worker killed mid-backup runs no cleanup; the pid in the name lets the next backup, or
the next worker's start, remove the partial files of processes that are gone
(`remove_stale_partials`).

PostgreSQL: `pg_dump -Fc -Z0`, compressed by zstd in the stream and hashed as the bytes reach the
file (see `backup_streams`). pg_dump's own compression is single-threaded zlib, several times
slower than reading the rows. Verification reads the file once: its sha256, and the decompressed
archive through `pg_restore -f /dev/null`, which reads every block (`pg_restore --list` passes a
truncated archive). pg_dump holds ACCESS SHARE locks while it runs, so the caller backs up, then
migrates, never both at once; `--lock-wait-timeout` keeps a dump from queueing forever behind DDL.

SQLite: the online backup API into the file, then `PRAGMA integrity_check` and sha256 on the copy.

Restore, PostgreSQL: one transaction that drops every user schema (and large objects), recreates
`public` as initdb makes it, and replays the archive (`pg_restore --single-transaction
--no-owner -f -` piped into psql). Dropping whole schemas is what removes tables created after
the backup; doing it inside the archive's own transaction means a failure anywhere (a damaged
stream, pg_restore dying, an SQL error) rolls back to the database as it was, never to an empty
one: the archive's closing COMMIT is the only commit. `--no-owner`: objects come back owned by
the configured user, who must own the database (as Django's user normally does); ownership by
other roles would need a superuser. Grants are restored. Cluster-wide objects (roles, event
triggers, publications) are not in the archive and are not touched.

Secrets: connection settings reach pg_dump, pg_restore and psql only through their environment
(PG* variables), so no argv holds them, and every raised message goes through `redact`. That
environment is the probe's minimal one plus the target's connection: the worker's own secrets (the
Slack token, other environments' database URLs) are none of the tools' business.

Children: every tool is started through `workers.children`, so it dies with the worker; an orphaned
psql must never commit a restore after the run was marked interrupted and its lock released.
"""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import dj_database_url

from controlplane.errors import MigrabotError
from migrabot.redact import redact
from workers import children
from workers.backup_streams import (
    COMPRESSOR,
    compress_output,
    feed_decompressed,
    sha256_of,
)
from workers.target import PASSED_THROUGH

LOCK_WAIT_TIMEOUT = "2min"
PG_DUMP = ("pg_dump", "--format=custom", "--compress=0", f"--lock-wait-timeout={LOCK_WAIT_TIMEOUT}")
PG_READ_ALL = ("pg_restore", "--file=/dev/null")
PG_SERVER_VERSION = ("psql", "--no-psqlrc", "--no-align", "--tuples-only", "--command=SHOW server_version")

# Run before the archive in the same psql session; the archive's own BEGIN then only warns that a
# transaction is already open, and its final COMMIT commits the reset and the restore together.
_RESET_DATABASE = """
DO $$
DECLARE schema_name name;
BEGIN
    FOR schema_name IN
        SELECT nspname FROM pg_namespace WHERE nspname <> 'information_schema' AND nspname NOT LIKE 'pg\\_%'
    LOOP
        EXECUTE format('DROP SCHEMA %I CASCADE', schema_name);
    END LOOP;
    PERFORM lo_unlink(oid) FROM pg_largeobject_metadata;
    -- pg_dump leaves out the public schema's definition and writes its grants relative to
    -- initdb's, so recreate it with initdb's grants (before 15, owned by us, not the superuser).
    IF current_setting('server_version_num')::int >= 150000 THEN
        CREATE SCHEMA public AUTHORIZATION pg_database_owner;
        GRANT USAGE ON SCHEMA public TO PUBLIC;
    ELSE
        CREATE SCHEMA public;
        GRANT CREATE, USAGE ON SCHEMA public TO PUBLIC;
    END IF;
    COMMENT ON SCHEMA public IS 'standard public schema';
END $$;
"""
PG_RESTORE = (
    ("pg_restore", "--single-transaction", "--no-owner", "--file=-"),
    (
        "psql", "--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1",
        "--command=SET client_min_messages = error", "--command=BEGIN", f"--command={_RESET_DATABASE}", "--file=-",
    ),
)

_ENGINES = {"postgresql": "postgresql", "postgis": "postgresql", "sqlite3": "sqlite", "spatialite": "sqlite"}
_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*\Z")
_PARTIAL = re.compile(r"\..+\.(?P<pid>[0-9]+)\.partial\Z")


class BackupError(MigrabotError):
    """There is no verified backup (or the restore failed): the caller must stop."""


@dataclass(frozen=True)
class Database:
    """The target's default database, as the target's settings define it."""

    vendor: str  # "postgresql" or "sqlite"
    name: str  # database name, or the SQLite file path
    host: str = ""
    port: str = ""
    user: str = ""
    password: str = field(default="", repr=False)  # never in argv, logs or messages

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> Database:
        """From a Django DATABASES entry (ENGINE, NAME, HOST, PORT, USER, PASSWORD)."""
        engine = str(settings.get("ENGINE", ""))
        vendor = _ENGINES.get(engine.rsplit(".", 1)[-1])
        if vendor is None:
            raise BackupError(f"cannot back up a database with ENGINE {engine!r}: only PostgreSQL and SQLite")
        name = str(settings.get("NAME") or "")
        if vendor == "sqlite" and (not name or name == ":memory:" or name.startswith("file::memory:")):
            raise BackupError("the SQLite database is in memory: there is no file to back up")
        text = {key: str(settings.get(key) or "") for key in ("HOST", "PORT", "USER", "PASSWORD")}
        return cls(vendor, name, text["HOST"], text["PORT"], text["USER"], text["PASSWORD"])

    @classmethod
    def from_url(cls, url: str) -> Database:
        """postgres://, postgresql:// or sqlite:///path (dj-database-url's reading, as the example target's)."""
        return cls.from_settings(dj_database_url.parse(url))


@dataclass(frozen=True)
class Backup:
    path: Path
    size: int
    sha256: str  # of the file as stored
    duration_seconds: float  # taking the backup, synced to disk
    tool: str
    tool_version: str
    server_version: str
    verified: bool
    verification: str  # what was checked, or why it failed
    verification_seconds: float = 0.0


class _Taken(NamedTuple):
    sha256: str
    tool: str
    tool_version: str
    server_version: str


class _Engine(NamedTuple):
    extension: str
    take: Callable[[Database, Path, Sequence[str]], _Taken]
    verify: Callable[[Path, str], tuple[bool, str]]
    restore: Callable[[Database, Path], None]


def take_backup(
    database: Database, directory: Path, *, label: str, without_rows_of: Sequence[str] = ()
) -> Backup:
    """Back up and verify; raise BackupError if either fails, leaving no backup file behind.

    ``without_rows_of``: tables (``schema.table``) whose definitions are kept but not their rows —
    a rehearsal's partial copy (PostgreSQL only; never for a backup that protects a run)."""
    engine = _engine(database.vendor)
    with _scrubbed(database):
        final = _backup_path(directory, label, engine.extension)
        remove_stale_partials(directory)
        partial = final.with_name(f".{final.name}.{os.getpid()}.partial")
        try:
            started = time.monotonic()
            taken = engine.take(database, partial, without_rows_of)
            _fsync(partial)
            duration = time.monotonic() - started
            verified, verification = engine.verify(partial, taken.sha256)
            verification_seconds = time.monotonic() - started - duration
            if not verified:
                raise BackupError(f"the backup of {database.name} failed verification: {verification}")
            size = partial.stat().st_size
            _publish(partial, final)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
    return Backup(
        final, size, taken.sha256, duration, taken.tool, taken.tool_version, taken.server_version,
        verified, verification, verification_seconds,
    )


def remove_stale_partials(directory: Path) -> list[Path]:
    """Remove the unfinished backups of processes that are gone, and return them.

    Those of a live process are kept: another worker may be writing into the same directory.
    """
    try:
        names = os.listdir(directory)
    except FileNotFoundError:
        return []
    stale = [directory / name for name in names if (match := _PARTIAL.match(name)) and not alive(int(match["pid"]))]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def verify_backup(database_vendor: str, path: Path, sha256: str) -> tuple[bool, str]:
    """Read the whole file: its sha256 and its contents must both check out. Never raises for a bad file."""
    try:
        return _engine(database_vendor).verify(path, sha256)
    except (OSError, sqlite3.Error) as error:
        return False, f"could not read {path}: {error}"


def restore_backup(database: Database, path: Path, sha256: str) -> None:
    """Bring the database back to the backed-up state; the checksum is checked before touching it."""
    engine = _engine(database.vendor)
    with _scrubbed(database):
        actual = sha256_of(path)
        if actual != sha256:
            raise BackupError(f"refusing to restore {path.name}: its sha256 is {actual}, the record says {sha256}")
        engine.restore(database, path)


# --- PostgreSQL ----------------------------------------------------------------------------------


def pg_environ(database: Database | None = None) -> dict[str, str]:
    """The environment for pg tools: the probe's minimal one, plus the target's connection if given.

    Nothing else of the worker's, not even its own PG* variables: the connection is the target's.
    """
    minimal = {name: os.environ[name] for name in PASSED_THROUGH if name in os.environ}
    if database is None:
        return minimal
    settings = {
        "PGDATABASE": database.name, "PGHOST": database.host, "PGPORT": database.port,
        "PGUSER": database.user, "PGPASSWORD": database.password,
    }
    return minimal | {key: value for key, value in settings.items() if value} | {"PGAPPNAME": "migrabot-backup"}


def _pg_take(database: Database, path: Path, without_rows_of: Sequence[str]) -> _Taken:
    env = pg_environ(database)
    # Quoted, each part: a pattern matches that one table, whatever characters its name holds.
    excluded = tuple(f"--exclude-table-data={_quoted(table)}" for table in without_rows_of)
    with create_private(path) as file:
        written = compress_output(PG_DUMP + excluded, env, file)
    if not written.exit.ok:
        raise BackupError(f"pg_dump could not back up {database.name}: {written.exit.describe()}")
    return _Taken(
        written.sha256,
        f"pg_dump -Fc -Z0 | {COMPRESSOR}",
        _output(("pg_dump", "--version"), env),
        _output(PG_SERVER_VERSION, env),
    )


def _quoted(table: str) -> str:
    return ".".join('"' + part.replace('"', '""') + '"' for part in table.split(".", 1))


def _pg_verify(path: Path, sha256: str) -> tuple[bool, str]:
    fed = feed_decompressed(path, [PG_READ_ALL], pg_environ())  # reads a file, connects nowhere
    problems = [_mismatch(sha256, fed.sha256)] + [fed.problem] + [e.describe() for e in fed.exits if not e.ok]
    if any(problems):
        return False, "; ".join(p for p in problems if p)
    return True, f"sha256 matches; pg_restore read the whole archive ({fed.decompressed_bytes} bytes)"


def _pg_restore(database: Database, path: Path) -> None:
    fed = feed_decompressed(path, PG_RESTORE, pg_environ(database))
    failures = [fed.problem] + [e.describe() for e in fed.exits if not e.ok]
    if any(failures):
        raise BackupError(
            f"restoring {database.name} from {path.name} failed, and its transaction was not committed: "
            + "; ".join(f for f in failures if f)
        )


def _output(argv: tuple[str, ...], env: Mapping[str, str]) -> str:
    completed = children.run(argv, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    if completed.returncode != 0:
        raise BackupError(f"{argv[0]} exited with {completed.returncode}: {completed.stderr.strip()}")
    output: str = completed.stdout
    return output.strip()


# --- SQLite --------------------------------------------------------------------------------------


def _sqlite_take(database: Database, path: Path, without_rows_of: Sequence[str]) -> _Taken:
    if without_rows_of:
        raise BackupError("a SQLite backup is always whole")
    sqlite_copy(database, path)
    # Hashed after the backup API wrote it (a second read): SQLite writes pages through its own
    # pager, not as a stream we could hash on the way. Cheap at SQLite sizes.
    return _Taken(sha256_of(path), "sqlite3 online backup API", f"SQLite {sqlite3.sqlite_version}",
                  # No server: the library that read the file is the one that matters.
                  f"SQLite {sqlite3.sqlite_version}")


def sqlite_copy(database: Database, path: Path) -> None:
    """The database, whole, into a new file only its owner can read (the online backup API)."""
    create_private(path).close()  # 0600 before SQLite writes a single page into it
    # Read-only, so a wrong path fails instead of creating (and backing up) an empty database.
    with sqlite_connection(database.name, "ro") as source, sqlite_connection(str(path), "rw") as copy:
        source.backup(copy)
        # The copy of a WAL database is in WAL mode too; make it one self-contained file.
        copy.execute("PRAGMA journal_mode = DELETE")


def _sqlite_verify(path: Path, sha256: str) -> tuple[bool, str]:
    problems = [_mismatch(sha256, sha256_of(path))]
    try:
        with sqlite_connection(str(path), "ro&immutable=1") as copy:
            rows = [row[0] for row in copy.execute("PRAGMA integrity_check")]
        if rows != ["ok"]:
            problems.append("integrity_check: " + "; ".join(map(str, rows[:5])))
    except (sqlite3.Error, BackupError) as error:
        problems.append(f"integrity_check could not run: {error}")
    if any(problems):
        return False, "; ".join(p for p in problems if p)
    return True, "sha256 matches; PRAGMA integrity_check ok"


def _sqlite_restore(database: Database, path: Path) -> None:
    with sqlite_connection(str(path), "ro&immutable=1") as backup, sqlite_connection(database.name, "rwc") as target:
        backup.backup(target)  # one step, under a write lock: readers see the old or the new state


@contextlib.contextmanager
def sqlite_connection(path: str, mode: str) -> Iterator[sqlite3.Connection]:
    uri = f"{Path(path).resolve().as_uri()}?mode={mode}"
    try:
        connection = sqlite3.connect(uri, uri=True)
    except sqlite3.Error as error:
        raise BackupError(f"cannot open the SQLite database {path}: {error}") from None
    try:
        yield connection
    finally:
        connection.close()


# --- shared --------------------------------------------------------------------------------------

_ENGINE_BY_VENDOR = {
    "postgresql": _Engine("pgdump.zst", _pg_take, _pg_verify, _pg_restore),
    "sqlite": _Engine("sqlite3", _sqlite_take, _sqlite_verify, _sqlite_restore),
}


def _engine(vendor: str) -> _Engine:
    try:
        return _ENGINE_BY_VENDOR[vendor]
    except KeyError:
        raise BackupError(f"no backups for database vendor {vendor!r}") from None


def _backup_path(directory: Path, label: str, extension: str) -> Path:
    if not _LABEL.match(label):
        raise ValueError(f"a backup label is letters, digits, '.', '_' and '-': {label!r}")
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    return directory / f"{label}-{datetime.now(UTC):%Y%m%dT%H%M%S.%fZ}.{extension}"


def create_private(path: Path) -> Any:
    """Open a new file only its owner can read: a backup holds every row of the database."""
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "wb")


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _publish(partial: Path, final: Path) -> None:
    """Give the verified file its final name (never over an existing one) and make that durable."""
    os.link(partial, final)
    partial.unlink()
    _fsync(final.parent)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        pass
    return True


def _mismatch(expected: str, actual: str) -> str:
    return "" if expected == actual else f"sha256 differs: the record says {expected}, the file is {actual}"


@contextlib.contextmanager
def _scrubbed(database: Database) -> Iterator[None]:
    """Turn every failure into a BackupError whose message cannot carry the password."""
    try:
        yield
    except (BackupError, OSError, sqlite3.Error) as error:
        raise BackupError(redact(str(error), [database.password])) from None
