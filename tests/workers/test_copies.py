"""Rehearsal copies against real databases: SQLite files through the backup API, PostgreSQL scratch
databases restored from a real, verified pg_dump. A copy is the database, private, never shared,
partial above the limit, and gone afterwards however the block ends; the sweep drops only the
copies nobody holds."""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from controlplane.errors import Refusal
from migrabot.config import Environment
from workers import copies
from workers.backup import Database

UNLIMITED = 1 << 60


@pytest.fixture
def environment(tmp_path: Path, example_project: Path) -> Environment:
    return Environment(name="t", project=example_project, settings="backend.settings", backup_dir=tmp_path / "backups")


@pytest.fixture
def real(database_url: str, example_project: Path, manage: Any) -> Database:
    """The example project migrated and seeded, as the worker's backup tools see it."""
    for args in (("migrate", "--noinput"), ("seed_demo",)):
        done = manage(example_project, database_url, *args)
        assert done.returncode == 0, done.stderr
    return Database.from_url(database_url)


def rows(database: Database, table: str) -> int:
    if database.vendor == "sqlite":
        with sqlite3.connect(database.name) as connection:
            return int(connection.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0])
    with connect(database) as connection:
        return int(connection.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))).fetchone()[0])


def connect(database: Database) -> psycopg.Connection[Any]:
    return psycopg.connect(
        dbname=database.name, host=database.host, port=database.port, user=database.user, password=database.password,
        autocommit=True,
    )


def exists(copy: copies.Copy) -> bool:
    if copy.database.vendor == "sqlite":
        return any(Path(copy.database.name).parent.glob(Path(copy.database.name).name + "*"))
    with connect(copy.real) as connection:
        return bool(connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [copy.database.name]).fetchone())


@pytest.fixture
def made(environment: Environment, real: Database) -> Iterator[copies.Copy]:
    copy = copies.copy_for(environment, real, 7)
    with copies.made(copy, touched=[], max_bytes=UNLIMITED, dump_folder=environment.backup_dir) as done:
        yield done
    assert not exists(copy)


def test_a_copy_holds_the_database_and_its_history(made: copies.Copy) -> None:
    assert not made.partial
    assert copies.history_digest(made.database) == copies.history_digest(made.real)
    for table in ("accounts_customer", "marketplace_order", "media_banner"):
        assert rows(made.database, table) == rows(made.real, table) > 0


def test_a_copy_is_named_apart_and_private(made: copies.Copy) -> None:
    assert made.database.name != made.real.name
    if made.database.vendor == "sqlite":
        path = Path(made.database.name)
        assert path.name.startswith(".migrabot-rehearsal-") and path.parent == Path(made.real.name).resolve().parent
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        return
    assert made.database.name.startswith(copies.PG_PREFIX)
    with connect(made.real) as connection:
        acl = connection.execute("SELECT datacl::text FROM pg_database WHERE datname = %s", [made.database.name])
        (text,) = acl.fetchone() or ("",)
    # No PUBLIC entry ("=c/…" would let every role connect): only the owner's.
    assert text and not any(entry.startswith("=") for entry in text.strip("{}").split(","))


def test_a_copy_is_gone_when_the_block_fails(environment: Environment, real: Database) -> None:
    copy = copies.copy_for(environment, real, 8)
    folder = environment.backup_dir
    with pytest.raises(RuntimeError), copies.made(copy, touched=[], max_bytes=UNLIMITED, dump_folder=folder):
        assert exists(copy)
        raise RuntimeError("the rehearsal failed")
    assert not exists(copy)
    assert not list(environment.backup_dir.glob("*")), "no dump is kept"


def test_two_copies_of_one_environment_are_two(environment: Environment, real: Database) -> None:
    first, second = copies.copy_for(environment, real, 9), copies.copy_for(environment, real, 9)
    assert first.database.name != second.database.name
    folder = environment.backup_dir
    with copies.made(first, touched=[], max_bytes=UNLIMITED, dump_folder=folder) as one, copies.made(
        second, touched=[], max_bytes=UNLIMITED, dump_folder=folder
    ) as two:
        assert rows(one.database, "accounts_customer") == rows(two.database, "accounts_customer") > 0
    assert not exists(first) and not exists(second)


