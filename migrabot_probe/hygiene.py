"""``check``: the workflow's rules (never edit or delete an applied migration, one order).

Facts only; whether a file changed since it was applied needs the fingerprints seen before,
which the control plane keeps, so the worker compares them. Conflicts and an inconsistent
history are reported here instead of refused: finding them is this command's job.
"""

from __future__ import annotations

import os
import re
from typing import Any

from migrabot_probe.files import migration_sha256, migrations_folder, shown_file, third_party
from migrabot_probe.graphs import GRAPHS

Key = tuple[str, str]


def check() -> dict[str, Any]:
    from django.db import DEFAULT_DB_ALIAS, connections

    return check_report(GRAPHS.applied(connections[DEFAULT_DB_ALIAS]))


def check_report(loader: Any) -> dict[str, Any]:
    """The hygiene facts about the loader's graph and the applied rows ``GRAPHS`` read with it."""
    recorded = GRAPHS.recorded
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
    """Each applied migration with a file on disk: the file and the sha256 of its loaded code."""
    found = []
    for key, applied in sorted(recorded.items()):
        migration = loader.disk_migrations.get(key)
        if migration is not None:
            found.append(
                {"app": key[0], "name": key[1], "file": shown_file(migration),
                 "sha256": migration_sha256(migration), "applied_at": applied.isoformat() if applied else None}
            )
    return found


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
         "applied_at": applied.isoformat() if applied else None}
        for (app, name), applied in sorted(recorded.items())
        if app in installed and (app, name) not in loader.disk_migrations and (app, name) not in replaced
    ]


def model_changes() -> list[dict[str, Any]]:
    """What `makemigrations --check --dry-run` detects, per app (same loader, same detector).

    It renders every model state, so a warm session keeps the answer until a migration file
    changes (the models themselves cannot change under a running process: a deploy that
    changes any imported module ends the session). The base questioner answers without asking
    or exiting (the non-interactive one calls sys.exit(3) on a NOT NULL field without a default).
    """
    if "model_changes" not in GRAPHS.memo:
        GRAPHS.memo["model_changes"] = _model_changes()
    changes: list[dict[str, Any]] = GRAPHS.memo["model_changes"]
    return changes


def _model_changes() -> list[dict[str, Any]]:
    from django.apps import apps
    from django.db.migrations.autodetector import MigrationAutodetector
    from django.db.migrations.questioner import MigrationQuestioner
    from django.db.migrations.state import ProjectState

    # Any loader of the current files: a graph with the database's applied migrations ends in the
    # same state as makemigrations' own (a squash and the migrations it replaces are equivalent).
    loader = GRAPHS.any_loader()
    detector = MigrationAutodetector(
        loader.project_state(), ProjectState.from_apps(apps), MigrationQuestioner(dry_run=True)
    )
    changes = detector.changes(graph=loader.graph)
    return [
        {"app": app, "folder": migrations_folder(app), "third_party": third_party(app),
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
        {"app": app, "number": number, "names": names, "folder": migrations_folder(app),
         "third_party": third_party(app)}
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
