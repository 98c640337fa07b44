"""Periodic chores of the bot process: close approval windows that ran out, send requests the
broker never got, and report work whose worker vanished (``controlplane.recovery`` has the table
of who moves each state on, and when the sweep takes over)."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from django.db import close_old_connections, connection

from bot.followup import FollowUp
from controlplane.approvals import request_expire_due
from controlplane.recovery import request_fail_abandoned, request_interrupt_orphans, requests_to_enqueue

log = logging.getLogger(__name__)
SWEEP_SECONDS = 15


def sweep(followup: FollowUp, **resend: timedelta) -> None:
    """One pass over this bot's environments; each change records its note for the thread.
    ``resend`` tunes ``requests_to_enqueue`` (its ``grace`` and ``resend_after``). Several bots may
    sweep at once: each change is a conditional update, so only one of them makes (and tells) it."""
    environments = followup.environments
    for request in request_expire_due(environments=environments):
        followup.show_outcome(request)
    followup.enqueue(*requests_to_enqueue(environments=environments, **resend))
    request_fail_abandoned(environments=environments)
    request_interrupt_orphans(environments=environments)


def checkpoint() -> None:
    """On SQLite, fold the WAL into the database. The threads that serve Slack never do it
    (``bot.app``); the bot's other writes and the workers' do, and this pass too, so the WAL
    stays short even while nothing but refusals is written."""
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA wal_checkpoint(PASSIVE)")


class Housekeeper:
    def __init__(self, followup: FollowUp, every_seconds: float = SWEEP_SECONDS) -> None:
        self._followup = followup
        self._every = every_seconds
        self._stopped = threading.Event()

    def start(self) -> None:
        threading.Thread(target=self._loop, name="housekeeping", daemon=True).start()

    def stop(self) -> None:
        self._stopped.set()

    def _loop(self) -> None:
        while not self._stopped.wait(self._every):
            try:
                sweep(self._followup)
                checkpoint()
            except Exception:
                log.exception("housekeeping.failed")
            finally:
                close_old_connections()
