"""The whole system for end-to-end tests: real Redis, a real Celery worker process, the bot over
HTTP with real signatures, the local Slack stand-in, and example targets on SQLite and PostgreSQL.

One stack per test module (a worker takes about a second to start); tests tell their requests
apart by id, never by assuming an empty control plane.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fault_report import FaultReport
from services import RedisServer, create_database, database_name, drop_database
from slack_sdk import WebClient

from bot.app import Bot, build_app
from bot.server import BackgroundServer
from controlplane.models import (
    TERMINAL_STATES,
    AuditEvent,
    EnvironmentLock,
    HomeViewer,
    Request,
    State,
)
from migrabot.broker import enqueue
from migrabot.config import Config, load_config
from migrabot.conversation import SETTLED, Chat
from slacklocal import SignedSender, SlackWebAPI
from workers.celery_app import app as celery_app
from workers.target import Target

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


# The notifier updates a message at most this often (2 s in production): short, so tests do not wait.
MIN_UPDATE_SECONDS = "0.1"
STARTING_POINTS = {"lite": [("marketplace", "0004")], "pg": [()]}


@dataclass
class Stack:
    chat: Chat
    api: SlackWebAPI
    config: Config
    sender: SignedSender
    target_env: dict[str, str]  # the worker's target database URLs, by variable name
    project: Path  # the target project both environments run
    worker_env: dict[str, str]
    bot: Bot
    worker: subprocess.Popen[str] | None = None
    worker_log: list[str] = field(default_factory=list)  # every worker's output lines so far

    def start_worker(self) -> None:
        """Start a worker process (again, after a kill) and wait until it is ready."""
        self.worker = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "migrabot.cli",
                "worker",
                *(arg for env in self.config.environments for arg in ("--env", env)),
            ],
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


def approve_without_waiting(stack: Stack, request: Request, user: str = "U0BOB") -> None:
    """Click Approve on ``request``'s plan as ``user`` and return at once (the run goes on)."""
    request.refresh_from_db()
    value = json.dumps({"request": request.pk, "digest": request.plan_digest})
    assert stack.sender.click("approve", value, user, stack.chat.channel, request.plan_ts).status == 200


def wait_until(condition: Callable[[], object], timeout: float = 60) -> None:
    """Until ``condition()`` holds, checking every 20 ms; TimeoutError after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met")
        time.sleep(0.02)


def manage(stack: Stack, env: str, *args: str) -> str:
    """``manage.py args…`` in an environment's target, as its worker would run it."""
    return Target(stack.config.environments[env]).manage(*args).stdout


def tally_runs(after_id: int, report: FaultReport, settle_seconds: float = 30) -> None:
    """For ``scripts/fault-report``: of the requests after ``after_id``, those that started running
    more than once, and those lost (never settled: finished, or waiting for a person)."""
    requests = Request.objects.filter(id__gt=after_id)
    deadline = time.monotonic() + settle_seconds
    while requests.exclude(state__in=SETTLED).exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    runs = Counter(
        AuditEvent.objects.filter(request__in=requests, action="request.running").values_list("request_id", flat=True)
    )
    report.tally(
        requests=requests.count(),
        duplicate_runs=sum(n > 1 for n in runs.values()),
        lost=requests.exclude(state__in=SETTLED).count(),
    )


def forget_open_work() -> None:
    """Stacks of one test process share its control plane: close what earlier stacks left open
    (their Slack stand-in and worker are gone), so sweeps here never act on it."""
    Request.objects.exclude(state__in=TERMINAL_STATES).update(state=State.CANCELLED)
    EnvironmentLock.objects.all().delete()
    HomeViewer.objects.all().delete()  # people of an earlier stand-in's workspace, unknown to this one


@contextmanager
def running_stack(
    folder: Path,
    *,
    redis_url: str,
    postgres_admin_url: str,
    project: Path = EXAMPLE_PROJECT,
    config_text: str = CONFIG,
    target_env: dict[str, str] | None = None,
    starting_points: dict[str, list[tuple[str, ...]]] | None = None,
) -> Iterator[Stack]:
    """The whole system on ``project``: by default lite (SQLite, partly migrated) and pg
    (PostgreSQL, migrated).

    ``config_text`` may name other environments and target variables; ``target_env`` gives their
    values, and may bring its own ``E2E_PG_DATABASE_URL`` (the caller's database, left in place
    afterwards). ``starting_points`` lists the ``migrate`` arguments that prepare each environment.
    """
    forget_open_work()
    config_file = folder / "migrabot.toml"
    config_file.write_text(config_text.format(project=project, folder=folder))
    config = load_config(config_file)
    own_pg = "E2E_PG_DATABASE_URL" not in (target_env or {})
    pg_url = create_database(postgres_admin_url) if own_pg else target_env["E2E_PG_DATABASE_URL"]
    target_env = {"E2E_LITE_DATABASE_URL": f"sqlite:///{folder / 'lite.sqlite3'}", "E2E_PG_DATABASE_URL": pg_url} | (
        target_env or {}
    )
    os.environ.update(target_env)
    for name, steps in (starting_points or STARTING_POINTS).items():
        for step in steps:
            Target(config.environments[name]).manage("migrate", *step, "--noinput")

    celery_app.conf.broker_url = redis_url
    with SlackWebAPI(BOT_TOKEN, users={u: {"name": n} for u, n in PEOPLE.items()}, usergroups=GROUPS) as api:
        # Workers never talk to Slack: they get no token and no address of it.
        os.environ["MIGRABOT_BROKER_URL"] = redis_url
        os.environ.setdefault("MIGRABOT_MIN_UPDATE_SECONDS", MIN_UPDATE_SECONDS)
        worker_env = (
            {k: v for k, v in os.environ.items() if not k.startswith("SLACK_")}
            | target_env
            | {
                "MIGRABOT_CONFIG": str(config_file),
            }
        )
        client = WebClient(token=BOT_TOKEN, base_url=api.base_url)
        bot = build_app(config=config, client=client, signing_secret=SIGNING_SECRET, enqueue=enqueue)
        bot.start()
        try:
            with BackgroundServer(bot.app) as server:
                sender = SignedSender(server.url, SIGNING_SECRET, store=api.store, user_names=PEOPLE, api=api)
                chat = Chat(sender=sender, store=api.store, command="/migrate", names=PEOPLE)
                stack = Stack(chat, api, config, sender, target_env, project, worker_env, bot)
                stack.start_worker()
                yield stack
        finally:
            bot.close()
            stack.stop_worker()
            if own_pg:
                drop_database(postgres_admin_url, database_name(pg_url))


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer, postgres_admin_url: str
) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("e2e")
    with running_stack(folder, redis_url=redis_server.url, postgres_admin_url=postgres_admin_url) as stack:
        yield stack
