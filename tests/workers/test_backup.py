"""Backups against real databases: PostgreSQL with the real pg_dump/pg_restore/psql, SQLite files.

Each target is the example project migrated and given a few rows. A "snapshot" (every table, its
columns and indexes, and its row count) is what "the same database" means in these tests.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import shutil
import sqlite3
import stat
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import psycopg
import pytest
import zstandard
from psycopg import sql

from workers.backup import (
    BackupError,
    Database,
    remove_stale_partials,
    restore_backup,
    take_backup,
    verify_backup,
)
from workers.target import PASSED_THROUGH

VENDORS = ["postgresql", "sqlite"]

SEED = [
    (
        "INSERT INTO accounts_customer (email, name, display_name, created_at) VALUES "
        "('ada@example.com', 'Ada', 'Ada', CURRENT_TIMESTAMP), ('bob@example.com', 'Bob', 'Bob', CURRENT_TIMESTAMP),"
        " ('cy@example.com', 'Cy', 'Cy', CURRENT_TIMESTAMP)"
    ),
    (
        "INSERT INTO marketplace_listing (seller_id, title, price_cents, created_at) "
        "SELECT id, 'Lamp of ' || name, 1200, CURRENT_TIMESTAMP FROM accounts_customer"
    ),
    (
        "INSERT INTO marketplace_order (buyer_id, listing_id, quantity, status, total_cents, placed_at) "
        "SELECT c.id, l.id, 1, 'open', 1200, CURRENT_TIMESTAMP FROM accounts_customer c, marketplace_listing l"
    ),
    (
        "INSERT INTO media_image (listing_id, path, alt_text, position, uploaded_at) "
        "SELECT id, 'lamp.jpg', '', 0, CURRENT_TIMESTAMP FROM marketplace_listing"
    ),
]
FILLER = "CREATE TABLE filler AS SELECT g AS id, md5(g::text) AS word FROM generate_series(1, 20000) g"
# What happens to a database after its backup: a rollback, lost rows, a new table.
LATER = ["DELETE FROM marketplace_order WHERE id % 2 = 0", "CREATE TABLE created_later (id integer)"]


class Target(Protocol):
    database: Database
    url: str

    def execute(self, *statements: str) -> None: ...
    def snapshot(self) -> dict[str, Any]: ...


@dataclasses.dataclass
class PostgresTarget:
    database: Database
    url: str

    def execute(self, *statements: str) -> None:
        with psycopg.connect(self.url, autocommit=True) as connection:
            for statement in statements:
                connection.execute(statement)  # type: ignore[arg-type]

    def snapshot(self) -> dict[str, Any]:
        user_schema = "NOT IN ('pg_catalog', 'information_schema') AND {0} NOT LIKE 'pg\\_%%'"
        with psycopg.connect(self.url) as connection:
            columns = connection.execute(
                "SELECT table_schema, table_name, column_name, data_type, is_nullable FROM information_schema.columns"
                f" WHERE table_schema {user_schema.format('table_schema')} ORDER BY 1, 2, ordinal_position"
            ).fetchall()
            indexes = connection.execute(
                f"SELECT indexdef FROM pg_indexes WHERE schemaname {user_schema.format('schemaname')} ORDER BY 1"
            ).fetchall()
            tables = sorted({(schema, table) for schema, table, *_ in columns})
            counts = {
                f"{schema}.{table}": connection.execute(
                    sql.SQL("SELECT count(*) FROM {}.{}").format(sql.Identifier(schema), sql.Identifier(table))
                ).fetchone()[0]  # type: ignore[index]
                for schema, table in tables
            }
        return {"columns": columns, "indexes": indexes, "rows": counts}


@dataclasses.dataclass
class SqliteTarget:
    database: Database
    url: str

    def execute(self, *statements: str) -> None:
        with sqlite3.connect(self.database.name) as connection:
            for statement in statements:
                connection.execute(statement)
        connection.close()

    def snapshot(self) -> dict[str, Any]:
        connection = sqlite3.connect(self.database.name)
        try:
            schema = connection.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY 1, 2").fetchall()
            tables = [name for kind, name, _, _ in schema if kind == "table"]
            counts = {name: connection.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0] for name in tables}
        finally:
            connection.close()
        return {"schema": schema, "rows": counts}


def migrated_target(vendor: str, request: pytest.FixtureRequest) -> Target:
    """The example project migrated, with rows in every app, on PostgreSQL or SQLite."""
    example_project, manage = request.getfixturevalue("example_project"), request.getfixturevalue("manage")
    if vendor == "postgresql":
        url = request.getfixturevalue("pg_database_url")
        made: Target = PostgresTarget(Database.from_url(url), url)
    else:
        url = f"sqlite:///{request.getfixturevalue('tmp_path') / 'target.sqlite3'}"
        made = SqliteTarget(Database.from_url(url), url)
    migrated = manage(example_project, url, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    made.execute(*SEED)
    return made


@pytest.fixture(params=VENDORS)
def target(request: pytest.FixtureRequest) -> Target:
    return migrated_target(request.param, request)


@pytest.fixture
def pg_target(request: pytest.FixtureRequest) -> Target:
    return migrated_target("postgresql", request)


@pytest.fixture
def sqlite_target(request: pytest.FixtureRequest) -> Target:
    return migrated_target("sqlite", request)


@pytest.fixture
def backups(tmp_path: Path) -> Path:
    return tmp_path / "backups"


def digest_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def files_in(directory: Path) -> list[str]:
    return sorted(os.listdir(directory)) if directory.exists() else []


# --- taking and verifying ---------------------------------------------------------------------------


def test_a_backup_is_verified_and_recorded(target: Target, backups: Path) -> None:
    backup = take_backup(target.database, backups, label="staging-req42")

    assert backup.verified, backup.verification
    assert "sha256 matches" in backup.verification
    assert backup.sha256 == digest_of(backup.path)
    assert backup.size == backup.path.stat().st_size > 0
    assert stat.S_IMODE(backup.path.stat().st_mode) == 0o600
    assert re.fullmatch(r"staging-req42-\d{8}T\d{6}\.\d{6}Z\.(pgdump\.zst|sqlite3)", backup.path.name)
    assert files_in(backups) == [backup.path.name]  # no temporary file left beside it
    assert backup.duration_seconds > 0 and backup.verification_seconds > 0
    assert verify_backup(target.database.vendor, backup.path, backup.sha256) == (True, backup.verification)


def test_postgres_backup_records_the_tool_and_server_versions(pg_target: Target, backups: Path) -> None:
    backup = take_backup(pg_target.database, backups, label="versions")

    with psycopg.connect(pg_target.url) as connection:
        assert backup.server_version == connection.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
    assert backup.tool_version.startswith("pg_dump (PostgreSQL) ")
    assert backup.tool.startswith("pg_dump -Fc -Z0 | zstd")


def test_sqlite_backup_of_a_wal_database_is_one_standalone_file(sqlite_target: Target, backups: Path) -> None:
    with sqlite3.connect(sqlite_target.database.name) as connection:
        connection.execute("PRAGMA journal_mode = WAL")  # the copy must not depend on -wal/-shm files
    connection.close()
    backup = take_backup(sqlite_target.database, backups, label="wal")

    assert backup.tool == "sqlite3 online backup API"
    assert files_in(backups) == [backup.path.name]
    assert backup.path.read_bytes()[18:20] == b"\x01\x01"  # header: rollback journal, not WAL
    copy = SqliteTarget(Database("sqlite", str(backup.path)), "")
    assert copy.snapshot() == sqlite_target.snapshot()


def _truncated(data: bytes) -> bytes:
    return data[: len(data) * 2 // 3]


def _one_byte_flipped(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0x01]) + data[middle + 1 :]


@pytest.mark.parametrize("damage", [_truncated, _one_byte_flipped])
def test_a_damaged_backup_fails_verification(target: Target, backups: Path, damage: Any) -> None:
    backup = take_backup(target.database, backups, label="damaged")
    backup.path.write_bytes(damage(backup.path.read_bytes()))

    verified, reason = verify_backup(target.database.vendor, backup.path, backup.sha256)

    assert not verified
    assert "sha256 differs" in reason


def test_a_truncated_backup_fails_the_full_read_even_with_its_own_checksum(target: Target, backups: Path) -> None:
    """The content check stands on its own: a cut file whose sha256 was (wrongly) recorded still fails."""
    backup = take_backup(target.database, backups, label="cut")
    backup.path.write_bytes(_truncated(backup.path.read_bytes()))

    verified, reason = verify_backup(target.database.vendor, backup.path, digest_of(backup.path))

    assert not verified
    assert "sha256" not in reason
    assert {"postgresql": "pg_restore exited with 1", "sqlite": "integrity_check"}[target.database.vendor] in reason


def test_a_cut_archive_in_an_intact_compressed_stream_fails_the_full_read(pg_target: Target, backups: Path) -> None:
    """What `pg_restore --list` would pass: the archive's data blocks end early, the zstd frame is whole."""
    pg_target.execute(FILLER)  # enough rows that the cut falls in the data, well after the table of contents
    backup = take_backup(pg_target.database, backups, label="cut-inside")
    archive = zstandard.ZstdDecompressor().decompressobj().decompress(backup.path.read_bytes())
    backup.path.write_bytes(zstandard.ZstdCompressor().compress(_truncated(archive)))

    verified, reason = verify_backup("postgresql", backup.path, digest_of(backup.path))

    assert not verified
    assert "pg_restore exited with 1" in reason and "end of file" in reason


