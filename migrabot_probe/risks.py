"""What a step puts at risk beyond the tables it touches, named so an approver can weigh it.

Per operation, in the direction the plan runs it (``operation_risks``):

- ``drops_tables``: whole tables it drops (DeleteModel; CreateModel reversed; the auto-created
  many-to-many table of a field removed, or of a field added and reversed);
- ``drops_columns``: ``{"table", "column", "rows", "new"}`` for each column it drops (RemoveField;
  AddField reversed): ``rows`` is how many rows hold a non-null value in it, counted on the real
  database by the same ``plan`` call (``count_values``), null when it could not be counted; ``new``
  when an earlier operation of the plan creates the table or column (not counted: it holds only
  what the plan puts there);
- ``recreates``: ``{"table", "column", "fill"}`` for each column (or, column null, table) it
  re-creates without its old contents (RemoveField or DeleteModel reversed), and what every row
  holds then (``fill``: the field's database default, its default, ``''``, the time, NULL — or
  nothing, when the column is NOT NULL with no default and the re-add fails on a table with rows);
- ``runs``: the code it runs: ``{"python": "module.qualname", "doc": first docstring line}`` or
  ``{"sql": text}`` (a no-op runs nothing; an irreversible reverse is refused before it runs).

Per plan (``cascades``): the other apps a plan for one app moves with it, each with how many of
its migrations and the dependency that forces them, from the loader's graph.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from typing import Any

from migrabot_probe.reversibility import is_empty_sql
from migrabot_probe.tables import model_tables

SHOWN = 120  # a default's repr is cut to this many characters


class Risks:
    """What one operation drops, re-creates empty and runs, and (for the plan's walk) what it creates."""

    def __init__(self) -> None:
        self.drops_tables: list[str] = []
        self.drops_columns: list[dict[str, Any]] = []
        self.recreates: list[dict[str, Any]] = []
        self.runs: list[dict[str, Any]] = []
        self.creates: list[str | tuple[str, str]] = []  # tables, and (table, column)

    def document(self) -> dict[str, Any]:
        return {
            "drops_tables": self.drops_tables,
            "drops_columns": self.drops_columns,
            "recreates": self.recreates,
            "runs": self.runs,
        }


def operation_risks(app_label: str, operation: Any, before: Any, after: Any, backwards: bool) -> Risks:
    """The risks of one operation; ``before`` and ``after`` are the project states around it (forwards)."""
    risks = Risks()
    _collect(risks, app_label, operation, before, after, backwards)
    return risks


def mark_new(in_order: Iterable[Risks], created: set[Any]) -> None:
    """Walk operations in the order they run: a drop of what an earlier one created is ``new``."""
    for risks in in_order:
        for column in risks.drops_columns:
            column["new"] = column["table"] in created or (column["table"], column["column"]) in created
        created.update(risks.creates)


def _collect(risks: Risks, app_label: str, operation: Any, before: Any, after: Any, backwards: bool) -> None:
    from django.db.migrations import operations as ops

    if isinstance(operation, ops.SeparateDatabaseAndState):
        # As SeparateDatabaseAndState runs them: each database operation from the state the ones
        # before it made, in reverse order when unapplied.
        inner = []
        state = before
        for database_operation in operation.database_operations:
            following = state.clone()
            database_operation.state_forwards(app_label, following)
            inner.append((database_operation, state, following))
            state = following
        for database_operation, inner_before, inner_after in reversed(inner) if backwards else inner:
            _collect(risks, app_label, database_operation, inner_before, inner_after, backwards)
        return
    if isinstance(operation, (ops.RunPython, ops.RunSQL)):
        risks.runs += _code(operation, backwards)
        return
    whole = (ops.CreateModel, ops.DeleteModel)
    fields = (ops.AddField, ops.RemoveField)
    if not isinstance(operation, (*whole, *fields)):
        return
    # What the database has after the operation runs, and what it had before, in this direction.
    had, has = (after, before) if backwards else (before, after)
    adds = isinstance(operation, (ops.CreateModel, ops.AddField)) != backwards
    if isinstance(operation, whole):
        if adds:
            tables = model_tables(has, app_label, operation.name_lower, None)
            risks.creates += tables
            if isinstance(operation, ops.DeleteModel):  # reversed: the table is back, without its rows
                risks.recreates += [{"table": table, "column": None, "fill": None} for table in tables]
        else:
            risks.drops_tables += model_tables(had, app_label, operation.name_lower, None)
        return
    state = has if adds else had
    table, column, m2m = _field_storage(state, app_label, operation.model_name_lower, operation.name)
    if table is None:
        return
    if m2m is not None:
        if adds:
            risks.creates.append(m2m)
            if isinstance(operation, ops.RemoveField):
                risks.recreates.append({"table": m2m, "column": None, "fill": None})
        else:
            risks.drops_tables.append(m2m)
        return
    if column is None:
        return
    if not adds:
        risks.drops_columns.append({"table": table, "column": column, "rows": None, "new": False})
        return
    risks.creates.append((table, column))
    if isinstance(operation, ops.RemoveField):  # reversed: the column is back, without its values
        field = state.models[(app_label, operation.model_name_lower)].fields[operation.name]
        risks.recreates.append({"table": table, "column": column, "fill": fill(field)})


def _field_storage(state: Any, app_label: str, model_name: str, name: str) -> tuple[str | None, str | None, str | None]:
    """(the model's table, the field's column, its auto-created many-to-many table) in one state;
    the column is None for a field with no column of stored data (a generated or composite one)."""
    tables = model_tables(state, app_label, model_name, (name,))
    model = state.models.get((app_label, model_name))
    if not tables or model is None or name not in model.fields:
        return None, None, None
    field = model.fields[name]
    if field.many_to_many:
        auto = field.remote_field.through is None
        return tables[0], None, tables[1] if auto and len(tables) > 1 else None
    if getattr(field, "generated", False):  # GeneratedField: derived from other columns, nothing lost
        return tables[0], None, None
    bound = field.clone()
    bound.set_attributes_from_name(name)
    return tables[0], bound.column, None


def fill(field: Any) -> dict[str, Any]:
    """What every existing row holds in a column Django adds for ``field``: the value its schema
    editor uses (BaseDatabaseSchemaEditor._effective_default, after a database default)."""
    from django.db.models.fields import NOT_PROVIDED

    db_default = getattr(field, "db_default", NOT_PROVIDED)  # Django 5.0+
    if db_default is not NOT_PROVIDED:
        return {"kind": "db_default", "value": _shown(getattr(db_default, "value", db_default))}
    if field.has_default():
        default = field.default
        return {"kind": "default", "value": f"{callable_name(default)}()" if callable(default) else _shown(default)}
    if not field.null and field.blank and field.empty_strings_allowed:
        return {"kind": "empty", "value": "b''" if field.get_internal_type() == "BinaryField" else "''"}
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        return {"kind": "now", "value": None}
    return {"kind": "null" if field.null else "none", "value": None}


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= SHOWN else text[: SHOWN - 1] + "…"


def _code(operation: Any, backwards: bool) -> list[dict[str, Any]]:
    from django.db.migrations import operations as ops

    if isinstance(operation, ops.RunPython):
        code = operation.reverse_code if backwards else operation.code
        if code is None or code is ops.RunPython.noop:
            return []
        return [{"python": callable_name(code), "doc": first_doc_line(code)}]
    sql = operation.reverse_sql if backwards else operation.sql
    if sql is None or is_empty_sql(sql):
        return []
    return [{"sql": sql_text(sql)}]


def callable_name(code: Any) -> str:
    """``module.qualname`` of a function (of the function a functools.partial wraps)."""
    target = getattr(code, "func", code)
    name = getattr(target, "__qualname__", None) or type(target).__qualname__
    module = getattr(target, "__module__", None)
    return f"{module}.{name}" if module else str(name)


def first_doc_line(code: Any) -> str | None:
    target = getattr(code, "func", code)
    doc = inspect.getdoc(target) if inspect.isroutine(target) else None
    lines = [line.strip() for line in (doc or "").splitlines() if line.strip()]
    return lines[0] if lines else None


def sql_text(sql: Any) -> str:
    """RunSQL's sql or reverse_sql as one text: a string, or statements (a string, or (sql, params))."""
    if isinstance(sql, str):
        return sql.strip()
    statements = [statement if isinstance(statement, str) else statement[0] for statement in sql]
    return "\n".join(str(statement).strip() for statement in statements if str(statement).strip())


# --- the values at stake, counted on the real database -----------------------------------------------


def count_values(connection: Any, steps: list[dict[str, Any]]) -> None:
    """Fill each dropped column's ``rows``: how many rows hold a non-null value in it now. One query a
    column; a column the plan creates first is not counted, and a count that fails leaves null."""
    from django.db import DatabaseError, transaction

    counted: dict[tuple[str, str], int | None] = {}
    tables: set[str] | None = None
    columns: dict[str, set[str]] = {}  # a table's columns now: SQLite reads an unknown "column" as a string

    def count(table: str, column: str) -> int | None:
        nonlocal tables
        quote = connection.ops.quote_name
        try:
            # Its own transaction (or savepoint): a failed count leaves the connection usable.
            with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
                if tables is None:
                    tables = set(connection.introspection.table_names(cursor))
                if table in tables and table not in columns:
                    columns[table] = {c.name for c in connection.introspection.get_table_description(cursor, table)}
                if column not in columns.get(table, ()):
                    return None
                cursor.execute(f"SELECT COUNT(*) FROM {quote(table)} WHERE {quote(column)} IS NOT NULL")
                return int(cursor.fetchone()[0])
        except DatabaseError:
            return None

    for step in steps:
        for operation in step["operations"]:
            for column in operation.get("drops_columns", []):
                if column["new"]:
                    continue
                key = (column["table"], column["column"])
                if key not in counted:
                    counted[key] = count(*key)
                column["rows"] = counted[key]


# --- the other apps a plan moves ------------------------------------------------------------------------


def cascades(loader: Any, migration_plan: list[tuple[Any, bool]], app_label: str | None) -> list[dict[str, Any]]:
    """For a plan of ``app_label``, each other app it moves: how many of its migrations, and why.

    Unapplying: the first migration of that app to go (its earliest) whose dependencies lead, through
    migrations of this plan, to an unapplied one of ``app_label``. Applying: the first migration of
    ``app_label`` whose dependencies lead to one of that app's. ``through``: the migrations between.
    """
    if app_label is None:
        return []
    keys = [(migration.app_label, migration.name) for migration, _ in migration_plan]
    directions = {key: backwards for key, (_, backwards) in zip(keys, migration_plan, strict=True)}
    planned = set(keys)
    found = []
    for app in dict.fromkeys(key[0] for key in keys if key[0] != app_label):
        own = [key for key in keys if key[0] == app]
        backwards = directions[own[0]]
        if backwards:  # the plan unapplies latest first: its earliest migration goes last
            starts, goal = list(reversed(own)), app_label
        else:
            starts, goal = [key for key in keys if key[0] == app_label and not directions[key]], app
        path = next(filter(None, (_path(loader.graph, start, goal, planned) for start in starts)), None)
        found.append(
            {
                "app": app,
                "migrations": len(own),
                "backwards": backwards,
                "migration": _name(path[0]) if path else None,
                "depends_on": _name(path[-1]) if path else None,
                "through": [_name(key) for key in path[1:-1]] if path else [],
            }
        )
    return found


def _path(graph: Any, start: tuple[str, str], goal_app: str, planned: set[tuple[str, str]]) -> list[Any] | None:
    """The shortest dependency chain from ``start`` to a migration of ``goal_app``, through the plan's."""
    came_from: dict[tuple[str, str], tuple[str, str] | None] = {start: None}
    queue = [start]
    for key in queue:
        for parent in sorted(node.key for node in graph.node_map[key].parents):
            if parent in came_from or parent not in planned:
                continue
            came_from[parent] = key
            if parent[0] == goal_app:
                path = [parent]
                while came_from[path[-1]] is not None:
                    path.append(came_from[path[-1]])
                return list(reversed(path))
            queue.append(parent)
    return None


def _name(key: tuple[str, str]) -> str:
    return f"{key[0]}.{key[1]}"
