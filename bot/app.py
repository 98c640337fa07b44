"""Building the Bolt app: signature checks, listeners, background chores, database hygiene."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.db import close_old_connections
from slack_bolt import App
from slack_sdk import WebClient

from bot.directory import Directory
from bot.followup import Enqueue, FollowUp
from bot.housekeeping import Housekeeper
from bot.listeners import actions, commands
from bot.notify import Notifier
from migrabot.config import Config


@dataclass(frozen=True)
class Bot:
    app: App
    followup: FollowUp
    housekeeper: Housekeeper

    def close(self) -> None:
        self.housekeeper.stop()
        self.followup.shutdown()


def build_app(
    *,
    config: Config,
    client: WebClient,
    signing_secret: str,
    enqueue: Enqueue,
    directory: Directory | None = None,
) -> Bot:
    # process_before_response: the listener only parses and writes a row, so answering once it
    # returns costs ~0.1 ms instead of the default runner's step-wise wait (~10 ms).
    app = App(client=client, signing_secret=signing_secret, process_before_response=True)
    app.middleware(_close_connections)
    directory = directory or Directory(client, groups=_policy_groups(config))
    directory.start()
    followup = FollowUp(config=config, notifier=Notifier(client, config.slash_command), enqueue=enqueue)
    commands.register(app, config=config, directory=directory, followup=followup)
    actions.register(app, config=config, directory=directory, followup=followup)
    housekeeper = Housekeeper(followup)
    housekeeper.start()
    return Bot(app, followup, housekeeper)


def _close_connections(next: Callable[[], None]) -> None:
    """Bolt serves each request on some thread: give back its database connection afterwards."""
    try:
        next()
    finally:
        close_old_connections()


def _policy_groups(config: Config) -> set[str]:
    groups = set()
    for environment in config.environments.values():
        policy = environment.policy
        for principal in [*policy.readers, *policy.requesters, *policy.approvers]:
            if principal.startswith("S"):
                groups.add(principal)
    return groups
