"""Target probe: report a Django project's migration state as one JSON document.

Usage (cwd = the target project's folder with manage.py, DJANGO_SETTINGS_MODULE set):

    <target python> probe.py showmigrations [--fingerprints] [app ...]
    <target python> probe.py plan [--fake] [app [migration]]
    <target python> probe.py migrate [--fake] [--expect FILE] [app [migration]]
    <target python> probe.py connection
    <target python> probe.py catalog
    <target python> probe.py check

It runs under the TARGET project's own interpreter, which has the target's Django
and settings but not migrabot, so it is standalone: stdlib + Django only. The
logic mirrors Django's `showmigrations --list` and `migrate --plan` step by step
(same loader, same target resolution, same error wording) so that what migrabot
shows is what `manage.py` would print for the same project and database.

A refusal (bad app label or migration name, conflicting leaves, inconsistent
history, an irreversible step in a rollback) prints {"refusal": "<text>"} and exits
with REFUSAL_EXIT (`check` reports conflicts and an inconsistent history instead of
refusing: finding them is its job). `migrate` streams one JSON line per event and, when a migration
raises, prints {"failed": {...}} last and exits with FAILED_EXIT. Anything else
unexpected raises, leaving a traceback on stderr and another nonzero exit.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import hashlib
import json
import os
import re
import signal
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any, TextIO

PR_SET_PDEATHSIG = 1  # prctl(2)

REFUSAL_EXIT = 3
FAILED_EXIT = 4
STOPPED_EXIT = 5
# The worker sends this when it can no longer vouch for its environment lock: finish the
# migration under way, start no other.
STOP_SIGNAL = signal.SIGUSR1
_stop_requested: list[bool] = []

Key = tuple[str, str]
Target = tuple[str, "str | None"]
Emit = Callable[[dict[str, Any]], None]


class Refusal(Exception):
    """Input Django itself would reject with a CommandError (or a usage message)."""


class Stopped(Exception):
    """The worker asked us to stop; raised before the next migration began."""

    def __init__(self, app: str, name: str, done: list[str]) -> None:
        super().__init__(f"stopped before {app}.{name}")
        self.document = {"app": app, "name": name, "done": done}


class MigrationFailed(Exception):
    """A migration raised while it was being applied or unapplied."""

    def __init__(self, app: str, name: str, error: str) -> None:
        super().__init__(f"{app}.{name}: {error}")
        self.document = {"app": app, "name": name, "error": error}


def setup_django() -> None:
    # Same as manage.py: the project folder must be importable.
    sys.path.insert(0, os.getcwd())
    import django

    django.setup()


def validate_app_labels(app_labels: list[str]) -> None:
    """Refuse unknown labels, reporting every one as showmigrations does."""
    from django.apps import apps

    errors = []
    for label in app_labels:
        try:
            apps.get_app_config(label)
        except LookupError as err:
            errors.append(str(err))
    if errors:
        raise Refusal("\n".join(errors))


def show_migrations(app_labels: list[str], with_fingerprints: bool = False) -> dict[str, Any]:
    """Mirror `showmigrations --list` (Command.show_list) as data; with every applied
    migration's fingerprint, of all apps, if asked (the worker keeps a ledger of them)."""
    from django.db import DEFAULT_DB_ALIAS, connections
    from django.db.migrations.loader import MigrationLoader
    from django.db.migrations.recorder import MigrationRecorder

    connection = connections[DEFAULT_DB_ALIAS]
    loader = MigrationLoader(connection, ignore_no_migrations=True)
    recorded = MigrationRecorder(connection).applied_migrations()
    if app_labels:
        validate_app_labels(app_labels)
    else:
        app_labels = sorted(loader.migrated_apps)
    shown = {
        "apps": [
            {"app": label, "migrations": app_migrations(loader, recorded, label)}
            for label in app_labels
        ]
    }
    return shown | ({"fingerprints": fingerprints(loader, recorded)} if with_fingerprints else {})


def app_migrations(loader: Any, recorded: dict[Key, Any], app_label: str) -> list[dict[str, Any]]:
    """One app's migrations from roots to leaves, each with its applied state."""
    graph = loader.graph
    rows: list[dict[str, Any]] = []
    shown: set[Key] = set()
    for leaf in graph.leaf_nodes(app_label):
        for key in graph.forwards_plan(leaf):
            if key in shown or key[0] != app_label:
                continue
            shown.add(key)
            if key not in loader.applied_migrations:
                state = "unapplied"
            elif key in recorded:
                state = "applied"
            else:  # a squashed migration whose replaced ones are all recorded
                state = "unrecorded"
            replaces = graph.nodes[key].replaces or []
            rows.append({"name": key[1], "state": state, "replaces": len(replaces)})
    return rows


