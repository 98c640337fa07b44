"""The SQL a plan runs: each step's ``sqlmigrate [--backwards]`` output."""

from __future__ import annotations

from typing import Any

from migrabot_probe.graphs import GRAPHS
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
    """Each step's SQL, kept for as long as ``loader`` is the process's: the same files and applied
    migrations (``GRAPHS`` builds another when either changes), so the same graph the SQL comes
    from. Rendering the project state for it is most of a plan's time: a warm session's re-plan
    before a run, and a run process told to go after it prepared, do not compute it again."""
    known: dict[tuple[str, str, bool], str]
    cached_for, known = GRAPHS.memo.get("sql", (None, {}))
    if cached_for is not loader:
        known = {}
        GRAPHS.memo["sql"] = (loader, known)
    for migration, backwards in migration_plan:
        key = (migration.app_label, migration.name, backwards)
        if key not in known:
            known[key] = step_sql(loader, migration, backwards)
    return [known[(migration.app_label, migration.name, backwards)] for migration, backwards in migration_plan]


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
