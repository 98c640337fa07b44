"""Periodic chores of the bot process: close approval windows that ran out, send requests the
broker never got, and report work whose worker vanished (``controlplane.recovery`` has the table
of who moves each state on, and when the sweep takes over)."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta

from django.db import close_old_connections

from bot import cards
from bot.followup import FollowUp
from controlplane.approvals import request_expire_due
from controlplane.recovery import request_fail_abandoned, request_interrupt_orphans, requests_to_enqueue
from migrabot import messages

log = logging.getLogger(__name__)
SWEEP_SECONDS = 15


def sweep(followup: FollowUp, **resend: timedelta) -> None:
    """One pass over this bot's environments; every change is told in the request's thread.
    ``resend`` tunes ``requests_to_enqueue`` (its ``grace`` and ``resend_after``)."""
    environments = followup.environments
    for request in request_expire_due(environments=environments):
        followup.notifier.reply(request, cards.note(messages.request_expired(request.pk)))
        followup.show_outcome(request)
    for request in requests_to_enqueue(environments=environments, **resend):
        followup.enqueue(request)
    for request in request_fail_abandoned(environments=environments):
        followup.notifier.reply(request, cards.note(messages.abandoned(request.pk, request.error)))
        followup.notifier.update_card(request)
    for request in request_interrupt_orphans(environments=environments):
        known = request.result or {}
        text = messages.interrupted(request.pk, known.get("unapplied", []), known.get("applied", []))
        followup.notifier.reply(request, cards.note(text))
        followup.notifier.update_card(request)


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
            except Exception:
                log.exception("housekeeping.failed")
            finally:
                close_old_connections()
