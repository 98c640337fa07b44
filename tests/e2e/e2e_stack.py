"""The whole system for end-to-end tests: real Redis, a real Celery worker process, the bot over
HTTP with real signatures, the local Slack stand-in, and example targets on SQLite and PostgreSQL.

One stack per test module (a worker takes about a second to start); tests tell their requests
apart by id, never by assuming an empty control plane.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from slack_sdk import WebClient

from bot.app import build_app
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
    worker: subprocess.Popen[str]
    worker_log: list[str]  # the worker's output lines so far


def _start_worker(env: dict[str, str], log: list[str]) -> subprocess.Popen[str]:
    worker = subprocess.Popen(
        [sys.executable, "-m", "migrabot.cli", "worker", "--env", "lite", "--env", "pg"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    ready = threading.Event()

    def follow() -> None:
        assert worker.stdout is not None
        for line in worker.stdout:
            log.append(line)
            if " ready." in line:
                ready.set()

    threading.Thread(target=follow, daemon=True).start()
    if not ready.wait(60):
        worker.kill()
        raise RuntimeError("the worker did not start:\n" + "".join(log))
    return worker


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer, postgres_admin_url: str
) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("e2e")
    config_file = folder / "migrabot.toml"
    config_file.write_text(CONFIG.format(project=EXAMPLE_PROJECT, folder=folder))
    config = load_config(config_file)
    pg_url = create_database(postgres_admin_url)
    target_env = {"E2E_LITE_DATABASE_URL": f"sqlite:///{folder / 'lite.sqlite3'}", "E2E_PG_DATABASE_URL": pg_url}
    from workers.target import Target

    os.environ.update(target_env)
    Target(config.environments["lite"]).manage("migrate", "marketplace", "0004", "--noinput")
    Target(config.environments["pg"]).manage("migrate", "--noinput")

    celery_app.conf.broker_url = redis_server.url
    worker_log: list[str] = []
    with SlackWebAPI(BOT_TOKEN, users={u: {"name": n} for u, n in PEOPLE.items()}, usergroups=GROUPS) as api:
        worker = _start_worker(
            os.environ
            | target_env
            | {
                "MIGRABOT_CONFIG": str(config_file),
                "MIGRABOT_BROKER_URL": redis_server.url,
                "SLACK_BOT_TOKEN": BOT_TOKEN,
                "SLACK_API_URL": api.base_url,
            },
            worker_log,
        )
        client = WebClient(token=BOT_TOKEN, base_url=api.base_url)
        bot = build_app(config=config, client=client, signing_secret=SIGNING_SECRET, enqueue=enqueue)
        try:
            with BackgroundServer(bot.app) as server:
                sender = SignedSender(server.url, SIGNING_SECRET, store=api.store, user_names=PEOPLE)
                chat = Chat(sender=sender, store=api.store, command="/migrate", names=PEOPLE)
                yield Stack(chat, api, config, sender, target_env, worker, worker_log)
        finally:
            bot.close()
            worker.terminate()
            worker.wait(30)
            drop_database(postgres_admin_url, database_name(pg_url))