def plan(app_label: str | None, migration_name: str | None, fake: bool = False) -> dict[str, Any]:
    """Mirror `migrate --plan [app [migration]]` (Command.handle) as data, plus what an
    approver needs: per operation whether it destroys data, whether its reverse is a
    no-op and which tables it touches; the touched tables' current state; the SQL.

    `fake` computes the same plan (faking runs nothing, so there is nothing else to
    compute); it is echoed so a fake plan's digest differs from a real one's. For a
    fake, `tables[].exists` is what tells an approver whether the schema already
    matches: faking marketplace 0002_order forwards is right only if
    marketplace_order already exists.
    """
    executor, migration_plan = load_plan(app_label, migration_name)
    steps = [describe_step(executor.loader, migration, backwards) for migration, backwards in migration_plan]
    touched = unique(table for step in steps for op in step["operations"] for table in op["tables"])
    return {
        "steps": steps,
        "tables": table_facts(executor.connection, touched),
        "sql": plan_sql(executor.loader, migration_plan),
        "fake": fake,
    } | check_report(executor.loader)


def load_plan(app_label: str | None, migration_name: str | None) -> tuple[Any, list[tuple[Any, bool]]]:
    """The executor and the plan `migrate [app [migration]]` would run, after its checks."""
    from django.db import DEFAULT_DB_ALIAS, connections
    from django.db.migrations.exceptions import InconsistentMigrationHistory
    from django.db.migrations.executor import MigrationExecutor

    connection = connections[DEFAULT_DB_ALIAS]
    connection.prepare_database()
    executor = MigrationExecutor(connection)
    try:
        executor.loader.check_consistent_history(connection)
    except InconsistentMigrationHistory as error:
        raise Refusal(str(error)) from None
    refuse_conflicts(executor.loader)
    targets = resolve_targets(executor.loader, app_label, migration_name)
    return executor, executor.migration_plan(targets)


def describe_step(loader: Any, migration: Any, backwards: bool) -> dict[str, Any]:
    from django.core.management.commands.migrate import Command as Migrate

    operations = []
    for operation, tables in zip(migration.operations, operation_tables(loader, migration), strict=True):
        description, is_error = Migrate.describe_operation(operation, backwards)
        operations.append(
            {
                "type": type(operation).__name__,
                "description": description,
                # describe_operation only knows RunPython/RunSQL; Migration.unapply
                # refuses any operation that is not reversible.
                "irreversible": is_error or blocks_unapply(operation, backwards),
                "destroys_data": destroys_data(operation, backwards),
                "noop_reverse": backwards and noop_database_reverse(operation),
                "tables": tables,
            }
        )
    path = migration_file(migration)
    return {
        "app": migration.app_label,
        "name": migration.name,
        "backwards": backwards,
        "operations": operations,
        # What an approval binds to: the code that will run, not Django's 40-character summary.
        "file": relative(path),
        "sha256": file_sha256(path),
    }


def migration_file(migration: Any) -> str:
    return sys.modules[migration.__module__].__file__ or ""


def code_under_approval(loader: Any, migration_plan: list[tuple[Any, bool]]) -> dict[str, Any]:
    """The files and SQL a plan runs, in the shape the worker's expectation has (plans.expectation)."""
    return {
        "steps": [
            [
                migration.app_label,
                migration.name,
                backwards,
                relative(migration_file(migration)),
                file_sha256(migration_file(migration)),
            ]
            for migration, backwards in migration_plan
        ],
        "sql_sha256": hashlib.sha256(plan_sql(loader, migration_plan).encode()).hexdigest(),
    }


def refuse_unapproved_code(expected: dict[str, Any], actual: dict[str, Any]) -> None:
    """Run only the code that was approved: any other file content, step or SQL is refused."""
    if expected == actual:
        return
    approved = {(app, name): sha for app, name, _, _, sha in expected["steps"]}
    for app, name, _, file, sha in actual["steps"]:
        if (app, name) in approved and approved[(app, name)] != sha:
            raise Refusal(
                f"`{file}` changed since the plan was approved (sha256 {approved[(app, name)][:12]}… is now "
                f"{sha[:12]}…). Nothing ran: make a new request to approve the new code."
            )
    if [step[:3] for step in expected["steps"]] != [step[:3] for step in actual["steps"]]:
        raise Refusal("The migrations to run changed since the plan was approved. Nothing ran: make a new request.")
    raise Refusal("The SQL of the plan changed since it was approved. Nothing ran: make a new request.")


