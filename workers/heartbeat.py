"""Keeping a worker's claim alive while it carries a request out (and only while it does).

One daemon thread per request renews the request's lease and, once the run holds it, the
environment lock. A control-plane hiccup does not end the heartbeat: it logs, retries sooner, and
only declares the claim ``lost`` when no renewal has succeeded for most of the lock's lifetime
(or the lock turned out to be someone else's). Whoever runs migrations watches ``lost`` and stops
before the next migration rather than go on unlocked.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import close_old_connections

from controlplane.locks import RUN_LOCK_TTL, lock_heartbeat
from controlplane.services import request_renew_lease

log = logging.getLogger(__name__)
BEAT_SECONDS = RUN_LOCK_TTL.total_seconds() / 6
RETRY_SECONDS = (0.5, 1.0, 2.0, 4.0)
# Past this without one successful renewal the lock may have lapsed: act as if it had.
GIVE_UP_SECONDS = RUN_LOCK_TTL.total_seconds() * 0.6


class Heartbeat:
    def __init__(
        self, request_id: int, *, beat_seconds: float = BEAT_SECONDS, give_up_seconds: float = GIVE_UP_SECONDS
    ) -> None:
        self.request_id = request_id
        self.lost = threading.Event()
        self._lock: tuple[str, str] | None = None  # (environment, token) once the run holds it
        self._beat, self._give_up = beat_seconds, give_up_seconds
        self._stopped = threading.Event()
        # In the creator's context: its log lines name the request as the job's do (``migrabot.logs``).
        self._thread = threading.Thread(
            target=contextvars.copy_context().run, args=(self._loop,), name=f"heartbeat-{request_id}", daemon=True
        )

    @contextmanager
    def holding(self, *, environment: str, token: str) -> Iterator[None]:
        """Renew this lock acquisition too while the block runs."""
        self._lock = (environment, token)
        try:
            yield
        finally:
            self._lock = None

    def renew(self) -> None:
        """One renewal; raises on a control-plane error, sets ``lost`` if the lock is not ours."""
        request_renew_lease(request_id=self.request_id)
        held = self._lock
        if held is not None and not lock_heartbeat(environment=held[0], token=held[1]):
            log.error("lock.lost request=%s environment=%s", self.request_id, held[0])
            self.lost.set()

    def _loop(self) -> None:
        last_success, failures = time.monotonic(), 0
        try:
            while not self._stopped.wait(
                self._beat if not failures else RETRY_SECONDS[min(failures, len(RETRY_SECONDS)) - 1]
            ):
                try:
                    self.renew()
                    last_success, failures = time.monotonic(), 0
                except Exception as error:  # the database may be down or restarting: keep trying
                    failures += 1
                    close_old_connections()
                    log.warning("heartbeat.failed request=%s attempt=%s error=%r", self.request_id, failures, error)
                    if self._lock is not None and time.monotonic() - last_success > self._give_up:
                        log.error(
                            "lock.unconfirmed request=%s seconds=%.0f", self.request_id, time.monotonic() - last_success
                        )
                        self.lost.set()
        finally:
            close_old_connections()

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopped.set()
        self._thread.join()
