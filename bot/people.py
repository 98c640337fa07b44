"""People's names, cached in the control plane so the audit site shows "Alice Example (U0ALICE)".

A background thread of the bot's process (started with the others in ``Bot.start``, never on
the ack path) asks Slack's ``users.info`` (Tier 4) about each person named in requests,
approvals, locks and events whose cached name is missing or older than ``MAX_AGE``, at most
``BATCH`` a pass. Its first pass reads who is named in every row; later passes only the rows
written since (``selectors.people_named``), so a pass costs what a minute wrote, not the audit
trail's whole length. A failed pass (an error from Slack, or no network) is logged and tried again
with backoff; it never stops the thread or the bot. Slack knowing no such user is cached too
(a blank name), so it is not asked again before ``MAX_AGE``.
"""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from typing import Any

from django.db import close_old_connections
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from controlplane import services
from controlplane.selectors import PeopleMarks, people_named, users_to_look_up

log = logging.getLogger(__name__)
REFRESH_SECONDS = 60.0
MAX_AGE = timedelta(days=1)
BATCH = 50  # a pass's calls stay within Tier 4's 100 a minute
BACKOFF_SECONDS = (1.0, 2.0, 5.0, 15.0, 30.0)


def shown_name(user: dict[str, Any]) -> str:
    """The name Slack shows for a user object: the display name, else the real name, else the username."""
    profile = user.get("profile") or {}
    for name in (profile.get("display_name"), profile.get("real_name"), user.get("real_name"), user.get("name")):
        if isinstance(name, str) and name.strip():
            return name.strip()
    return ""


class People:
    def __init__(self, client: WebClient, *, refresh_seconds: float = REFRESH_SECONDS) -> None:
        self._client = client
        self._refresh_seconds = refresh_seconds
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None
        # Everyone named so far, and how far each table was read: a pass reads only what came since.
        self._named: set[str] = set()
        self._marks: PeopleMarks = {}

    def refresh(self) -> bool:
        """Look up one batch of people; True if Slack answered for every one of them."""
        named, self._marks = people_named(after=self._marks)
        self._named |= named
        for user_id in users_to_look_up(named=self._named, max_age=MAX_AGE, limit=BATCH):
            try:
                user = self._client.users_info(user=user_id)["user"]
            except SlackApiError as error:
                code = str(error.response.get("error", ""))
                if code != "user_not_found":
                    log.warning("people.lookup_failed user=%s error=%s", user_id, code)
                    return False  # rate-limited or down: the rest wait for the next pass
                user = {}
            except Exception as error:  # the network
                log.warning("people.lookup_failed user=%s error=%r", user_id, error)
                return False
            services.user_record(user_id=user_id, name=shown_name(user))
        return True

    def start(self) -> None:
        """Keep the cache filled from a daemon thread of this process (idempotent)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._thread = threading.Thread(target=self._loop, name="people-refresh", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()

    def _loop(self) -> None:
        failures = 0
        while not self._stopped.is_set():
            try:
                complete = self.refresh()
            except Exception:  # the control plane: tried again like Slack
                log.exception("people.failed")
                complete = False
            finally:
                close_old_connections()
            failures = 0 if complete else failures + 1
            pause = BACKOFF_SECONDS[min(failures, len(BACKOFF_SECONDS)) - 1] if failures else self._refresh_seconds
            self._stopped.wait(min(pause, self._refresh_seconds))
