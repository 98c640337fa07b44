"""``plan``: what ``migrate --plan [app [migration]]`` would run, as data an approver can read.

It mirrors Django's migrate command step by step (same loader, same target resolution, same
error wording), and adds per operation whether it destroys data, whether its reverse is a
no-op and which tables it touches, and what it drops (columns with the rows holding a value),
re-creates empty and runs (``risks``); the other apps the plan cascades into and why
(``cascades``); the touched tables' current state; the SQL; on PostgreSQL,
per step, the locks its SQL takes and on which tables (``locks``); the hygiene facts. The
approval binds to the files' hashes and the SQL (``code_under_approval``).
"""

from __future__ import annotations

import hashlib
from typing import Any

from migrabot_probe.errors import Refusal
from migrabot_probe.files import migration_sha256, shown_file
from migrabot_probe.graphs import GRAPHS
from migrabot_probe.hygiene import check_report, inconsistent_history
from migrabot_probe.locks import plan_locks
from migrabot_probe.reversibility import blocks_unapply, destroys_data, noop_database_reverse
from migrabot_probe.risks import cascades, count_values, mark_new, operation_risks
from migrabot_probe.sql import plan_sql, steps_sql
from migrabot_probe.tables import operation_states, table_facts, touched_tables, unique

Target = tuple[str, "str | None"]


def plan(app_label: str | None, migration_name: str | None, fake: bool = False) -> dict[str, Any]:
    """`migrate --plan` as data. `fake` computes the same plan (faking runs nothing, so there is
    nothing else to compute); it is echoed so a fake plan's digest differs from a real one's.
    For a fake, `tables[].exists` tells an approver whether the schema already matches: faking
    marketplace 0002_order forwards is right only if marketplace_order already exists."""
    executor, migration_plan = load_plan(app_label, migration_name)
    created: set[Any] = set()  # what the plan's steps create, as they run: its drops of those are not counted
    steps = [describe_step(executor.loader, migration, backwards, created) for migration, backwards in migration_plan]
    count_values(executor.connection, steps)
    touched = unique(table for step in steps for op in step["operations"] for table in op["tables"])
    sqls = steps_sql(executor.loader, migration_plan)
    if executor.connection.vendor == "postgresql":
        # What each step locks, from its SQL and the catalog (PostgreSQL's locks: other backends differ).
        for step, locks in zip(steps, plan_locks(executor.connection, sqls), strict=True):
            step["locks"] = locks
    return {
        "steps": steps,
        "tables": table_facts(executor.connection, touched),
        "sql": plan_sql(executor.loader, migration_plan, sqls),
        "fake": fake,
        "cascades": cascades(executor.loader, migration_plan, app_label),
    } | check_report(executor.loader)


def load_plan(app_label: str | None, migration_name: str | None) -> tuple[Any, list[tuple[Any, bool]]]:
    """The executor and the plan `migrate [app [migration]]` would run, after its checks."""
    from django.db import DEFAULT_DB_ALIAS, connections

    connection = connections[DEFAULT_DB_ALIAS]
    connection.prepare_database()
    executor = GRAPHS.executor(connection)
    # Django's check_consistent_history, from the rows already read (it would read them again).
    for found in inconsistent_history(executor.loader, GRAPHS.recorded)[:1]:
        dependency = found["dependency"]
        raise Refusal(
            f"Migration {found['app']}.{found['name']} is applied before its dependency "
            f"{dependency['app']}.{dependency['name']} on database '{connection.alias}'."
        )
    refuse_conflicts(executor.loader)
    targets = resolve_targets(executor.loader, app_label, migration_name)
    return executor, executor.migration_plan(targets)


def describe_step(loader: Any, migration: Any, backwards: bool, created: set[Any] | None = None) -> dict[str, Any]:
    """One step of a plan; ``created`` collects what the plan's steps so far create (risks.mark_new)."""
    from django.core.management.commands.migrate import Command as Migrate

    operations = []
    risks = []
    for operation, before, after in operation_states(loader, migration):
        tables = touched_tables(migration.app_label, operation, before, after)
        risks.append(operation_risks(migration.app_label, operation, before, after, backwards))
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
    # Unapplying runs a migration's operations last first.
    mark_new(reversed(risks) if backwards else risks, set() if created is None else created)
    for described, risk in zip(operations, risks, strict=True):
        described |= risk.document()
    return {
        "app": migration.app_label,
        "name": migration.name,
        "backwards": backwards,
        "operations": operations,
        # What an approval binds to: the code that will run, not Django's 40-character summary.
        "file": shown_file(migration),
        "sha256": migration_sha256(migration),
    }


def code_under_approval(
    loader: Any, migration_plan: list[tuple[Any, bool]], sqls: list[str] | None = None
) -> dict[str, Any]:
    """The files and SQL a plan runs, in the shape the worker's expectation has (plans.expectation)."""
    return {
        "steps": [
            [migration.app_label, migration.name, backwards, shown_file(migration),
             migration_sha256(migration)]
            for migration, backwards in migration_plan
        ],
        "sql_sha256": hashlib.sha256(plan_sql(loader, migration_plan, sqls).encode()).hexdigest(),
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


def refuse_conflicts(loader: Any) -> None:
    conflicts = loader.detect_conflicts()
    if conflicts:
        name_str = "; ".join(f"{', '.join(names)} in {app}" for app, names in conflicts.items())
        raise Refusal(
            "Conflicting migrations detected; multiple leaf nodes in the "
            f"migration graph: ({name_str}).\nTo fix them run "
            "'python manage.py makemigrations --merge'"
        )


def resolve_targets(loader: Any, app_label: str | None, migration_name: str | None) -> list[Target]:
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