def test_a_flipped_byte_fails_decompression_even_with_its_own_checksum(pg_database_url: str, backups: Path) -> None:
    PostgresTarget(Database.from_url(pg_database_url), pg_database_url).execute(FILLER)
    backup = take_backup(Database.from_url(pg_database_url), backups, label="flip")
    backup.path.write_bytes(_one_byte_flipped(backup.path.read_bytes()))

    verified, reason = verify_backup("postgresql", backup.path, digest_of(backup.path))

    assert not verified
    assert "damaged" in reason


def test_a_missing_backup_file_fails_verification(tmp_path: Path) -> None:
    for vendor in VENDORS:
        verified, reason = verify_backup(vendor, tmp_path / "gone", "0" * 64)
        assert not verified and "gone" in reason


# --- failures taking a backup ----------------------------------------------------------------------


def test_pg_dump_failure_raises_with_its_reason_and_leaves_no_file(postgres_admin_url: str, backups: Path) -> None:
    secret = f"pw-{uuid.uuid4().hex}"
    # Named like the password, so the server's own message would carry it if we did not scrub it.
    missing = dataclasses.replace(Database.from_url(postgres_admin_url), name=secret, password=secret)

    with pytest.raises(BackupError) as raised:
        take_backup(missing, backups, label="missing")

    message = str(raised.value)
    assert "pg_dump" in message and "does not exist" in message
    assert secret not in message
    assert files_in(backups) == []


