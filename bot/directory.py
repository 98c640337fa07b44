"""User group membership, cached so that authorization in the ack path makes no Slack call.

The cache lives in the process that serves Slack's requests: ``start`` is called there (after
gunicorn forks its worker, not before: a thread does not survive a fork). Groups named in any
policy are fetched in a background thread, at once and then every ``refresh_seconds``; a failed
fetch (an error from Slack, or no network at all) is logged and retried with backoff, and never
stops the thread or the bot, which starts without Slack and says so.

Membership older than ``max_age_seconds`` is not trusted: the group then grants nothing, so a
person removed from a group cannot go on approving on old data, and a Slack outage can only ever
refuse, never allow. ``usergroups.users.list`` needs a paid workspace: where it fails, the group
stays unknown (policies can always list plain user ids instead).
"""

from __future__ import annotations

import logging
import threading
import time

from slack_sdk import WebClient

log = logging.getLogger(__name__)
REFRESH_SECONDS = 60.0
MAX_AGE_SECONDS = 600.0  # the policy age: group data older than this grants nothing
BACKOFF_SECONDS = (1.0, 2.0, 5.0, 15.0, 30.0)


class Directory:
    def __init__(
        self,
        client: WebClient,
        groups: set[str],
        *,
        refresh_seconds: float = REFRESH_SECONDS,
        max_age_seconds: float = MAX_AGE_SECONDS,
    ) -> None:
        self._client = client
        self._groups = set(groups)
        self._refresh_seconds = refresh_seconds
        self._max_age = max_age_seconds
        self._members: dict[str, tuple[frozenset[str], float]] = {}  # members, when fetched (monotonic)
        self._stopped = threading.Event()
        self._first_pass = threading.Event()
        self._thread: threading.Thread | None = None

    def members_of(self, group: str) -> frozenset[str] | None:
        """The group's members, or None when unknown or older than the policy age."""
        known = self._members.get(group)
        if known is None or time.monotonic() - known[1] > self._max_age:
            return None
        return known[0]

    def refresh(self) -> bool:
        """Fetch every group once; True if all were fetched."""
        complete = True
        for group in sorted(self._groups):
            try:
                response = self._client.usergroups_users_list(usergroup=group)
            except Exception as error:  # SlackApiError, or the network: the next try may work
                log.warning("directory.group_unavailable group=%s error=%s", group, _describe(error))
                complete = False
                continue
            self._members[group] = (frozenset(response.get("users", [])), time.monotonic())
        return complete

    def start(self, wait_seconds: float = 5.0) -> None:
        """Keep the cache fresh from a daemon thread of this process (idempotent); give its
        first pass up to ``wait_seconds``, so the first clicks find the groups loaded."""
        if not self._groups or (self._thread is not None and self._thread.is_alive()):
            return
        self._thread = threading.Thread(target=self._loop, name="directory-refresh", daemon=True)
        self._thread.start()
        self._first_pass.wait(wait_seconds)

    def stop(self) -> None:
        self._stopped.set()

    def _loop(self) -> None:
        failures = 0
        while not self._stopped.is_set():
            fetched = self.refresh()
            self._first_pass.set()
            if fetched:
                failures, pause = 0, self._refresh_seconds
            else:
                if failures == 0:
                    log.warning(
                        "directory.slack_unreachable groups=%s: group members grant nothing until Slack answers",
                        sorted(self._groups),
                    )
                pause = min(BACKOFF_SECONDS[min(failures, len(BACKOFF_SECONDS) - 1)], self._refresh_seconds)
                failures += 1
            self._stopped.wait(pause)


def _describe(error: Exception) -> str:
    response = getattr(error, "response", None)
    return str(response.get("error")) if response is not None else repr(error)
