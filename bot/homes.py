"""The App Home tab: drawn when someone opens it, and re-published while what it shows changes.

``build_home`` is the view of one viewer: what they may approve now (``approvals_pending_for``,
the rules ``request_decide`` applies to a click) and, for each environment they may read, its
lock, last change and open requests.

``HomeRefresher`` keeps the Homes of recent viewers (``RECENT``: who opened the tab lately, as
the control plane records it) current. The notifier pokes it after each pass; it reads the audit
events recorded since its last look — a request awaiting approval, decided or ended, a lock taken
or released, each recorded in the transaction that made it true — and re-publishes the Home of
each recent viewer that environment concerns (a reader or an approver there). Changes are
coalesced per viewer, and each viewer's Home is published at most once every ``MIN_SECONDS``: a
burst of changes costs one ``views.publish`` per viewer. A failed publish is logged and tried
again with backoff while the failure may pass (``TRANSIENT``); it reads the control plane only,
so it never touches a request. What it remembers (the events of the last minute it has seen,
when each Home was published) lives in this process: a bot starts from the newest event, and
each of several bots keeps the Homes of its own environments.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from datetime import timedelta
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.chores import PokedChore
from bot.directory import Directory
from controlplane.approvals import approvals_pending_for
from controlplane.locks import lock_current
from controlplane.policy import is_included
from controlplane.selectors import audit_newest_id, home_changes, home_viewers, last_change, open_requests_count
from migrabot.config import Config
from slackui.home import EnvironmentState, home_view

log = logging.getLogger(__name__)
RECENT = timedelta(days=7)
MIN_SECONDS = 10.0  # per viewer; MIGRABOT_HOME_MIN_SECONDS changes it
BACKOFF_SECONDS = (1.0, 2.0, 5.0, 15.0, 30.0)
# Slack's answers that a later try may not get (rate limits, its own faults); any other refusal
# (``not_enabled``: no Home tab; a user who is gone) is logged once and not asked again until a change.
TRANSIENT = ("ratelimited", "fatal_error", "internal_error", "service_unavailable", "request_timeout")
LOOKBACK_SECONDS = 60.0  # how late an audit event may commit after a newer one and still be seen
POLL_SECONDS = 5.0  # a look even without a poke (a manual lock records no post, so wakes no one)


def publish_home(client: WebClient, viewer: str, *, config: Config, directory: Directory) -> None:
    client.views_publish(user_id=viewer, view=build_home(viewer, config=config, directory=directory))
    log.info("home.published user=%s", viewer)


def build_home(viewer: str, *, config: Config, directory: Directory) -> dict[str, Any]:
    environments = list(config.environments.values())
    pending = approvals_pending_for(person=viewer, environments=environments, members_of=directory.members_of)
    states = []
    for env in environments:
        if not is_included(viewer, env.policy.readers, directory.members_of):
            continue  # what someone may not read is not shown to them here either
        lock = lock_current(environment=env.name)
        states.append(
            EnvironmentState(
                name=env.name,
                production=env.production,
                lock=(lock.holder, lock.reason, lock.acquired_at) if lock else None,
                last_change=last_change(environment=env.name),
                open_requests=open_requests_count(environment=env.name),
            )
        )
    return home_view(pending, states)


class HomeRefresher(PokedChore):
    name = "home-refresh"

    def __init__(self, client: WebClient, *, config: Config, directory: Directory) -> None:
        super().__init__()
        self._client = client
        self._config = config
        self._directory = directory
        self.min_seconds = float(os.environ.get("MIGRABOT_HOME_MIN_SECONDS") or MIN_SECONDS)
        # (when, the newest audit event id then) of each look within LOOKBACK, and the events seen since
        # the oldest: ids are handed out as rows are inserted, not as they commit, so an event may become
        # visible after a newer one has been read. Reading from an older id, minus those seen, catches it.
        self._looks: deque[tuple[float, int]] = deque()
        self._seen: set[int] = set()
        self._due: dict[str, tuple[float, int]] = {}  # viewer -> (publish no earlier than, failures)
        self._published: dict[str, float] = {}  # viewer -> when their Home was last published
        self._lock = threading.Lock()

    def drawn(self, viewer: str) -> None:
        """The viewer's Home is being drawn afresh (they opened it): what changed before is in it."""
        with self._lock:
            self._due.pop(viewer, None)
            self._published[viewer] = time.monotonic()

    def refresh(self) -> int:
        """One look: note what changed since the last, publish the Homes that are due; how many."""
        self._note_changes()
        return sum(self._publish(viewer) for viewer in self._due_now())

    def pause(self) -> float:
        with self._lock:
            soonest = min((at for at, _ in self._due.values()), default=None)
        if soonest is None:
            return POLL_SECONDS
        return max(0.05, min(POLL_SECONDS, soonest - time.monotonic()))

    def _note_changes(self) -> None:
        now, newest = time.monotonic(), audit_newest_id()
        if not self._looks:
            self._looks.append((now, newest))  # what happened before this bot started is not news
            return
        while len(self._looks) > 1 and self._looks[1][0] <= now - LOOKBACK_SECONDS:
            self._looks.popleft()
        events = home_changes(after=self._looks[0][1])
        changed = {environment for pk, environment in events if pk not in self._seen}
        self._seen = {pk for pk, _ in events}
        self._looks.append((now, newest))
        environments = [self._config.environments[name] for name in changed if name in self._config.environments]
        if not environments:
            return
        members_of = self._directory.members_of
        concerned = [[*env.policy.readers, *env.policy.approvers] for env in environments]
        for viewer in home_viewers(since=RECENT):
            if any(is_included(viewer, people, members_of) for people in concerned):
                self._mark_due(viewer)

    def _mark_due(self, viewer: str) -> None:
        with self._lock:
            if viewer in self._due:
                return  # already due: this change goes out with that publish
            allowed = self._published.get(viewer, float("-inf")) + self.min_seconds
            self._due[viewer] = (max(time.monotonic(), allowed), 0)

    def _due_now(self) -> list[str]:
        now = time.monotonic()
        with self._lock:
            return [viewer for viewer, (at, _) in self._due.items() if at <= now]

    def _publish(self, viewer: str) -> bool:
        with self._lock:
            failures = self._due.get(viewer, (0.0, 0))[1]
            self._published[viewer] = time.monotonic()
            self._due.pop(viewer, None)  # a change from now on makes it due again
        try:
            publish_home(self._client, viewer, config=self._config, directory=self._directory)
        except SlackApiError as error:
            if str(error.response.get("error", "")) not in TRANSIENT:  # asking again gets the same answer
                log.warning("home.publish_refused user=%s error=%s", viewer, _describe(error))
                return False
            self._retry_later(viewer, failures + 1, error)
            return False
        except Exception as error:  # the network: tried again, for as long as it fails
            self._retry_later(viewer, failures + 1, error)
            return False
        return True

    def _retry_later(self, viewer: str, failures: int, error: Exception) -> None:
        log.warning("home.publish_failed user=%s error=%s attempt=%s", viewer, _describe(error), failures)
        backoff = BACKOFF_SECONDS[min(failures, len(BACKOFF_SECONDS)) - 1]
        with self._lock:
            self._due.setdefault(viewer, (time.monotonic() + backoff, failures))


def _describe(error: Exception) -> str:
    response = getattr(error, "response", None)
    return str(response.get("error")) if response is not None else repr(error)