def test_a_missing_sqlite_file_raises_and_is_not_created(tmp_path: Path, backups: Path) -> None:
    missing = tmp_path / "nope.sqlite3"
    with pytest.raises(BackupError, match="cannot open the SQLite database"):
        take_backup(Database("sqlite", str(missing)), backups, label="missing")
    assert not missing.exists()
    assert files_in(backups) == []


def test_an_unwritable_backup_directory_raises_backup_error(sqlite_target: Target, tmp_path: Path) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a directory")
    with pytest.raises(BackupError, match="a-file"):
        take_backup(sqlite_target.database, blocked / "backups", label="blocked")


def test_in_memory_and_unknown_databases_cannot_be_backed_up() -> None:
    with pytest.raises(BackupError, match="in memory"):
        Database.from_url("sqlite://:memory:")
    with pytest.raises(BackupError, match="ENGINE"):
        Database.from_settings({"ENGINE": "django.db.backends.mysql", "NAME": "shop"})


def test_from_url_reads_what_the_target_settings_read() -> None:
    assert Database.from_url("postgres://app:p%40ss:w@db.internal:6432/shop") == Database(
        "postgresql", "shop", "db.internal", "6432", "app", "p@ss:w"
    )
    assert Database.from_url("sqlite:////srv/app/db.sqlite3") == Database("sqlite", "/srv/app/db.sqlite3")
    assert "p@ss" not in repr(Database.from_url("postgresql://app:p%40ss@db/shop"))