def blocks_unapply(operation: Any, backwards: bool) -> bool:
    return backwards and not operation.reversible


def irreversible_operations(migration_plan: list[tuple[Any, bool]]) -> list[str]:
    """`app.name (Operation: description)` for every operation the plan cannot unapply."""
    return [
        f"{migration.app_label}.{migration.name} ({type(operation).__name__}: {operation.describe()})"
        for migration, backwards in migration_plan
        for operation in migration.operations
        if blocks_unapply(operation, backwards)
    ]


def destroys_data(operation: Any, backwards: bool) -> bool:
    """Whether running the operation in this direction drops a table or a column.

    Reversing RemoveField/DeleteModel only re-creates an empty (or default-filled)
    column or table, so it is not destructive; RunSQL/RunPython cannot be judged
    from outside and count as not destroying (their description says what they do).
    """
    from django.db.migrations import operations as ops

    if isinstance(operation, ops.SeparateDatabaseAndState):
        return any(destroys_data(inner, backwards) for inner in operation.database_operations)
    dropping = (ops.CreateModel, ops.AddField) if backwards else (ops.DeleteModel, ops.RemoveField)
    return isinstance(operation, dropping)


def noop_database_reverse(operation: Any) -> bool:
    """Whether unapplying the operation leaves the database untouched."""
    from django.db.migrations import operations as ops

    if isinstance(operation, ops.RunPython):
        return operation.reverse_code is ops.RunPython.noop
    if isinstance(operation, ops.RunSQL):
        return operation.reverse_sql is not None and is_empty_sql(operation.reverse_sql)
    if isinstance(operation, ops.SeparateDatabaseAndState):
        return all(noop_database_reverse(inner) for inner in operation.database_operations)
    return False


def is_empty_sql(sql: str | Iterable[Any]) -> bool:
    """RunSQL.noop is "", and an empty list runs nothing either; (sql, params) pairs run."""
    if isinstance(sql, str):
        return not sql.strip()
    return all(isinstance(statement, str) and not statement.strip() for statement in sql)


# --- which tables an operation touches -----------------------------------------------
#
# Resolved from the migration's project states (the graph's state before the migration,
# then operation by operation, as Migration.apply walks them), so names are right even
# for tables that no longer exist or were renamed. The states are never rendered into
# model classes: rendering costs a full app registry per step, while the naming rules
# below are Django's own (Options.contribute_to_class, ManyToManyField._get_m2m_db_table).

# Whole model (its table and its auto-created many-to-many tables), or named fields
# (the model's table and those fields' many-to-many tables).
Touch = tuple[str, "tuple[str, ...] | None"]


def operation_tables(loader: Any, migration: Any) -> list[list[str]]:
    """For each operation of the migration, the tables it touches (in either direction)."""
    state = loader.project_state((migration.app_label, migration.name), at_end=False)
    found = []
    for operation in migration.operations:
        before = state.clone()
        operation.state_forwards(migration.app_label, state)
        touches = touched_models(operation)
        found.append(
            unique(
                table
                for snapshot in (before, state)
                for model_name, fields in touches
                for table in model_tables(snapshot, migration.app_label, model_name, fields)
            )
        )
    return found


def touched_models(operation: Any) -> list[Touch]:
    from django.db.migrations import operations as ops
    from django.db.migrations.operations.models import ModelOperation

    if isinstance(operation, (ops.AlterModelOptions, ops.AlterModelManagers)):
        return []  # state only: no SQL
    if isinstance(operation, ops.RenameModel):
        return [(operation.old_name_lower, None), (operation.new_name_lower, None)]
    if isinstance(operation, (ops.CreateModel, ops.DeleteModel, ops.AlterModelTable)):
        return [(operation.name_lower, None)]
    if isinstance(operation, ops.RenameField):
        return [(operation.model_name_lower, (operation.old_name, operation.new_name))]
    if isinstance(operation, (ops.AddField, ops.RemoveField, ops.AlterField)):
        return [(operation.model_name_lower, (operation.name,))]
    if hasattr(operation, "model_name_lower"):  # indexes and constraints
        return [(operation.model_name_lower, ())]
    if isinstance(operation, ModelOperation):  # unique_together, order_with_respect_to, comments
        return [(operation.name_lower, ())]
    if isinstance(operation, ops.SeparateDatabaseAndState):
        return [touch for inner in operation.database_operations for touch in touched_models(inner)]
    return []  # RunSQL, RunPython, custom operations: cannot tell from outside


