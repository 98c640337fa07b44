"""The catalogs the slash command resolves names against, cached in the process that serves Slack.

Reading one from the control plane was a third of a command's time before its ack (an ORM query
and a JSON document of every migration's name), for data that changes only when a worker reports
a deploy. A cached catalog is used for ``MAX_AGE_SECONDS`` at most, for what it can only confirm:
an environment's apps (``commands._resolve``); anything it would refuse is asked of the control
plane again before the refusal, so a migration deployed a moment ago is never refused for a stale
cache, and a migration named is always resolved against the control plane's catalog now (a name
may have become ambiguous since). An app removed since is still met by the worker, which answers
from the code it has.
"""

from __future__ import annotations

import threading
import time

from controlplane import selectors

MAX_AGE_SECONDS = 1.0

Apps = dict[str, list[str]]


class Catalogs:
    def __init__(self, max_age_seconds: float = MAX_AGE_SECONDS) -> None:
        self._max_age = max_age_seconds
        self._cached: dict[str, tuple[Apps, float]] = {}  # environment: (apps, when read, monotonic)
        self._lock = threading.Lock()

    def cached(self, environment: str) -> Apps | None:
        """The environment's catalog, as read at most ``max_age_seconds`` ago."""
        with self._lock:
            known = self._cached.get(environment)
        if known is not None and time.monotonic() - known[1] <= self._max_age:
            return known[0]
        return self.fresh(environment)

    def fresh(self, environment: str) -> Apps | None:
        """The environment's catalog as the control plane has it now (and cached from now on)."""
        read_at = time.monotonic()
        apps = selectors.catalog_get(environment=environment)
        with self._lock:
            known = self._cached.get(environment)
            if known is not None and known[1] > read_at:
                pass  # a read begun after this one was stored first: it stays
            elif apps is None:
                self._cached.pop(environment, None)
            else:
                self._cached[environment] = (apps, read_at)
        return apps