# --- secrets ----------------------------------------------------------------------------------------

SHIM = """#!/bin/sh
# Records how it was called (argv, and the environment it was given), then runs the real tool.
printf '%s\\0' "$0" "$@" > "{log}/$$.argv"
printf '%s' "$PGPASSWORD" > "{log}/$$.password"
cat /proc/$$/environ > "{log}/$$.environ"
exec {real} "$@"
"""


@pytest.fixture
def recorded_calls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Put recording shims of pg_dump, pg_restore and psql first on PATH; yield where they log."""
    shims, log = tmp_path / "shims", tmp_path / "calls"
    shims.mkdir()
    log.mkdir()
    for tool in ("pg_dump", "pg_restore", "psql"):
        real = shutil.which(tool)
        assert real, f"{tool} not on PATH"
        (shims / tool).write_text(SHIM.format(real=real, log=log))
        (shims / tool).chmod(0o755)
    monkeypatch.setenv("PATH", f"{shims}{os.pathsep}{os.environ['PATH']}")
    yield log


def test_the_password_reaches_pg_tools_only_through_their_environment(
    pg_database_url: str, backups: Path, recorded_calls: Path
) -> None:
    secret = f"pw-{uuid.uuid4().hex}"  # the local server trusts 127.0.0.1, so any password connects
    database = dataclasses.replace(Database.from_url(pg_database_url), password=secret)
    PostgresTarget(database, pg_database_url).execute("CREATE TABLE t (id integer)")

    backup = take_backup(database, backups, label="secret")
    restore_backup(database, backup.path, backup.sha256)

    calls = {path.stem: path.read_bytes().split(b"\0") for path in recorded_calls.glob("*.argv")}
    tools = sorted(Path(argv[0].decode()).name for argv in calls.values())
    assert tools == ["pg_dump", "pg_dump", "pg_restore", "pg_restore", "psql", "psql"]
    for argv in calls.values():
        assert not any(secret.encode() in argument for argument in argv), argv
    connecting = {"pg_dump", "psql"}  # the verification's pg_restore reads a file, it connects nowhere
    for pid, argv in calls.items():
        if Path(argv[0].decode()).name in connecting and b"--version" not in argv:
            assert (recorded_calls / f"{pid}.password").read_text() == secret


def test_pg_tools_get_only_a_minimal_environment_and_the_connection(
    pg_database_url: str, backups: Path, recorded_calls: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not the worker's Slack token, nor another environment's database URL (or anything else it has)."""
    worker_only = {"SLACK_BOT_TOKEN": f"xoxb-{uuid.uuid4().hex}", "PROD_DATABASE_URL": f"postgres://app:{uuid.uuid4().hex}@prod/shop"}
    for name, value in worker_only.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PGSERVICEFILE", "/nonexistent")  # the worker's own PG* settings are not the target's
    database = Database.from_url(pg_database_url)
    PostgresTarget(database, pg_database_url).execute("CREATE TABLE t (id integer)")

    backup = take_backup(database, backups, label="environ")
    restore_backup(database, backup.path, backup.sha256)

    environs = [
        dict(item.split("=", 1) for item in path.read_text().split("\0") if item)
        for path in recorded_calls.glob("*.environ")
    ]
    assert len(environs) == 6  # pg_dump twice (dump, --version), psql twice (version, restore), pg_restore twice
    allowed = {*PASSED_THROUGH, "PGDATABASE", "PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGAPPNAME"}
    for environ in environs:
        assert worker_only.keys().isdisjoint(environ), sorted(environ)
        assert set(environ) <= allowed, set(environ) - allowed
        assert environ["PATH"] == os.environ["PATH"]
        assert not any(secret in value for value in environ.values() for secret in worker_only.values())