def model_tables(state: Any, app_label: str, model_name: str, fields: tuple[str, ...] | None) -> list[str]:
    """The db tables of one model in one project state (none if it has no table there)."""
    from django.db import connection
    from django.db.backends.utils import strip_quotes, truncate_name

    model = state.models.get((app_label, model_name))
    if model is None or model.options.get("proxy") or model.options.get("managed") is False:
        return []
    max_length = connection.ops.max_name_length()
    table = model.options.get("db_table") or truncate_name(f"{app_label}_{model_name}", max_length)
    tables = [table]
    for field_name, field in model.fields.items():
        # An explicit `through` model's table belongs to that model's own operations.
        auto_m2m = field.many_to_many and field.remote_field.through is None
        if auto_m2m and (fields is None or field_name in fields):
            tables.append(field.db_table or truncate_name(f"{strip_quotes(table)}_{field_name}", max_length))
    return tables


def table_facts(connection: Any, tables: list[str]) -> list[dict[str, Any]]:
    """Whether each table exists now and how many rows it holds."""
    with connection.cursor() as cursor:
        existing = set(connection.introspection.table_names(cursor))
        facts = []
        for table in tables:
            rows = None
            if table in existing:
                cursor.execute(f"SELECT COUNT(*) FROM {connection.ops.quote_name(table)}")
                rows = cursor.fetchone()[0]
            facts.append({"table": table, "exists": table in existing, "rows": rows})
    return facts


def unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


# --- SQL ----------------------------------------------------------------------------


def plan_sql(loader: Any, migration_plan: list[tuple[Any, bool]]) -> str:
    """Each step's `sqlmigrate [--backwards]` output under a `-- app.name` header."""
    parts = []
    for migration, backwards in migration_plan:
        header = f"-- {migration.app_label}.{migration.name}" + (" (backwards)" if backwards else "")
        sql = step_sql(loader, migration, backwards)
        parts.append(header + "\n" + (sql + "\n" if sql else ""))
    return "".join(parts)


def step_sql(loader: Any, migration: Any, backwards: bool) -> str:
    """What `sqlmigrate [--backwards] app name` prints for one migration (less its newline).

    Same machinery as sqlmigrate: the graph's state before the migration, collected by
    the loader, wrapped in a transaction where the migration is atomic and DDL can roll
    back. Where sqlmigrate would crash (an irreversible reverse), say so instead, in
    words that do not change from run to run (plans are digested for approval).
    """
    blocked = irreversible_operations([(migration, backwards)])
    if blocked:
        return "\n".join(f"-- IRREVERSIBLE: {step}" for step in blocked)
    statements = loader.collect_sql([(migration, backwards)])
    if not statements:
        return ""
    connection = loader.connection
    body = "\n".join(statements)
    if migration.atomic and connection.features.can_rollback_ddl:
        body = f"{connection.ops.start_transaction_sql()}\n{body}\n{connection.ops.end_transaction_sql()}"
    return body


def refuse_conflicts(loader: Any) -> None:
    conflicts = loader.detect_conflicts()
    if conflicts:
        name_str = "; ".join(f"{', '.join(names)} in {app}" for app, names in conflicts.items())
        raise Refusal(
            "Conflicting migrations detected; multiple leaf nodes in the "
            f"migration graph: ({name_str}).\nTo fix them run "
            "'python manage.py makemigrations --merge'"
        )


