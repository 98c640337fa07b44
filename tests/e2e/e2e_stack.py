"""The whole system for end-to-end tests: real Redis, a real Celery worker process, the bot over
HTTP with real signatures, the local Slack stand-in, and example targets on SQLite and PostgreSQL.

One stack per test module (a worker takes about a second to start); tests tell their requests
apart by id, never by assuming an empty control plane.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from slack_sdk import WebClient

from bot.app import Bot, build_app
from bot.server import BackgroundServer
from migrabot.config import Config, load_config
from migrabot.conversation import Chat
from services import RedisServer, create_database, database_name, drop_database
from slacklocal import SignedSender, SlackWebAPI
from workers.celery_app import app as celery_app
from workers.tasks import enqueue

EXAMPLE_PROJECT = Path(__file__).resolve().parents[2] / "example" / "backend"

BOT_TOKEN = "xoxb-e2e-token"
SIGNING_SECRET = "e2e-signing-secret"
PEOPLE = {"U0ALICE": "alice", "U0BOB": "bob", "U0CAROL": "carol", "U0MALLORY": "mallory", "U0MIGRABOT": "migrabot"}
GROUPS = {"S0DEVS": ["U0BOB"]}

CONFIG = """
[environments.lite]
description = "SQLite target"
project = "{project}"
settings = "backend.settings"
backup_dir = "{folder}/backups/lite"
env = {{ DATABASE_URL = "E2E_LITE_DATABASE_URL" }}
[environments.lite.policy]
readers = ["*"]
requesters = ["*"]
approvers = ["U0BOB", "U0CAROL"]

[environments.pg]
description = "PostgreSQL target"
project = "{project}"
settings = "backend.settings"
backup_dir = "{folder}/backups/pg"
env = {{ DATABASE_URL = "E2E_PG_DATABASE_URL" }}
[environments.pg.policy]
readers = ["U0ALICE", "S0DEVS"]
requesters = ["U0ALICE"]
approvers = ["U0BOB", "U0CAROL"]
approvals = 1
"""


@dataclass
class Stack:
    chat: Chat
    api: SlackWebAPI
    config: Config
    sender: SignedSender
    target_env: dict[str, str]  # the worker's target database URLs, by variable name
    worker_env: dict[str, str]
    bot: Bot
    worker: subprocess.Popen[str] | None = None
    worker_log: list[str] = field(default_factory=list)  # every worker's output lines so far

    def start_worker(self) -> None:
        """Start a worker process (again, after a kill) and wait until it is ready."""
        self.worker = subprocess.Popen(
            [sys.executable, "-m", "migrabot.cli", "worker", "--env", "lite", "--env", "pg"],
            env=self.worker_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        ready = threading.Event()
        worker = self.worker

        def follow() -> None:
            assert worker.stdout is not None
            for line in worker.stdout:
                self.worker_log.append(line)
                if " ready." in line:
                    ready.set()

        threading.Thread(target=follow, daemon=True).start()
        if not ready.wait(60):
            worker.kill()
            raise RuntimeError("the worker did not start:\n" + "".join(self.worker_log))

    def stop_worker(self, sig: int = signal.SIGTERM) -> None:
        if self.worker is not None:
            self.worker.send_signal(sig)
            self.worker.wait(30)
            self.worker = None

    def wait_for_log(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.worker_log):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the worker never logged {text!r}")
            time.sleep(0.05)


@contextmanager
def running_stack(folder: Path, *, redis_url: str, postgres_admin_url: str, project: Path = EXAMPLE_PROJECT) -> Iterator[Stack]:
    """The whole system on ``project``: lite (SQLite, partly migrated) and pg (PostgreSQL, migrated)."""
    config_file = folder / "migrabot.toml"
    config_file.write_text(CONFIG.format(project=project, folder=folder))
    config = load_config(config_file)
    pg_url = create_database(postgres_admin_url)
    target_env = {"E2E_LITE_DATABASE_URL": f"sqlite:///{folder / 'lite.sqlite3'}", "E2E_PG_DATABASE_URL": pg_url}
    from workers.target import Target

    os.environ.update(target_env)
    Target(config.environments["lite"]).manage("migrate", "marketplace", "0004", "--noinput")
    Target(config.environments["pg"]).manage("migrate", "--noinput")

    celery_app.conf.broker_url = redis_url
    with SlackWebAPI(BOT_TOKEN, users={u: {"name": n} for u, n in PEOPLE.items()}, usergroups=GROUPS) as api:
        worker_env = os.environ | target_env | {
            "MIGRABOT_CONFIG": str(config_file),
            "MIGRABOT_BROKER_URL": redis_url,
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_API_URL": api.base_url,
        }
        client = WebClient(token=BOT_TOKEN, base_url=api.base_url)
        bot = build_app(config=config, client=client, signing_secret=SIGNING_SECRET, enqueue=enqueue)
        try:
            with BackgroundServer(bot.app) as server:
                sender = SignedSender(server.url, SIGNING_SECRET, store=api.store, user_names=PEOPLE)
                chat = Chat(sender=sender, store=api.store, command="/migrate", names=PEOPLE)
                stack = Stack(chat, api, config, sender, target_env, worker_env, bot)
                stack.start_worker()
                yield stack
        finally:
            bot.close()
            stack.stop_worker()
            drop_database(postgres_admin_url, database_name(pg_url))


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer, postgres_admin_url: str) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("e2e")
    with running_stack(folder, redis_url=redis_server.url, postgres_admin_url=postgres_admin_url) as stack:
        yield stack