def test_a_partial_copy_keeps_the_schema_and_the_rows_the_plan_needs(environment: Environment, real: Database) -> None:
    copy = copies.copy_for(environment, real, 10)
    with copies.made(copy, touched=["marketplace_order"], max_bytes=1, dump_folder=environment.backup_dir) as made:
        assert made.partial
        # The touched table, what it references (transitively), and the migration history.
        assert set(made.kept) == {"marketplace_order", "marketplace_listing", "accounts_customer", "django_migrations"}
        for table in made.kept:
            assert rows(made.database, table) == rows(real, table) > 0
        assert rows(made.database, "media_banner") == 0 < rows(real, "media_banner")  # there, empty
        assert copies.history_digest(made.database) == copies.history_digest(real)


def test_not_enough_free_space_refuses_before_copying(
    environment: Environment, real: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    copy = copies.copy_for(environment, real, 11)
    # The disk reports 1 KiB free: nothing fits.
    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(1 << 40, (1 << 40) - 1024, 1024))  # type: ignore[attr-defined]
    with pytest.raises(Refusal, match=r"the copy needs up to .* which has 1.0 KB free"), copies.made(
        copy, touched=[], max_bytes=UNLIMITED, dump_folder=environment.backup_dir
    ):
        pytest.fail("no copy may be made")
    assert not exists(copy)


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_the_sweep_drops_the_copies_nobody_holds(environment: Environment, real: Database) -> None:
    held = copies.copy_for(environment, real, 12)
    if real.vendor == "sqlite":
        folder = Path(real.name).resolve().parent
        orphan = folder / f".migrabot-rehearsal-{dead_pid()}-ab12.sqlite3"
        orphan.write_bytes(b"")
        dump = environment.backup_dir / f".rehearsal-{dead_pid()}-xyz"
        dump.mkdir(parents=True)
        swept = copies.sweep(real, environment, environment.backup_dir)
        assert set(swept) == {orphan.name, dump.name} and not orphan.exists() and not dump.exists()
        with copies.made(held, touched=[], max_bytes=UNLIMITED, dump_folder=environment.backup_dir):
            assert copies.sweep(real, environment, environment.backup_dir) == []
            assert exists(held), "a copy whose maker is alive is never swept"
        return
    orphan_name = f"{copies.PG_PREFIX}r12_deadbeef"
    with connect(real) as connection:
        connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(orphan_name)))
    copies.sweep(real, environment, environment.backup_dir)  # (another test's sweep may get there first)
    with connect(real) as connection:
        assert not connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [orphan_name]).fetchone()
    with copies.made(held, touched=[], max_bytes=UNLIMITED, dump_folder=environment.backup_dir):
        assert held.database.name not in copies.sweep(real, environment, environment.backup_dir)
        assert exists(held), "a copy whose maker holds it is never swept"


def test_a_sqlite_copy_lives_beside_the_database(environment: Environment, tmp_path: Path) -> None:
    real = Database("sqlite", str(tmp_path / "elsewhere" / "db.sqlite3"))
    copy = copies.copy_for(environment, real, 13)
    assert Path(copy.database.name).parent == tmp_path / "elsewhere"
    assert os.path.basename(copy.database.name).startswith(".migrabot-rehearsal-")


def test_a_copy_can_live_on_the_server_rehearsal_server_names(
    environment: Environment, pg_database_url: str, example_project: Path, manage: Any, postgres_admin_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert manage(example_project, pg_database_url, "migrate", "--noinput").returncode == 0
    real = Database.from_url(pg_database_url)
    elsewhere = environment.model_copy(update={"rehearsal_server": "REHEARSAL_SERVER_URL"})
    with pytest.raises(Refusal, match="names the variable REHEARSAL_SERVER_URL, which is not set"):
        copies.copy_for(elsewhere, real, 14)
    # The suite has one server: reached here through the URL of its admin database, as another would be.
    monkeypatch.setenv("REHEARSAL_SERVER_URL", postgres_admin_url)
    server = Database.from_url(postgres_admin_url)
    copy = copies.copy_for(elsewhere, real, 14)
    assert (copy.database.host, copy.database.port, copy.database.user) == (server.host, server.port, server.user)
    assert copy.settings()["HOST"] == server.host
    with copies.made(copy, touched=[], max_bytes=UNLIMITED, dump_folder=environment.backup_dir) as made:
        assert copies.history_digest(made.database) == copies.history_digest(real)
    assert not exists(copy)
