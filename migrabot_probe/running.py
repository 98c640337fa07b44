"""``migrate``: run what ``manage.py migrate [--fake] [app [migration]]`` runs, with live progress.

It runs in a process of its own, never in a warm session: a migration's RunPython imports and
runs project code, and a migration that fails half-way must not leave a long-lived process
answering from the state it left behind. The worker measured the cost: one fresh interpreter
per run, about what ``manage.py migrate`` itself pays.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Callable
from typing import Any

from migrabot_probe.errors import MigrationFailed, Refusal, Stopped
from migrabot_probe.graphs import GRAPHS
from migrabot_probe.plans import code_under_approval, load_plan, refuse_unapproved_code
from migrabot_probe.protocol import Event
from migrabot_probe.reversibility import refuse_irreversible

Emit = Callable[[dict[str, Any]], None]
#: Set by the stop signal's handler (main.py): finish the migration under way, start no other.
STOP_REQUESTED: list[bool] = []


def migrate(
    app_label: str | None, migration_name: str | None, fake: bool, emit: Emit, expected: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The whole plan is checked first: Django raises IrreversibleError only when it reaches the
    irreversible step, after the earlier ones were already unapplied. Running Django's own
    migrate command (with our progress callback) rather than MigrationExecutor.migrate keeps
    everything else identical: system checks, pre_migrate/post_migrate signals (content types,
    permissions), the post-migrate state rendering, recording squashed migrations."""
    from django.core.management import CommandError, call_command

    GRAPHS.refresh()
    executor, migration_plan = load_plan(app_label, migration_name)
    if expected is not None:  # checked here, in the process that imported the code it runs
        refuse_unapproved_code(expected, code_under_approval(executor.loader, migration_plan))
    if not fake:  # faking never runs an operation, so nothing is irreversible
        refuse_irreversible(migration_plan)
    progress = Progress(emit)
    arguments = [arg for arg in (app_label, migration_name) if arg is not None]
    try:
        # Stray prints (signal receivers, RunPython code) must not corrupt the JSON stream.
        with contextlib.redirect_stdout(sys.stderr):
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
    except Stopped:
        raise
    except Exception as error:
        if progress.running is not None:
            raise MigrationFailed(*progress.running, f"{type(error).__name__}: {error}") from error
        if isinstance(error, CommandError):  # e.g. system checks, before anything ran
            raise Refusal(str(error)) from error
        raise
    return {"result": {"applied": progress.applied, "unapplied": progress.unapplied}}


class Progress:
    """MigrationExecutor's progress callback, turned into JSON events as they happen."""

    def __init__(self, emit: Emit) -> None:
        self.emit = emit
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
            self.running, self.started = (migration.app_label, migration.name), time.monotonic()
        else:
            event["seconds"] = round(time.monotonic() - self.started, 3)
            done = self.applied if action == "apply_success" else self.unapplied
            done.append(f"{migration.app_label}.{migration.name}")
            self.running = None
        self.emit(dict(event))


def streaming_migrate(progress: Progress) -> Any:
    """Django's migrate command reporting to `progress` (its base class needs Django set up)."""
    from django.core.management.commands.migrate import Command as Migrate

    class StreamingMigrate(Migrate):
        def migration_progress_callback(self, action: str, migration: Any = None, fake: bool = False) -> None:
            progress(action, migration, fake)

    return StreamingMigrate()
