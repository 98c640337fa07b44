"""The migration loaders a call needs, built once and kept by a warm session between calls.

A one-shot call builds them once and exits. A warm session keeps them while nothing changed:
before each call it hashes every migration file (``loading.folder_signature``) and reads the
applied migrations (one query). New file contents drop the imported modules of the files that
changed and every loader built from them; a new set of applied rows rebuilds the graph (Django's graph depends on
it: squashed migrations replace their parts only where all or none are applied). What is
derived from code alone (the model-change check) is kept per signature in ``memo``.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

from migrabot_probe import loading


class Graphs:
    def __init__(self) -> None:
        self.signature: dict[str, str] | None = None
        self.memo: dict[str, Any] = {}
        self._packages: list[str] | None = None
        self._folders: list[str] = []
        self._disk: Any = None
        self._applied: Any = None
        self._applied_rows: Any = None
        self.recorded: dict[tuple[str, str], Any] = {}  # applied (app, name) -> when, as ``applied`` read it

    def packages(self) -> list[str]:
        """The migration packages of the installed apps (settings do not change in a process)."""
        if self._packages is None:
            from django.apps import apps
            from django.db.migrations.loader import MigrationLoader

            modules = {config: MigrationLoader.migrations_module(config.label)[0] for config in apps.get_app_configs()}
            self._packages = [name for name in modules.values() if name]
            loading.install(self._packages)
            # An app without migrations yet is watched where its first one would appear.
            self._folders = [
                folder
                for config, name in modules.items()
                if name
                for folder in _package_folders(name) or [os.path.join(config.path, "migrations")]
            ]
        return self._packages

    def refresh(self) -> None:
        """Notice changed migration files: the next loaders import them afresh."""
        packages = self.packages()
        signature = loading.folder_signature(self._folders)
        if signature == self.signature:
            return
        if self.signature is not None:
            loading.forget(packages, signature)
        self.signature, self.memo = signature, {}
        self._disk = self._applied = self._applied_rows = None

    def disk(self) -> Any:
        """The loader without a database: the migration files only."""
        from django.db.migrations.loader import MigrationLoader

        self.packages()
        if self._disk is None:
            self._disk = MigrationLoader(None, ignore_no_migrations=True)
        return self._disk

    def any_loader(self) -> Any:
        """A loader of the current files, for what is on disk only (one is built already)."""
        return self._applied if self._applied is not None else self.disk()

    def applied(self, connection: Any) -> Any:
        """The loader with the database's applied migrations, read now."""
        from django.db.migrations.loader import MigrationLoader
        from django.db.migrations.recorder import MigrationRecorder

        self.packages()
        recorder = MigrationRecorder(connection)
        # Plain values, not model instances: on a 5,000-migration history this is the difference
        # between a few milliseconds and a tenth of a second, on every call.
        rows = sorted(recorder.migration_qs.values_list("app", "name", "pk", "applied")) if recorder.has_table() else []
        self.recorded = {(app, name): applied for app, name, _, applied in rows}
        if self._applied is None or self._applied.connection is not connection:
            self._applied = MigrationLoader(connection, ignore_no_migrations=True)
        elif rows != self._applied_rows:
            self._applied = _regraphed(self._applied, connection)
        self._applied_rows = rows
        return self._applied

    def executor(self, connection: Any) -> Any:
        """Django's MigrationExecutor over the loader above (its constructor would build another)."""
        from django.db.migrations.executor import MigrationExecutor
        from django.db.migrations.recorder import MigrationRecorder

        executor = MigrationExecutor.__new__(MigrationExecutor)
        executor.connection = connection
        executor.loader = self.applied(connection)
        executor.recorder = MigrationRecorder(connection)
        executor.progress_callback = None
        return executor


def _regraphed(loader: Any, connection: Any) -> Any:
    """A loader of the same files as ``loader`` over the applied migrations read now: the graph
    rebuilt (it depends on them), the files not loaded again. Django's ``load_disk`` re-imports
    every migration module (``reload``), most of a rebuild's time; the files are the same ones
    here, since ``refresh`` drops every loader when one of them changes."""
    from django.db.migrations.loader import MigrationLoader

    class SameFiles(MigrationLoader):
        def load_disk(self) -> None:
            self.disk_migrations = loader.disk_migrations
            self.migrated_apps, self.unmigrated_apps = set(loader.migrated_apps), set(loader.unmigrated_apps)

    return SameFiles(connection, ignore_no_migrations=True)


def _package_folders(name: str) -> list[str]:
    try:
        return list(importlib.import_module(name).__path__)
    except (ImportError, AttributeError, TypeError):
        return []


#: The process's loaders: one call's in a one-shot probe, every call's in a warm session.
GRAPHS = Graphs()