# --- restoring --------------------------------------------------------------------------------------


def test_restore_brings_back_exactly_the_backed_up_state(
    target: Target, backups: Path, example_project: Path, manage: Any
) -> None:
    before = target.snapshot()
    migrations_before = manage(example_project, target.url, "showmigrations").stdout
    backup = take_backup(target.database, backups, label="roundtrip")

    unapplied = manage(example_project, target.url, "migrate", "media", "zero")
    assert unapplied.returncode == 0, unapplied.stderr
    target.execute(*LATER)
    if target.database.vendor == "postgresql":
        target.execute("CREATE SCHEMA later", "CREATE TABLE later.t (id integer)", "SELECT lo_from_bytea(0, 'x')")
    assert target.snapshot() != before

    restore_backup(target.database, backup.path, backup.sha256)

    assert target.snapshot() == before
    assert manage(example_project, target.url, "showmigrations").stdout == migrations_before
    assert manage(example_project, target.url, "migrate", "--check").returncode == 0


def test_a_wrong_checksum_refuses_restore_and_changes_nothing(target: Target, backups: Path) -> None:
    backup = take_backup(target.database, backups, label="wrongsum")
    target.execute(*LATER)
    after = target.snapshot()

    with pytest.raises(BackupError, match="refusing to restore"):
        restore_backup(target.database, backup.path, "f" * 64)

    assert target.snapshot() == after


def test_a_postgres_restore_that_fails_midway_leaves_the_database_as_it_was(pg_target: Target, backups: Path) -> None:
    """Drop and replay share one transaction: a cut archive (its checksum recorded as is) rolls back."""
    pg_target.execute(FILLER)
    backup = take_backup(pg_target.database, backups, label="midway")
    pg_target.execute(*LATER)
    after = pg_target.snapshot()
    backup.path.write_bytes(_truncated(backup.path.read_bytes()))
    cut = digest_of(backup.path)

    with pytest.raises(BackupError, match="not committed") as raised:
        restore_backup(pg_target.database, backup.path, cut)

    assert "pg_restore" in str(raised.value)
    assert pg_target.snapshot() == after


def test_stale_partial_files_are_removed_and_live_ones_kept(sqlite_target: Target, backups: Path) -> None:
    """A partial file is named after the process writing it: only a live process's is kept."""
    gone = _a_dead_pid()
    backups.mkdir()
    stale, live = backups / f".staging-1.sqlite3.{gone}.partial", backups / f".staging-2.sqlite3.{os.getpid()}.partial"
    stale.write_bytes(b"half a backup")
    live.write_bytes(b"being written")
    (backups / "notes.partial").write_bytes(b"not ours")

    assert remove_stale_partials(backups) == [stale]
    assert not stale.exists() and live.exists()

    stale.write_bytes(b"half a backup")
    backup = take_backup(sqlite_target.database, backups, label="after")  # each backup cleans up first
    assert files_in(backups) == sorted([live.name, "notes.partial", backup.path.name])


def _a_dead_pid() -> int:
    finished = subprocess.Popen(["true"])
    finished.wait()
    return finished.pid


def test_two_backups_in_a_row_get_their_own_files(target: Target, backups: Path) -> None:
    first = take_backup(target.database, backups, label="twice")
    second = take_backup(target.database, backups, label="twice")

    assert files_in(backups) == sorted([first.path.name, second.path.name])