def resolve_targets(
    loader: Any, app_label: str | None, migration_name: str | None
) -> list[Target]:
    """Turn `[app [migration]]` into executor targets exactly as migrate does."""
    from django.apps import apps
    from django.db.migrations.exceptions import AmbiguityError

    if app_label is None:
        leaves: list[Target] = loader.graph.leaf_nodes()
        return leaves
    try:
        apps.get_app_config(app_label)
    except LookupError as err:
        raise Refusal(str(err)) from None
    if app_label not in loader.migrated_apps:
        raise Refusal(f"App '{app_label}' does not have migrations.")
    if migration_name is None:
        return [key for key in loader.graph.leaf_nodes() if key[0] == app_label]
    if migration_name == "zero":
        return [(app_label, None)]
    try:
        migration = loader.get_migration_by_prefix(app_label, migration_name)
    except AmbiguityError:
        raise Refusal(
            f"More than one migration matches '{migration_name}' in app '{app_label}'. "
            "Please be more specific."
        ) from None
    except KeyError:
        raise Refusal(f"Cannot find a migration matching '{migration_name}' from app '{app_label}'.") from None
    target = (app_label, migration.name)
    # A partially applied squashed migration is not in the graph: Django targets
    # the last migration it replaces instead.
    if target not in loader.graph.nodes and target in loader.replacements:
        target = loader.replacements[target].replaces[-1]
    return [target]


