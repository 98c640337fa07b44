"""Which tables an operation touches, and what they hold now.

Resolved from the migration's project states (the graph's state before the migration, then
operation by operation, as Migration.apply walks them), so names are right even for tables that
no longer exist or were renamed. The states are never rendered into model classes: rendering
costs a full app registry per step, while the naming rules below are Django's own
(Options.contribute_to_class, ManyToManyField._get_m2m_db_table).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

# Whole model (its table and its auto-created many-to-many tables), or named fields
# (the model's table and those fields' many-to-many tables).
Touch = tuple[str, "tuple[str, ...] | None"]


def operation_tables(loader: Any, migration: Any) -> list[list[str]]:
    """For each operation of the migration, the tables it touches (in either direction)."""
    return [
        touched_tables(migration.app_label, operation, before, after)
        for operation, before, after in operation_states(loader, migration)
    ]


def operation_states(loader: Any, migration: Any) -> Iterator[tuple[Any, Any, Any]]:
    """Each operation of the migration with the project state before and after it, as Migration.apply
    walks them. ``after`` is the walk's own state: read it before asking for the next operation."""
    state = loader.project_state((migration.app_label, migration.name), at_end=False)
    for operation in migration.operations:
        before = state.clone()
        operation.state_forwards(migration.app_label, state)
        yield operation, before, state


def touched_tables(app_label: str, operation: Any, before: Any, after: Any) -> list[str]:
    """The tables one operation touches, named in the states before and after it."""
    touches = touched_models(operation)
    return unique(
        table
        for snapshot in (before, after)
        for model_name, fields in touches
        for table in model_tables(snapshot, app_label, model_name, fields)
    )


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
