"""``migrate``: run what ``manage.py migrate [--fake] [app [migration]]`` runs, with live progress.

It runs in a process of its own, never in a warm session: a migration's RunPython imports and
runs project code, and a migration that fails half-way must not leave a long-lived process
answering from the state it left behind. The worker measured the cost: one fresh interpreter
per run, about what ``manage.py migrate`` itself pays.
"""

from __future__ import annotations

import contextlib
import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from migrabot_probe.errors import MigrationFailed, Refusal, Stopped
from migrabot_probe.graphs import GRAPHS
from migrabot_probe.measure import Measure
from migrabot_probe.plans import code_under_approval, load_plan, refuse_unapproved_code
from migrabot_probe.protocol import Event
from migrabot_probe.reversibility import refuse_irreversible
from migrabot_probe.sql import steps_sql

Emit = Callable[[dict[str, Any]], None]
#: Set by the stop signal's handler (main.py): finish the migration under way, start no other.
STOP_REQUESTED: list[bool] = []


# Statements slow by design, or that cannot run in a transaction: never the short lock budget.
SLOW_SQL = re.compile(r"\bCONCURRENTLY\b|\bVALIDATE\s+CONSTRAINT\b", re.IGNORECASE)
LOCK_NOT_AVAILABLE = "55P03"  # SQLSTATE of a lock_timeout
BACKOFF_SECONDS = (1, 2, 5, 10, 20, 30)


@dataclass(frozen=True)
class Budget:
    """PostgreSQL's lock_timeout and statement_timeout for the migration's own connection ("0" is
    none), the slow budgets for the migrations the ``SLOW_SQL`` statements or ``atomic = False``
    make slow, and how often an atomic migration that only failed to get its lock in time is
    tried again (PostgreSQL rolled it back whole: nothing of it happened)."""

    lock_timeout: str = "0"
    statement_timeout: str = "0"
    slow_lock_timeout: str = "0"
    slow_statement_timeout: str = "0"
    retries: int = 0

    def apply(self, connection: Any, slow: bool) -> None:
        if connection.vendor != "postgresql":
            return
        lock, statement = (self.lock_timeout, self.statement_timeout)
        if slow:
            lock, statement = (self.slow_lock_timeout, self.slow_statement_timeout)
        with connection.cursor() as cursor:  # session-wide: it outlives the migration's transaction
            cursor.execute("SELECT set_config('lock_timeout', %s, false), set_config('statement_timeout', %s, false)",
                           [lock, statement])


class Blockers:
    """Which sessions block the migration's connection, watched from a connection of its own while
    the run lasts (pid, application and how long their transaction has been open — never their
    query, which may hold secrets). PostgreSQL only; elsewhere it sees nothing."""

    def __init__(self, connection: Any) -> None:
        self.seen: list[dict[str, Any]] = []
        self._done = threading.Event()
        self._pid: int | None = None
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                self._pid = cursor.fetchone()[0]
            threading.Thread(target=self._watch, daemon=True).start()

    def stop(self) -> None:
        self._done.set()

    def _watch(self) -> None:
        from django.db import connections

        watcher = connections["default"]  # this thread's own connection
        try:
            while not self._done.wait(0.2):
                with watcher.cursor() as cursor:
                    cursor.execute(
                        "SELECT pid, application_name, EXTRACT(EPOCH FROM now() - xact_start)::int "
                        "FROM pg_stat_activity WHERE pid = ANY(pg_blocking_pids(%s)) ORDER BY pid",
                        [self._pid],
                    )
                    found = [{"pid": pid, "application": app or "", "seconds": seconds or 0}
                             for pid, app, seconds in cursor.fetchall()]
                if found:
                    self.seen = found
        except Exception:  # the watch only explains a wait; it never stops a run
            pass
        finally:
            watcher.close()


def lock_timed_out(error: BaseException | None) -> bool:
    while error is not None:
        if LOCK_NOT_AVAILABLE in (getattr(error, "sqlstate", None), getattr(error, "pgcode", None)):
            return True
        error = error.__cause__ or error.__context__
    return False


