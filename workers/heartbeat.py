"""Keeping a run's environment lock alive while the run goes on (and only while it does)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import close_old_connections

from controlplane.locks import RUN_LOCK_TTL, lock_heartbeat

log = logging.getLogger(__name__)
BEAT_SECONDS = RUN_LOCK_TTL.total_seconds() / 4


@contextmanager
def heartbeat(*, environment: str, holder: str) -> Iterator[None]:
    stopped = threading.Event()

    def beat() -> None:
        try:
            while not stopped.wait(BEAT_SECONDS):
                if not lock_heartbeat(environment=environment, holder=holder):
                    log.error("lock.lost environment=%s holder=%s", environment, holder)
        finally:
            close_old_connections()

    thread = threading.Thread(target=beat, name=f"heartbeat-{environment}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stopped.set()
        thread.join()