def migrate(
    app_label: str | None, migration_name: str | None, fake: bool, emit: Emit, expected: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Run what `manage.py migrate [--fake] [app [migration]]` runs, emitting progress.

    The whole plan is checked first: Django raises IrreversibleError only when it
    reaches the irreversible step, after the earlier ones were already unapplied.
    Running Django's own migrate command (with our progress callback) rather than
    calling MigrationExecutor.migrate directly keeps everything else identical: system
    checks, pre_migrate/post_migrate signals (content types, permissions), the
    post-migrate state rendering, recording squashed migrations.
    """
    from django.core.management import CommandError, call_command

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


def refuse_irreversible(migration_plan: list[tuple[Any, bool]]) -> None:
    blocked = irreversible_operations(migration_plan)
    if blocked:
        raise Refusal(
            f"Cannot unapply irreversible migration operations: {'; '.join(blocked)}. Nothing was run: Django raises "
            "IrreversibleError mid-plan after earlier steps were already unapplied, so the whole "
            "plan is checked first."
        )


class Progress:
    """MigrationExecutor's progress callback, turned into JSON events as they happen."""

    def __init__(self, emit: Emit) -> None:
        self.emit = emit
        self.running: Key | None = None
        self.started = 0.0
        self.applied: list[str] = []
        self.unapplied: list[str] = []

    def __call__(self, action: str, migration: Any = None, fake: bool = False) -> None:
        if action not in ("apply_start", "apply_success", "unapply_start", "unapply_success"):
            return  # render_start/render_success: not a migration
        event = {"event": action, "app": migration.app_label, "name": migration.name, "fake": fake}
        if action.endswith("_start") and _stop_requested:
            # Called before the migration's transaction opens: nothing of it has happened.
            raise Stopped(migration.app_label, migration.name, self.applied + self.unapplied)
        if action.endswith("_start"):
            self.running, self.started = (migration.app_label, migration.name), time.monotonic()
        else:
            event["seconds"] = round(time.monotonic() - self.started, 3)
            done = self.applied if action == "apply_success" else self.unapplied
            done.append(f"{migration.app_label}.{migration.name}")
            self.running = None
        self.emit(event)


def streaming_migrate(progress: Progress) -> Any:
    """Django's migrate command reporting to `progress` (its base class needs Django set up)."""
    from django.core.management.commands.migrate import Command as Migrate

    class StreamingMigrate(Migrate):
        def migration_progress_callback(self, action: str, migration: Any = None, fake: bool = False) -> None:
            progress(action, migration, fake)

    return StreamingMigrate()


def connection_details() -> dict[str, str]:
    """The default database's coordinates, for the worker's backup tools.

    The password travels only over this stdout pipe to the worker, which hands it
    to pg_dump through the environment.
    """
    from django.db import DEFAULT_DB_ALIAS, connections

    connection = connections[DEFAULT_DB_ALIAS]
    settings = connection.settings_dict
    fields = {"name": "NAME", "host": "HOST", "port": "PORT", "user": "USER", "password": "PASSWORD"}
    return {"vendor": connection.vendor} | {key: str(settings.get(name) or "") for key, name in fields.items()}


def catalog() -> dict[str, Any]:
    """Every migration file on disk per migrated app, without a database."""
    from django.db.migrations.loader import MigrationLoader

    loader = MigrationLoader(None, ignore_no_migrations=True)
    names: dict[str, list[str]] = {label: [] for label in sorted(loader.migrated_apps)}
    for label, name in loader.disk_migrations:
        names[label].append(name)
    return {"apps": {label: sorted(found) for label, found in names.items()}}


# --- hygiene: the workflow's rules (never edit or delete an applied migration, one order) ---
#
# Facts only; whether a file changed since it was applied needs the fingerprints seen
# before, which the control plane keeps, so the worker compares them.


def check() -> dict[str, Any]:
    """`check`: like `plan`'s loader, but conflicts and an inconsistent history are reported."""
    from django.db import DEFAULT_DB_ALIAS, connections
    from django.db.migrations.loader import MigrationLoader

    return check_report(MigrationLoader(connections[DEFAULT_DB_ALIAS], ignore_no_migrations=True))


def check_report(loader: Any) -> dict[str, Any]:
    from django.db.migrations.recorder import MigrationRecorder

    recorded = MigrationRecorder(loader.connection).applied_migrations()
    conflicts = loader.detect_conflicts()
    return {
        "fingerprints": fingerprints(loader, recorded),
        "hygiene": {
            "missing_files": missing_files(loader, recorded),
            "conflicts": [
                {"app": app, "names": sorted(names), "folder": migrations_folder(app)}
                for app, names in sorted(conflicts.items())
            ],
            # makemigrations refuses to look for changes while leaves conflict; so do we.
            "missing_migrations": [] if conflicts else model_changes(),
            "prefix_clashes": prefix_clashes(loader),
            "inconsistent": inconsistent_history(loader, recorded),
        },
    }


def fingerprints(loader: Any, recorded: dict[Key, Any]) -> list[dict[str, Any]]:
    """Each applied migration with a file on disk: the file and its normalised sha256."""
    found = []
    for key, row in sorted(recorded.items()):
        migration = loader.disk_migrations.get(key)
        if migration is not None:
            path = migration_file(migration)
            found.append(
                {"app": key[0], "name": key[1], "file": relative(path), "sha256": file_sha256(path),
                 "applied_at": row.applied.isoformat() if row.applied else None}
            )
    return found


def file_sha256(path: str) -> str:
    """Line endings normalised to LF: a checkout with other line endings is not an edit."""
    with open(path, "rb") as source:
        content = source.read().replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    return hashlib.sha256(content).hexdigest()


def relative(path: str) -> str:
    return os.path.relpath(path, os.getcwd())


def migrations_folder(app_label: str) -> str:
    """Where an app's migration files live (or would), relative to the project."""
    import importlib

    from django.apps import apps
    from django.db.migrations.loader import MigrationLoader

    module_name, _ = MigrationLoader.migrations_module(app_label)
    try:
        folder = list(importlib.import_module(module_name).__path__)[0] if module_name is not None else None
    except (ImportError, AttributeError, IndexError, TypeError):
        folder = None
    return relative(folder or os.path.join(apps.get_app_config(app_label).path, "migrations"))


def missing_files(loader: Any, recorded: dict[Key, Any]) -> list[dict[str, Any]]:
    """Applied (recorded) migrations of installed apps whose file is gone.

    Migrations replaced by a squashed one on disk are not missing: deleting them once
    the squash is applied everywhere is Django's own squashing workflow.
    """
    from django.apps import apps

    installed = {config.label for config in apps.get_app_configs()}
    replaced = {key for squash in loader.replacements.values() for key in squash.replaces}
    return [
        {"app": app, "name": name, "file": os.path.join(migrations_folder(app), f"{name}.py"),
         "applied_at": row.applied.isoformat() if row.applied else None}
        for (app, name), row in sorted(recorded.items())
        if app in installed and (app, name) not in loader.disk_migrations and (app, name) not in replaced
    ]


def model_changes() -> list[dict[str, Any]]:
    """What `makemigrations --check --dry-run` detects, per app (same loader, same detector).

    The base questioner answers without asking or exiting (the non-interactive one
    calls sys.exit(3) on a NOT NULL field without a default).
    """
    from django.apps import apps
    from django.db.migrations.autodetector import MigrationAutodetector
    from django.db.migrations.loader import MigrationLoader
    from django.db.migrations.questioner import MigrationQuestioner
    from django.db.migrations.state import ProjectState

    loader = MigrationLoader(None, ignore_no_migrations=True)
    detector = MigrationAutodetector(
        loader.project_state(), ProjectState.from_apps(apps), MigrationQuestioner(dry_run=True)
    )
    changes = detector.changes(graph=loader.graph)
    return [
        {"app": app, "folder": migrations_folder(app),
         "operations": [operation.describe() for migration in found for operation in migration.operations]}
        for app, found in sorted(changes.items())
    ]


def prefix_clashes(loader: Any) -> list[dict[str, Any]]:
    """Migrations of one app sharing a number, a squashed one and those it replaces aside."""
    replaced = {key for squash in loader.replacements.values() for key in squash.replaces}
    groups: dict[tuple[str, int], list[str]] = {}
    for app, name in sorted(loader.disk_migrations):
        number = re.match(r"\d+", name)
        if number and (app, name) not in replaced:
            groups.setdefault((app, int(number.group())), []).append(name)
    return [
        {"app": app, "number": number, "names": names, "folder": migrations_folder(app)}
        for (app, number), names in sorted(groups.items())
        if len(names) > 1
    ]


def inconsistent_history(loader: Any, recorded: dict[Key, Any]) -> list[dict[str, Any]]:
    """Every applied migration recorded before its dependency: what Django's
    check_consistent_history raises on, all of them rather than the first."""
    found = []
    for key in sorted(recorded):
        if key not in loader.graph.nodes:
            continue
        for parent in sorted(loader.graph.node_map[key].parents):
            dependency = parent.key
            squash = loader.replacements.get(dependency)
            if dependency in recorded or (squash and all(m in recorded for m in squash.replaces)):
                continue
            found.append(
                {"app": key[0], "name": key[1], "dependency": {
                    "app": dependency[0], "name": dependency[1],
                    "file": os.path.join(migrations_folder(dependency[0]), f"{dependency[1]}.py")}}
            )
    return found


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="probe.py")
    commands = parser.add_subparsers(dest="command", required=True)
    show = commands.add_parser("showmigrations")
    show.add_argument("--fingerprints", action="store_true")
    show.add_argument("app_labels", nargs="*")
    for name in ("plan", "migrate"):
        planned = commands.add_parser(name)
        planned.add_argument("--fake", action="store_true")
        planned.add_argument("app_label", nargs="?")
        planned.add_argument("migration_name", nargs="?")
    # A JSON file of the approved code (code_under_approval's shape): run nothing else.
    commands.choices["migrate"].add_argument("--expect", metavar="FILE")
    commands.add_parser("connection")
    commands.add_parser("catalog")
    commands.add_parser("check")
    return parser.parse_args(argv)


