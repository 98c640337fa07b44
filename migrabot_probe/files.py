"""Where a migration's code lives and which code that is (the hash it was compiled from)."""

from __future__ import annotations

import importlib
import os
import sys
from functools import cache
from typing import Any

from migrabot_probe.loading import LOADED, file_sha256


def migration_file(migration: Any) -> str:
    return sys.modules[migration.__module__].__file__ or ""


def shown_file(migration: Any) -> str:
    """The migration's file as people are shown it: relative to the project, or within its
    package for a third-party app (see ``migrations_folder``)."""
    path = migration_file(migration)
    if third_party(migration.app_label):
        return f"{migrations_folder(migration.app_label)}/{os.path.basename(path)}"
    return relative(path)


def migration_sha256(migration: Any) -> str:
    """The sha256 of the source the migration's loaded code was compiled from (the file's own,
    for a module Python loaded some other way, such as from a ``.pyc`` alone)."""
    return LOADED.get(migration.__module__) or file_sha256(migration_file(migration))


@cache
def relative(path: str) -> str:
    """Relative to the project folder (a process's cwd never changes here)."""
    return os.path.relpath(path, os.getcwd())


@cache
def third_party(app_label: str) -> bool:
    """Whether the app lives outside the project folder (site-packages, another checkout): its
    migrations are its authors', not the team's to renumber or regenerate."""
    from django.apps import apps

    project = os.path.realpath(os.getcwd())
    path = os.path.realpath(apps.get_app_config(app_label).path)
    return os.path.commonpath([project, path]) != project


@cache
def migrations_folder(app_label: str) -> str:
    """Where an app's migration files live (or would): relative to the project for the project's
    own apps, as the package's own path (``vendorcms/migrations``) for a third-party one — never
    a path that climbs out of the project."""
    from django.apps import apps
    from django.db.migrations.loader import MigrationLoader

    module_name, _ = MigrationLoader.migrations_module(app_label)
    if third_party(app_label):
        return (module_name or f"{apps.get_app_config(app_label).name}.migrations").replace(".", "/")
    try:
        folder = list(importlib.import_module(module_name).__path__)[0] if module_name is not None else None
    except (ImportError, AttributeError, IndexError, TypeError):
        folder = None
    return relative(folder or os.path.join(apps.get_app_config(app_label).path, "migrations"))
