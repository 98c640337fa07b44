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


def migration_sha256(migration: Any) -> str:
    """The sha256 of the source the migration's loaded code was compiled from (the file's own,
    for a module Python loaded some other way, such as from a ``.pyc`` alone)."""
    return LOADED.get(migration.__module__) or file_sha256(migration_file(migration))


@cache
def relative(path: str) -> str:
    """Relative to the project folder (a process's cwd never changes here)."""
    return os.path.relpath(path, os.getcwd())


def migrations_folder(app_label: str) -> str:
    """Where an app's migration files live (or would), relative to the project."""
    from django.apps import apps
    from django.db.migrations.loader import MigrationLoader

    module_name, _ = MigrationLoader.migrations_module(app_label)
    try:
        folder = list(importlib.import_module(module_name).__path__)[0] if module_name is not None else None
    except (ImportError, AttributeError, IndexError, TypeError):
        folder = None
    return relative(folder or os.path.join(apps.get_app_config(app_label).path, "migrations"))
