"""Building the Bolt app: signature checks, listeners, the notifier and background chores."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

from django.db import close_old_connections, connection, connections
from slack_bolt import App
from slack_bolt.authorization import AuthorizeResult
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_sdk import WebClient

from bot.directory import Directory
from bot.followup import Enqueue, FollowUp
from bot.homes import HomeRefresher
from bot.housekeeping import SWEEP_SECONDS, Housekeeper
from bot.listeners import actions, commands, home
from bot.notify import Notifier, with_retries
from bot.people import People
from bot.permalinks import Permalinks
from migrabot.config import Config


class _NotTheTokenWarning(logging.Filter):
    """Bolt reads SLACK_BOT_TOKEN from the environment even when given a client, and warns at every
    start that it will not use it: we authorize with that very token (``_bot_token``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != warning_client_prioritized_and_token_skipped()


_BOLT_LOG = logging.getLogger("slack_bolt.App")
_BOLT_LOG.addFilter(_NotTheTokenWarning())


@dataclass(frozen=True)
class Bot:
    app: App
    followup: FollowUp
    housekeeper: Housekeeper
    directory: Directory
    notifier: Notifier
    people: People
    homes: HomeRefresher
    permalinks: Permalinks

    def start(self) -> None:
        """Start the background chores in the process that serves Slack (after any fork)."""
        self.directory.start()
        self.notifier.start()
        self.housekeeper.start()
        self.people.start()
        self.homes.start()
        self.permalinks.start()

    def close(self) -> None:
        self.directory.stop()
        self.people.stop()
        self.homes.stop()
        self.permalinks.stop()
        self.housekeeper.stop()
        self.notifier.stop()
        self.followup.shutdown()


def build_app(
    *,
    config: Config,
    client: WebClient,
    signing_secret: str,
    enqueue: Enqueue,
    directory: Directory | None = None,
) -> Bot:
    """The app with its listeners; nothing runs in the background until ``Bot.start``."""
    _keep_connections()
    # process_before_response: the listener only parses and writes a row, so answering once it
    # returns costs ~0.1 ms instead of the default runner's step-wise wait (~10 ms). The bot token
    # is authorized as it is, with no auth.test (Bolt calls it at start, or at the first request):
    # the bot starts and acks while Slack is unreachable, and its posts catch up when it answers.
    app = App(
        client=WebClient(base_url=client.base_url, timeout=client.timeout),
        authorize=_bot_token(client.token or ""),
        signing_secret=signing_secret,
        process_before_response=True,
        logger=_BOLT_LOG,
    )
    app.middleware(_release_connection)
    directory = directory or Directory(client, groups=_policy_groups(config), **_directory_timing())
    slack = with_retries(client)
    homes = HomeRefresher(slack, config=config, directory=directory)
    permalinks = Permalinks(slack, config)
    notifier = Notifier(slack, config, after_pass=[homes.poke, permalinks.poke])
    followup = FollowUp(config=config, notifier=notifier, enqueue=enqueue)
    commands.register(app, config=config, directory=directory, followup=followup)
    actions.register(app, config=config, directory=directory, followup=followup)
    home.register(app, config=config, directory=directory, followup=followup, homes=homes)
    sweep_seconds = float(os.environ.get("MIGRABOT_SWEEP_SECONDS") or SWEEP_SECONDS)
    people = People(client, **_people_timing())
    housekeeper = Housekeeper(followup, every_seconds=sweep_seconds)
    return Bot(app, followup, housekeeper, directory, notifier, people, homes, permalinks)


def _keep_connections() -> None:
    """Every thread of the bot's process keeps its control-plane connection from one request or
    job to the next: each lives long and serves many (gunicorn's pool of threads, the follow-up
    pool, the notifier, the sweep; ``BackgroundServer``, a thread per request, closes its own).
    A connection per request, the settings' default, cost more than the rest of the ack together:
    on SQLite the open (``PRAGMA journal_mode``) and above all the close (the last connection
    checkpoints the WAL, with fsync); on PostgreSQL a connection and its authentication.
    ``close_old_connections`` after each request still drops one that broke, and the health check
    before the next use replaces one that died while idle (PostgreSQL restarted, say)."""
    for database in connections.settings.values():
        database.update(CONN_MAX_AGE=None, CONN_HEALTH_CHECKS=True)


def _release_connection(next: Callable[[], None]) -> None:
    """After each request: its thread's connection is dropped if it broke (see ``_keep_connections``).
    On SQLite the commit that takes the WAL past 1,000 pages also checkpoints it, copying it into
    the database with fsync: several ms, every few dozen commands, which made the ack's p99. The
    threads that serve Slack leave that to the process's other connections (the follow-up's write
    after each ack, the notifier, the sweep: ``housekeeping.checkpoint``) and to the workers'."""
    try:
        next()
    finally:
        close_old_connections()
        _no_autocheckpoint()


_checkpointless = threading.local()  # the SQLite connection of this serving thread already told


def _no_autocheckpoint() -> None:
    """Once per SQLite connection of a serving thread, not a statement on every request."""
    raw = connection.connection
    if connection.vendor != "sqlite" or raw is None or getattr(_checkpointless, "raw", None) is raw:
        return
    raw.execute("PRAGMA wal_autocheckpoint = 0")
    _checkpointless.raw = raw


def _bot_token(token: str) -> Callable[..., AuthorizeResult]:
    def authorize(enterprise_id: str | None, team_id: str | None, user_id: str | None) -> AuthorizeResult:
        return AuthorizeResult(enterprise_id=enterprise_id, team_id=team_id, user_id=user_id, bot_token=token)

    return authorize


def _directory_timing() -> dict[str, float]:
    """``MIGRABOT_GROUP_REFRESH_SECONDS`` and ``MIGRABOT_GROUP_MAX_AGE_SECONDS``, where set."""
    names = {"refresh_seconds": "MIGRABOT_GROUP_REFRESH_SECONDS", "max_age_seconds": "MIGRABOT_GROUP_MAX_AGE_SECONDS"}
    return {key: float(os.environ[name]) for key, name in names.items() if os.environ.get(name)}


def _people_timing() -> dict[str, float]:
    """``MIGRABOT_PEOPLE_REFRESH_SECONDS``, where set."""
    seconds = os.environ.get("MIGRABOT_PEOPLE_REFRESH_SECONDS")
    return {"refresh_seconds": float(seconds)} if seconds else {}


def _policy_groups(config: Config) -> set[str]:
    groups = set()
    for environment in config.environments.values():
        policy = environment.policy
        for principal in [*policy.readers, *policy.requesters, *policy.approvers]:
            if principal.startswith("S"):
                groups.add(principal)
    return groups
