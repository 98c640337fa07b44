"""The App Home tab: published afresh each time someone opens it (``app_home_opened``).

The view shows what that viewer may approve now — chosen by ``approvals_pending_for``, the rules
``request_decide`` applies to a click — and, for each environment they may read, its lock, its
last change and its open requests. Bolt acks the event; the view is built and published after.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.directory import Directory
from bot.followup import FollowUp
from controlplane.approvals import approvals_pending_for
from controlplane.locks import lock_current
from controlplane.policy import is_included
from controlplane.selectors import last_change, open_requests_count
from migrabot.config import Config
from slackui.home import OPEN_THREAD, EnvironmentState, home_view

log = logging.getLogger(__name__)


def register(app: App, *, config: Config, directory: Directory, followup: FollowUp) -> None:
    @app.event("app_home_opened")
    def on_home_opened(event: dict[str, Any], client: WebClient) -> None:
        viewer = event.get("user")
        if event.get("tab", "home") != "home" or not isinstance(viewer, str):
            return
        followup.submit(publish_home, client, viewer, config=config, directory=directory)

    @app.action(re.compile(f"^{OPEN_THREAD}:[0-9]+$"))
    def on_open_thread(ack: Ack) -> None:
        ack()  # a link button: Slack opens the thread itself, and wants the click acked


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
