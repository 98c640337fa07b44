"""Nothing outlives its worker: a worker SIGKILLed mid-restore or mid-backup leaves no pg tool running.

A stand-in worker (a Python process running the real `restore_backup` / `take_backup` of the
checkout under test) is killed while a test connection holds a lock its psql or pg_dump waits for,
against a real PostgreSQL database. Its children must be gone at once: an orphaned psql would
commit the restore as soon as the lock is released, after the sweep had marked the run
interrupted and released the environment lock. A killed backup leaves a partial file, which the
next worker's start removes; it is never recorded (only a returned backup is).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
from services import database_name, wait_until

from workers.backup import Database, take_backup

REPO = Path(__file__).resolve().parents[2]
RESTORE = "restore_backup(Database.from_url(sys.argv[1]), Path(sys.argv[2]), sys.argv[3])"
BACKUP = "take_backup(Database.from_url(sys.argv[1]), Path(sys.argv[2]), label='killed')"
NEXT_WORKER_START = "remove_stale_partials(Path(sys.argv[1]))"
IMPORTS = "import sys; from pathlib import Path; from workers.backup import *; "
TOOLS_APP = "migrabot-backup"  # the application_name pg_environ gives the tools' connections


def stand_in(statement: str, *args: str) -> subprocess.Popen[str]:
    """A worker process importing this checkout's code (cwd is first on its sys.path)."""
    return subprocess.Popen(
        [sys.executable, "-c", IMPORTS + statement, *args], cwd=REPO, stderr=subprocess.PIPE, text=True
    )


def execute(url: str, *statements: str) -> None:
    with psycopg.connect(url, autocommit=True) as connection:
        for statement in statements:
            connection.execute(statement)  # type: ignore[arg-type]


def contents(url: str) -> dict[str, Any]:
    with psycopg.connect(url) as connection:
        tables = connection.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1"
        ).fetchall()
        rows = connection.execute("SELECT id FROM t ORDER BY id").fetchall()
    return {"tables": tables, "t": rows}


def tool_backends(url: str, *, waiting_on_a_lock: bool = False) -> int:
    with psycopg.connect(url, autocommit=True) as connection:
        row = connection.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND application_name = %s"
            + (" AND wait_event_type = 'Lock'" if waiting_on_a_lock else ""),
            [database_name(url), TOOLS_APP],
        ).fetchone()
    assert row is not None
    return int(row[0])


def wait_until_a_tool_waits(worker: subprocess.Popen[str], url: str) -> None:
    def waiting() -> bool:
        if worker.poll() is not None:
            raise AssertionError(f"the stand-in worker ended early ({worker.returncode}): {worker.stderr.read()}")  # type: ignore[union-attr]
        return tool_backends(url, waiting_on_a_lock=True) > 0

    wait_until(waiting, "a pg tool waiting for the test's lock")


def descendants(pid: int) -> dict[int, str]:
    """Every process below pid, by pid, with its command name (from /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(stat.parent.name))
    found, todo = {}, [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found[child] = command_of(child)
            todo.append(child)
    return found


def command_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


def alive(pid: int) -> bool:
    """Running, not a zombie (an orphan's zombie waits for whoever reaps it here)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def kill_and_see_who_survives(worker: subprocess.Popen[str], tools: dict[int, str]) -> list[str]:
    """SIGKILL the worker (no `finally` of its runs); which of its tools are still running shortly after."""
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    deadline = time.monotonic() + 5
    while (survivors := [pid for pid in tools if alive(pid)]) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [f"{tools[pid]} ({pid})" for pid in survivors]


def kill_leftovers(tools: dict[int, str]) -> None:
    """Only where the test already failed: the orphans it found, by pid."""
    for pid in tools:
        if alive(pid):
            os.kill(pid, signal.SIGKILL)


def test_a_worker_killed_mid_restore_leaves_no_psql_to_commit_it(pg_database_url: str, tmp_path: Path) -> None:
    url = pg_database_url
    execute(url, "CREATE TABLE t (id integer)", "INSERT INTO t VALUES (1), (2), (3)")
    backup = take_backup(Database.from_url(url), tmp_path / "backups", label="before")
    execute(url, "INSERT INTO t VALUES (4)", "CREATE TABLE created_later (id integer)")
    before_the_restore = contents(url)
    tools: dict[int, str] = {}
    try:
        with psycopg.connect(url) as blocker:
            # An open transaction that read t holds ACCESS SHARE on it: the restore's DROP SCHEMA waits.
            blocker.execute("SELECT count(*) FROM t")
            worker = stand_in(RESTORE, url, str(backup.path), backup.sha256)
            wait_until_a_tool_waits(worker, url)
            tools = descendants(worker.pid)
            assert "psql" in tools.values(), tools
            survivors = kill_and_see_who_survives(worker, tools)
            blocker.rollback()  # the lock goes: a surviving psql would now replay the archive and commit
        wait_until(lambda: tool_backends(url) == 0, "the restore's connection to end")

        assert contents(url) == before_the_restore, f"restored after its worker was killed, by {survivors}"
        assert survivors == []
    finally:
        kill_leftovers(tools)


def test_a_worker_killed_mid_backup_leaves_no_pg_dump_and_no_partial_file(pg_database_url: str, tmp_path: Path) -> None:
    url, backups = pg_database_url, tmp_path / "backups"
    execute(url, "CREATE TABLE t (id integer)", "INSERT INTO t VALUES (1)")
    tools: dict[int, str] = {}
    try:
        with psycopg.connect(url) as blocker:
            # pg_dump's ACCESS SHARE waits for this (up to its --lock-wait-timeout of 2 minutes).
            blocker.execute("LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
            worker = stand_in(BACKUP, url, str(backups))
            wait_until_a_tool_waits(worker, url)
            tools = descendants(worker.pid)
            assert "pg_dump" in tools.values(), tools
            survivors = kill_and_see_who_survives(worker, tools)
            blocker.rollback()
        assert survivors == []

        left_behind = os.listdir(backups)
        assert [name.endswith(f".{worker.pid}.partial") for name in left_behind] == [True]
        next_worker = subprocess.run(
            [sys.executable, "-c", IMPORTS + NEXT_WORKER_START, str(backups)],
            cwd=REPO, capture_output=True, text=True, check=False,
        )
        assert next_worker.returncode == 0, next_worker.stderr
        assert os.listdir(backups) == []
    finally:
        kill_leftovers(tools)

