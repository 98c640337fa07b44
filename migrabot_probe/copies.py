"""A rehearsal's ``migrate`` runs against a throwaway copy: the real database is never opened.

The worker writes the copy's coordinates (Django's NAME, and HOST/PORT/USER/PASSWORD where the copy
lives on another server) to a private file; ``point_at_copy`` applies them to the settings
*before* ``django.setup()``, so no app's ``ready()`` and no connection can reach the real database,
then checks that Django's connection now names the copy. Every alias of the real database is
redirected (a replica alias naming the same database, say); aliases of other databases are not.
"""

from __future__ import annotations

import json
from typing import Any

from migrabot_probe.errors import Refusal

_SAME = ("ENGINE", "NAME", "HOST", "PORT")


def point_at_copy(path: str) -> dict[str, Any]:
    """Redirect the real database's aliases to the copy described in ``path``; Django is not set up yet."""
    with open(path, encoding="utf-8") as file:
        copy: dict[str, Any] = json.load(file)
    from django.conf import settings

    databases: dict[str, Any] = settings.DATABASES  # imports the settings module, nothing else of the project
    real = _identity(databases["default"])
    if _identity(databases["default"] | copy) == real:
        raise Refusal("the rehearsal's copy is the real database: refusing to rehearse on it")
    for entry in databases.values():
        if _identity(entry) == real:
            entry.update(copy)
    return copy


def check_pointed(copy: dict[str, Any]) -> None:
    """After set-up: Django's default connection must name the copy, or nothing runs."""
    from django.db import connections

    used = connections["default"].settings_dict
    if any(str(used.get(key) or "") != str(value or "") for key, value in copy.items()):
        raise Refusal("the rehearsal's connection does not name the copy: refusing to rehearse")


def _identity(entry: dict[str, Any]) -> tuple[str, ...]:
    return tuple(str(entry.get(key) or "") for key in _SAME)
