"""Slack having a bad day, on demand: outages and injected errors, for tests of the bot's resilience."""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Iterable
from types import TracebackType
from typing import Literal, Self

# "down": the connection is closed without an answer (the client sees RemoteDisconnected);
# "error": HTTP 500 with {"ok": false, "error": "internal_error"};
# "stall": each request is held until the outage is over, then answered as usual — so a client
# that timed out may still have posted, as with real Slack.
Mode = Literal["down", "error", "stall"]


class Outage:
    """From now until `seconds` have passed (None: until ended) or `end()`; leaving a `with` ends it."""

    def __init__(self, mode: Mode, seconds: float | None, methods: Iterable[str] | None) -> None:
        self.mode = mode
        self.methods = frozenset(methods) if methods is not None else None  # None: every endpoint
        self.ends_at = math.inf if seconds is None else time.monotonic() + seconds
        self._ended = threading.Event()  # lets end() release stalled requests at once

    @property
    def over(self) -> bool:
        return self._ended.is_set() or time.monotonic() >= self.ends_at

    def covers(self, method: str) -> bool:
        return not self.over and (self.methods is None or method in self.methods)

    def hold(self) -> None:
        """Wait until the outage is over."""
        remaining = self.ends_at - time.monotonic()
        self._ended.wait(None if math.isinf(remaining) else max(0.0, remaining))

    def end(self) -> None:
        self._ended.set()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.end()


class Faults:
    """The outages in force and the errors queued per method; shared by the server's threads."""

    def __init__(self) -> None:
        self._outages: list[Outage] = []
        self._failures: dict[str, deque[str]] = {}
        self._lock = threading.Lock()

    def outage(self, seconds: float | None, mode: Mode, methods: Iterable[str] | None) -> Outage:
        outage = Outage(mode, seconds, methods)
        with self._lock:
            self._outages = [o for o in self._outages if not o.over] + [outage]
        return outage

    def outage_for(self, method: str) -> Outage | None:
        with self._lock:
            return next((o for o in self._outages if o.covers(method)), None)

    def fail_next(self, method: str, error: str, count: int) -> None:
        with self._lock:
            self._failures.setdefault(method, deque()).extend([error] * count)

    def take_failure(self, method: str) -> str | None:
        with self._lock:
            queued = self._failures.get(method)
            return queued.popleft() if queued else None

    def end_all(self) -> None:
        with self._lock:
            outages, self._outages = self._outages, []
        for outage in outages:
            outage.end()
