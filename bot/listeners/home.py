"""The App Home tab: published afresh each time someone opens it (``app_home_opened``).

Bolt acks the event; who opened it is recorded (their Home is kept current from then on:
``bot.homes.HomeRefresher``) and the view built and published after, off Slack's request thread.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot.directory import Directory
from bot.followup import FollowUp
from bot.homes import HomeRefresher, publish_home
from controlplane import services
from migrabot.config import Config
from slackui.home import OPEN_THREAD

log = logging.getLogger(__name__)


def register(app: App, *, config: Config, directory: Directory, followup: FollowUp, homes: HomeRefresher) -> None:
    @app.event("app_home_opened")
    def on_home_opened(event: dict[str, Any], client: WebClient) -> None:
        viewer = event.get("user")
        if event.get("tab", "home") != "home" or not isinstance(viewer, str):
            return
        followup.submit(opened, client, viewer, config=config, directory=directory, homes=homes)

    @app.action(re.compile(f"^{OPEN_THREAD}:[0-9]+$"))
    def on_open_thread(ack: Ack) -> None:
        ack()  # a link button: Slack opens the thread itself, and wants the click acked


def opened(client: WebClient, viewer: str, *, config: Config, directory: Directory, homes: HomeRefresher) -> None:
    services.home_opened(user=viewer)
    homes.drawn(viewer)
    publish_home(client, viewer, config=config, directory=directory)
