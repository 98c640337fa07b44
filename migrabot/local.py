"""``migrabot local``: the whole product on one machine with no Slack account and no servers.

The pieces are the real ones — the Bolt app over HTTP with real signatures, a Celery worker, the
target probe in the example project's own process, the control plane — with embedded defaults:
the local Slack stand-in instead of Slack, Celery's in-memory broker and a worker thread instead
of Redis and a worker process, SQLite files in a work folder instead of database servers.
Environment variables that are already set (a database URL, say) win over those defaults, so the
same command rehearses a real configuration too.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from migrabot.config import Config, ConfigError, config_path, load_config

BOT_TOKEN = "xoxb-local-stand-in"
SIGNING_SECRET = "local-signing-secret"
PEOPLE = {"alice": "U0ALICE", "bob": "U0BOB", "carol": "U0CAROL", "dave": "U0DAVE"}
NAMES = {user_id: name for name, user_id in PEOPLE.items()} | {"U0MIGRABOT": "migrabot"}
GROUPS = {"S0DEVELOPERS": ["U0ALICE", "U0DAVE"], "S0DBAS": ["U0CAROL"], "S0LEADS": ["U0ALICE"]}
# Where each local database starts, so there is something to show: (app, migration) or None = all.
STARTING_POINT = {"staging": ("marketplace", "0004")}

if TYPE_CHECKING:
    from celery import Celery
    from slack_bolt import App

    from migrabot.conversation import Chat
    from slacklocal import SlackWebAPI


def run_local(*, script: str | None, workdir: str | None) -> int:
    with ExitStack() as stack:
        # Absolute: the targets run in their own folders, where a relative path means something else.
        folder = Path(workdir).resolve() if workdir else Path(stack.enter_context(tempfile.TemporaryDirectory()))
        folder.mkdir(parents=True, exist_ok=True)
        chat = stack.enter_context(local_stack(folder, load_config(config_path()))).chat
        if script is None:
            return _interactive(chat)
        with open(script) if script != "-" else _stdin() as lines:
            return _run_script(chat, lines)
    return 0


@dataclass(frozen=True)
class LocalStack:
    chat: Chat
    bolt: App  # the Bolt app, for measuring it in process
    api: SlackWebAPI  # the Slack stand-in, with everything posted


@contextmanager
def local_stack(folder: Path, config: Config) -> Iterator[LocalStack]:
    _embedded_defaults(folder, config)
    from migrabot.boot import setup_django

    setup_django()
    from django.core.management import call_command
    from slack_sdk import WebClient

    from bot.app import build_app
    from bot.server import BackgroundServer
    from migrabot.broker import enqueue
    from migrabot.conversation import Chat
    from slacklocal import SignedSender, SlackWebAPI
    from workers.catalog import publish_catalog
    from workers.celery_app import app as celery_app

    call_command("migrate", verbosity=0)
    _prepare_targets(folder, config)
    users = {user_id: {"name": name, "real_name": name.title()} for name, user_id in PEOPLE.items()}
    with SlackWebAPI(BOT_TOKEN, users=users, usergroups=GROUPS) as api:
        os.environ.update(SLACK_BOT_TOKEN=BOT_TOKEN, SLACK_API_URL=api.base_url)
        for environment in config.environments.values():
            publish_catalog(environment)
        _start_worker(celery_app, [env.celery_queue for env in config.environments.values()])
        client = WebClient(token=BOT_TOKEN, base_url=api.base_url)
        bot = build_app(config=config, client=client, signing_secret=SIGNING_SECRET, enqueue=enqueue)
        bot.start()
        with BackgroundServer(bot.app) as server:
            sender = SignedSender(server.url, SIGNING_SECRET, store=api.store, user_names=NAMES, api=api)
            chat = Chat(sender=sender, store=api.store, command=config.slash_command, names=NAMES)
            yield LocalStack(chat, bot.app, api)
        bot.close()


def _embedded_defaults(folder: Path, config: Config) -> None:
    os.environ.setdefault("MIGRABOT_HOME", str(folder))
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{folder / 'controlplane.sqlite3'}")
    os.environ.setdefault("MIGRABOT_BROKER_URL", "memory://localhost/")  # a host: kombu warns without one
    os.environ.setdefault("MIGRABOT_LOG_LEVEL", "WARNING")
    os.environ.setdefault("MIGRABOT_LOG_FORMAT", "text")  # a person reads these, not a log collector
    for environment in config.environments.values():
        for source in environment.env.values():
            os.environ.setdefault(source, f"sqlite:///{folder / environment.name}.sqlite3")


def _prepare_targets(folder: Path, config: Config) -> None:
    """Bring each new local database to its starting point (an existing one is left as it is)."""
    from workers.target import Target

    for environment in config.environments.values():
        marker = folder / f"{environment.name}.prepared"
        if marker.exists():
            continue
        target = Target(environment)
        starting_point = STARTING_POINT.get(environment.name, ())
        try:
            target.manage("migrate", *starting_point, "--noinput")
            if not starting_point:
                target.manage("seed_demo")
        except subprocess.CalledProcessError as error:  # the target's own words, not our traceback
            said = "\n".join((error.stderr or "").strip().splitlines()[-8:])
            raise ConfigError(
                f"local mode could not prepare `{environment.name}`: `manage.py {' '.join(error.cmd[2:])}` "
                f"in {environment.project} exited with {error.returncode}:\n{said}"
            ) from None
        marker.touch()


def _start_worker(celery_app: Celery, queues: list[str]) -> None:
    # The in-memory transport polls: once a second by default is too slow for a conversation.
    celery_app.conf.broker_transport_options["polling_interval"] = 0.05
    worker = celery_app.WorkController(
        pool="threads",
        concurrency=2,
        queues=queues,
        without_heartbeat=True,
        without_mingle=True,
        without_gossip=True,
        loglevel="WARNING",
    )
    threading.Thread(target=worker.start, name="celery-worker", daemon=True).start()


def _run_script(chat: Chat, lines: TextIO) -> int:
    from migrabot.transcript import perform

    for line in lines:
        if line.strip() and not line.lstrip().startswith("#"):
            print(perform(chat, line.strip(), people=PEOPLE), flush=True)
    return 0


def _interactive(chat: Chat) -> int:
    from migrabot.transcript import perform

    user = "alice"
    print(f"Local Slack: you are {user}. Type '{chat.command} help', 'open home', 'as bob' to switch, or 'quit'.")
    while True:
        try:
            line = input(f"{user}> ").strip()
        except EOFError:
            return 0
        if line in ("quit", "exit"):
            return 0
        if line.startswith("as ") and ":" not in line:
            user = line[3:].strip()
            continue
        if line:
            print(perform(chat, line if line.startswith("as ") else f"as {user}: {line}", people=PEOPLE))


def _stdin() -> TextIO:
    return os.fdopen(os.dup(sys.stdin.fileno()))

