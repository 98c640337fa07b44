"""User group membership, cached so that authorization in the ack path makes no Slack call.

Groups named in any policy are loaded when the bot starts and refreshed in the background.
``usergroups.users.list`` needs a paid workspace: where it fails, the group stays unknown and
grants nothing (policies can always list plain user ids instead).
"""

from __future__ import annotations

import logging
import threading

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

log = logging.getLogger(__name__)


class Directory:
    def __init__(self, client: WebClient, groups: set[str], refresh_seconds: float = 300) -> None:
        self._client = client
        self._groups = set(groups)
        self._refresh_seconds = refresh_seconds
        self._members: dict[str, frozenset[str]] = {}
        self._stopped = threading.Event()

    def members_of(self, group: str) -> frozenset[str] | None:
        return self._members.get(group)

    def refresh(self) -> None:
        for group in sorted(self._groups):
            try:
                response = self._client.usergroups_users_list(usergroup=group)
            except SlackApiError as error:
                log.warning("directory.group_unavailable group=%s error=%s", group, error.response.get("error"))
                continue
            self._members[group] = frozenset(response.get("users", []))

    def start(self) -> None:
        """Load now, then keep refreshing in a daemon thread."""
        if not self._groups:
            return
        self.refresh()
        threading.Thread(target=self._loop, name="directory-refresh", daemon=True).start()

    def stop(self) -> None:
        self._stopped.set()

    def _loop(self) -> None:
        while not self._stopped.wait(self._refresh_seconds):
            self.refresh()