def run(args: argparse.Namespace, emit: Emit) -> dict[str, Any]:
    if args.command == "migrate":
        expected = None
        if args.expect:
            with open(args.expect, encoding="utf-8") as approved:
                expected = json.load(approved)
        return migrate(args.app_label, args.migration_name, args.fake, emit, expected)
    if args.command == "connection":
        return connection_details()
    if args.command == "catalog":
        return catalog()
    return read(args) | {"catalog": catalog()["apps"]}


def read(args: argparse.Namespace) -> dict[str, Any]:
    """The reads, each also carrying the catalog: the bot learns of new migration files from
    any read, not only when a worker starts."""
    if args.command == "showmigrations":
        return show_migrations(args.app_labels, args.fingerprints)
    if args.command == "plan":
        return plan(args.app_label, args.migration_name, args.fake)
    return check()


def line_writer(stream: TextIO) -> Emit:
    """One JSON document per line, flushed at once so the worker sees it live."""

    def emit(document: dict[str, Any]) -> None:
        stream.write(json.dumps(document) + "\n")
        stream.flush()

    return emit


def die_with_worker() -> None:
    """If the worker that started us dies (SIGKILL, OOM), die too, as a killed container would,
    rather than go on migrating with nobody watching. Linux only; elsewhere a no-op."""
    parent = os.getppid()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if os.getppid() != parent:  # the worker died before the request took effect
            os._exit(1)


def main(argv: list[str]) -> int:
    die_with_worker()
    signal.signal(STOP_SIGNAL, lambda *_: _stop_requested.append(True))
    args = parse_args(argv)
    setup_django()
    emit = line_writer(sys.stdout)  # bound now: migrate redirects sys.stdout while it runs
    try:
        document, status = run(args, emit), 0
    except Refusal as refusal:
        document, status = {"refusal": str(refusal)}, REFUSAL_EXIT
    except MigrationFailed as failure:
        document, status = {"failed": failure.document}, FAILED_EXIT
    except Stopped as stop:
        document, status = {"stopped": stop.document}, STOPPED_EXIT
    emit(document)
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
