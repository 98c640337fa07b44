"""``showmigrations``, ``catalog`` and ``connection``: what is applied, what is on disk, where."""

from __future__ import annotations

from typing import Any

from migrabot_probe.errors import Refusal
from migrabot_probe.graphs import GRAPHS
from migrabot_probe.hygiene import fingerprints

Key = tuple[str, str]


def show_migrations(app_labels: list[str], with_fingerprints: bool = False) -> dict[str, Any]:
    """Mirror `showmigrations --list` (Command.show_list) as data; with every applied
    migration's fingerprint, of all apps, if asked (the worker keeps a ledger of them)."""
    from django.db import DEFAULT_DB_ALIAS, connections

    loader = GRAPHS.applied(connections[DEFAULT_DB_ALIAS])
    recorded = GRAPHS.recorded
    if app_labels:
        validate_app_labels(app_labels)
    else:
        app_labels = sorted(loader.migrated_apps)
    leaves = leaf_nodes(loader.graph)
    shown = {
        "apps": [
            {"app": label, "migrations": app_migrations(loader, recorded, label, leaves.get(label, []))}
            for label in app_labels
        ]
    }
    return shown | ({"fingerprints": fingerprints(loader, recorded)} if with_fingerprints else {})


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


def leaf_nodes(graph: Any) -> dict[str, list[Key]]:
    """``graph.leaf_nodes(app)`` of every app at once, in the same order: Django's walks the
    whole graph once per app (half a million steps for 100 apps of 50 migrations)."""
    leaves: dict[str, list[Key]] = {}
    for node in sorted(graph.nodes):
        if all(child[0] != node[0] for child in graph.node_map[node].children):
            leaves.setdefault(node[0], []).append(node)
    return leaves


def app_migrations(loader: Any, recorded: dict[Key, Any], app_label: str, leaves: list[Key]) -> list[dict[str, Any]]:
    """One app's migrations from roots to leaves, each with its applied state."""
    graph = loader.graph
    rows: list[dict[str, Any]] = []
    shown: set[Key] = set()
    for leaf in leaves:
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


def catalog() -> dict[str, Any]:
    """Every migration file on disk per migrated app, without a database."""
    loader = GRAPHS.any_loader()
    names: dict[str, list[str]] = {label: [] for label in sorted(loader.migrated_apps)}
    for label, name in loader.disk_migrations:
        names[label].append(name)
    return {"apps": {label: sorted(found) for label, found in names.items()}}


def connection_details() -> dict[str, str]:
    """The default database's coordinates, for the worker's backup tools.

    The password travels only over the probe's stdout pipe to the worker, which hands it
    to pg_dump through the environment.
    """
    from django.db import DEFAULT_DB_ALIAS, connections

    connection = connections[DEFAULT_DB_ALIAS]
    settings = connection.settings_dict
    fields = {"name": "NAME", "host": "HOST", "port": "PORT", "user": "USER", "password": "PASSWORD"}
    return {"vendor": connection.vendor} | {key: str(settings.get(name) or "") for key, name in fields.items()}