def migrate(
    app_label: str | None, migration_name: str | None, fake: bool, emit: Emit, expected: dict[str, Any] | None = None,
    budget: Budget = Budget(), measure: bool = False,
) -> dict[str, Any]:
    """The whole plan is checked first: Django raises IrreversibleError only when it reaches the
    irreversible step, after the earlier ones were already unapplied. Running Django's own
    migrate command (with our progress callback) rather than MigrationExecutor.migrate keeps
    everything else identical: system checks, pre_migrate/post_migrate signals (content types,
    permissions), the post-migrate state rendering, recording squashed migrations. ``measure``
    adds what each migration did to PostgreSQL's tables to its success event (migrabot_probe.measure)."""
    from django.core.management import CommandError, call_command

    GRAPHS.refresh()
    executor, migration_plan = load_plan(app_label, migration_name)
    sqls = steps_sql(executor.loader, migration_plan)
    if expected is not None:  # checked here, in the process that imported the code it runs
        refuse_unapproved_code(expected, code_under_approval(executor.loader, migration_plan, sqls))
    if not fake:  # faking never runs an operation, so nothing is irreversible
        refuse_irreversible(migration_plan)
    slow = {
        (migration.app_label, migration.name)
        for (migration, _), sql in zip(migration_plan, sqls, strict=True)
        if not migration.atomic or SLOW_SQL.search(sql)
    }
    connection = executor.connection
    measuring = Measure(connection) if measure and connection.vendor == "postgresql" else None
    progress = Progress(
        emit, lambda migration: budget.apply(connection, (migration.app_label, migration.name) in slow), measuring
    )
    blockers = Blockers(connection)
    arguments = [arg for arg in (app_label, migration_name) if arg is not None]
    try:
        for attempt in range(budget.retries + 1):
            try:
                # Stray prints (signal receivers, RunPython code) must not corrupt the JSON stream.
                watching = connection.execute_wrapper(measuring) if measuring else contextlib.nullcontext()
                with contextlib.redirect_stdout(sys.stderr), watching:
                    call_command(
                        streaming_migrate(progress),
                        *arguments,
                        fake=fake,
                        interactive=False,
                        verbosity=0,
                        skip_checks=False,  # manage.py runs the system checks first
                        stdout=sys.stderr,
                        stderr=sys.stderr,
                    )
                break
            except Stopped:
                raise
            except Exception as error:
                running = progress.migration
                if running is None:
                    if isinstance(error, CommandError):  # e.g. system checks, before anything ran
                        raise Refusal(str(error)) from error
                    raise
                waited = lock_timed_out(error)
                if waited and running.atomic and attempt < budget.retries:
                    # Only this failure is tried again: the migration's transaction rolled back whole.
                    wait = BACKOFF_SECONDS[min(attempt, len(BACKOFF_SECONDS) - 1)]
                    emit({"event": "lock_timeout", "app": running.app_label, "name": running.name,
                          "attempt": attempt + 1, "retries": budget.retries, "wait": wait, "blockers": blockers.seen})
                    progress.migration = progress.running = None
                    time.sleep(wait)
                    continue
                held = f" (lock held by {describe(blockers.seen)})" if waited and blockers.seen else ""
                failure = f"{type(error).__name__}: {error}{held}"
                raise MigrationFailed(running.app_label, running.name, failure) from error
    finally:
        blockers.stop()
    return {"result": {"applied": progress.applied, "unapplied": progress.unapplied}}


def describe(blockers: list[dict[str, Any]]) -> str:
    return ", ".join(
        f"pid {b['pid']}" + (f" ({b['application']})" if b["application"] else "")
        + f", in a transaction for {b['seconds']} s"
        for b in blockers
    )


class Progress:
    """MigrationExecutor's progress callback, turned into JSON events as they happen."""

    def __init__(
        self, emit: Emit, before: Callable[[Any], None] = lambda migration: None, measure: Measure | None = None
    ) -> None:
        self.emit = emit
        self.before = before  # called as a migration starts, before its transaction opens
        self.measure = measure
        self.migration: Any = None
        self.running: tuple[str, str] | None = None
        self.started = 0.0
        self.applied: list[str] = []
        self.unapplied: list[str] = []

    def __call__(self, action: str, migration: Any = None, fake: bool = False) -> None:
        if action not in ("apply_start", "apply_success", "unapply_start", "unapply_success"):
            return  # render_start/render_success: not a migration
        event: Event = {"event": action, "app": migration.app_label, "name": migration.name, "fake": fake}
        if action.endswith("_start") and STOP_REQUESTED:
            # Called before the migration's transaction opens: nothing of it has happened.
            raise Stopped(migration.app_label, migration.name, self.applied + self.unapplied)
        if action.endswith("_start"):
            self.before(migration)
            if self.measure is not None:
                self.measure.start()
            self.migration = migration
            self.running, self.started = (migration.app_label, migration.name), time.monotonic()
        else:
            event["seconds"] = round(time.monotonic() - self.started, 3)
            if self.measure is not None:
                event["measured"] = self.measure.finish()
            done = self.applied if action == "apply_success" else self.unapplied
            done.append(f"{migration.app_label}.{migration.name}")
            self.running = self.migration = None
        self.emit(dict(event))


def streaming_migrate(progress: Progress) -> Any:
    """Django's migrate command reporting to `progress` (its base class needs Django set up)."""
    from django.core.management.commands.migrate import Command as Migrate

    class StreamingMigrate(Migrate):
        def migration_progress_callback(self, action: str, migration: Any = None, fake: bool = False) -> None:
            progress(action, migration, fake)

    return StreamingMigrate()
