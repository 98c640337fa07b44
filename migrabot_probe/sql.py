"""The SQL a plan runs: each step's ``sqlmigrate [--backwards]`` output."""

from __future__ import annotations

from typing import Any

from migrabot_probe.reversibility import irreversible_operations


def plan_sql(loader: Any, migration_plan: list[tuple[Any, bool]], sqls: list[str] | None = None) -> str:
    """Each step's `sqlmigrate [--backwards]` output under a `-- app.name` header (``sqls``: the
    steps' SQL, if already collected)."""
    parts = []
    for (migration, backwards), sql in zip(migration_plan, sqls or steps_sql(loader, migration_plan), strict=True):
        header = f"-- {migration.app_label}.{migration.name}" + (" (backwards)" if backwards else "")
        parts.append(header + "\n" + (sql + "\n" if sql else ""))
    return "".join(parts)


def steps_sql(loader: Any, migration_plan: list[tuple[Any, bool]]) -> list[str]:
    return [step_sql(loader, migration, backwards) for migration, backwards in migration_plan]


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
