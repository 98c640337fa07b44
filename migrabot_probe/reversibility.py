"""What an operation does in the direction a plan runs it: irreversible, destructive, a no-op."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from migrabot_probe.errors import Refusal


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


def refuse_irreversible(migration_plan: list[tuple[Any, bool]]) -> None:
    blocked = irreversible_operations(migration_plan)
    if blocked:
        raise Refusal(
            f"Cannot unapply irreversible migration operations: {'; '.join(blocked)}. Nothing was run: Django raises "
            "IrreversibleError mid-plan after earlier steps were already unapplied, so the whole "
            "plan is checked first."
        )


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
