"""Target probe: report a Django project's migration state as one JSON document.

Usage (cwd = the target project's folder with manage.py, DJANGO_SETTINGS_MODULE set):

    <target python> probe.py showmigrations [app ...]
    <target python> probe.py plan [app [migration]]
    <target python> probe.py catalog

It runs under the TARGET project's own interpreter, which has the target's Django
and settings but not migrabot, so it is standalone: stdlib + Django only. The
logic mirrors Django's `showmigrations --list` and `migrate --plan` step by step
(same loader, same target resolution, same error wording) so that what migrabot
shows is what `manage.py` would print for the same project and database.

A refusal (bad app label or migration name, conflicting leaves) prints
{"refusal": "<Django's CommandError text>"} and exits with REFUSAL_EXIT; anything
else unexpected raises, leaving a traceback on stderr and a nonzero exit.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

REFUSAL_EXIT = 3

Key = tuple[str, str]
Target = tuple[str, "str | None"]


class Refusal(Exception):
    """Input Django itself would reject with a CommandError (or a usage message)."""


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


def show_migrations(app_labels: list[str]) -> dict[str, Any]:
    """Mirror `showmigrations --list` (Command.show_list) as data."""
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
    return {
        "apps": [
            {"app": label, "migrations": app_migrations(loader, recorded, label)}
            for label in app_labels
        ]
    }


def app_migrations(loader: Any, recorded: dict, app_label: str) -> list[dict[str, Any]]:
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


def plan(app_label: str | None, migration_name: str | None) -> dict[str, Any]:
    """Mirror `migrate --plan [app [migration]]` (Command.handle) as data."""
    from django.core.management.commands.migrate import Command as Migrate
    from django.db import DEFAULT_DB_ALIAS, connections
    from django.db.migrations.executor import MigrationExecutor

    connection = connections[DEFAULT_DB_ALIAS]
    connection.prepare_database()
    executor = MigrationExecutor(connection)
    executor.loader.check_consistent_history(connection)
    refuse_conflicts(executor.loader)
    targets = resolve_targets(executor.loader, app_label, migration_name)
    steps = []
    for migration, backwards in executor.migration_plan(targets):
        operations = []
        for operation in migration.operations:
            description, is_error = Migrate.describe_operation(operation, backwards)
            operations.append(
                {
                    "type": type(operation).__name__,
                    "description": description,
                    "irreversible": is_error,
                }
            )
        steps.append(
            {
                "app": migration.app_label,
                "name": migration.name,
                "backwards": backwards,
                "operations": operations,
            }
        )
    return {"steps": steps}


def refuse_conflicts(loader: Any) -> None:
    conflicts = loader.detect_conflicts()
    if conflicts:
        name_str = "; ".join(
            "%s in %s" % (", ".join(names), app) for app, names in conflicts.items()
        )
        raise Refusal(
            "Conflicting migrations detected; multiple leaf nodes in the "
            "migration graph: (%s).\nTo fix them run "
            "'python manage.py makemigrations --merge'" % name_str
        )


def resolve_targets(
    loader: Any, app_label: str | None, migration_name: str | None
) -> list[Target]:
    """Turn `[app [migration]]` into executor targets exactly as migrate does."""
    from django.apps import apps
    from django.db.migrations.exceptions import AmbiguityError

    if app_label is None:
        return loader.graph.leaf_nodes()
    try:
        apps.get_app_config(app_label)
    except LookupError as err:
        raise Refusal(str(err))
    if app_label not in loader.migrated_apps:
        raise Refusal("App '%s' does not have migrations." % app_label)
    if migration_name is None:
        return [key for key in loader.graph.leaf_nodes() if key[0] == app_label]
    if migration_name == "zero":
        return [(app_label, None)]
    try:
        migration = loader.get_migration_by_prefix(app_label, migration_name)
    except AmbiguityError:
        raise Refusal(
            "More than one migration matches '%s' in app '%s'. "
            "Please be more specific." % (migration_name, app_label)
        )
    except KeyError:
        raise Refusal(
            "Cannot find a migration matching '%s' from app '%s'."
            % (migration_name, app_label)
        )
    target = (app_label, migration.name)
    # A partially applied squashed migration is not in the graph: Django targets
    # the last migration it replaces instead.
    if target not in loader.graph.nodes and target in loader.replacements:
        target = loader.replacements[target].replaces[-1]
    return [target]


def catalog() -> dict[str, Any]:
    """Every migration file on disk per migrated app, without a database."""
    from django.db.migrations.loader import MigrationLoader

    loader = MigrationLoader(None, ignore_no_migrations=True)
    names: dict[str, list[str]] = {label: [] for label in sorted(loader.migrated_apps)}
    for label, name in loader.disk_migrations:
        names[label].append(name)
    return {"apps": {label: sorted(found) for label, found in names.items()}}


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="probe.py")
    commands = parser.add_subparsers(dest="command", required=True)
    show = commands.add_parser("showmigrations")
    show.add_argument("app_labels", nargs="*")
    planned = commands.add_parser("plan")
    planned.add_argument("app_label", nargs="?")
    planned.add_argument("migration_name", nargs="?")
    commands.add_parser("catalog")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> dict[str, Any]:
    if args.command == "showmigrations":
        return show_migrations(args.app_labels)
    if args.command == "plan":
        return plan(args.app_label, args.migration_name)
    return catalog()


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    setup_django()
    try:
        document = run(args)
    except Refusal as refusal:
        document, status = {"refusal": str(refusal)}, REFUSAL_EXIT
    else:
        status = 0
    sys.stdout.write(json.dumps(document) + "\n")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
