"""Slack is a view of the control plane: workers record, the bot's notifier tells, and no Slack
error, rate limit or outage ever touches a migration.

A generated project of 100 apps × 3 migrations (each app depends on the one before, so rolling
back ``app000`` to zero unapplies all 300 migrations), a real worker process over a real Redis,
the bot over HTTP, and the Slack stand-in enforcing Slack's limits, rate-limiting and going down.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from e2e_stack import Stack, approve_without_waiting, manage, running_stack
from services import RedisServer

from controlplane.models import AuditEvent, Request, State
from slacklocal.limits import Limit

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from generate_project import generate  # noqa: E402

CONFIG = """
[environments.big]
project = "{project}"
settings = "generated.settings"
backup_dir = "{folder}/backups/big"
env = {{ DATABASE_URL = "VIEW_BIG_DATABASE_URL" }}
[environments.big.policy]
readers = ["*"]
requesters = ["*"]
approvers = ["U0BOB"]
"""
APPS, MIGRATIONS = 100, 3


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory, redis_server: RedisServer, postgres_admin_url: str
) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("view")
    project = folder / "project"
    generate(project, apps=APPS, migrations=MIGRATIONS, data_every=1)  # only each app's table destroys data
    # The production throttle: at most one update of a message every 2 s.
    os.environ["MIGRABOT_MIN_UPDATE_SECONDS"] = "2"
    try:
        with running_stack(
            folder,
            redis_url=redis_server.url,
            postgres_admin_url=postgres_admin_url,
            project=project,
            config_text=CONFIG,
            target_env={"VIEW_BIG_DATABASE_URL": f"sqlite:///{folder / 'big.sqlite3'}"},
            starting_points={"big": [()]},
        ) as stack:
            yield stack
    finally:
        del os.environ["MIGRABOT_MIN_UPDATE_SECONDS"]


def rejected(stack: Stack, since: int) -> list[str]:
    """Slack's refusals of what the bot sent (rate limits aside), since call number ``since``."""
    return [
        f"{call.method}: {call.answer.get('error')}"
        for call in stack.api.calls[since:]
        if isinstance(call.answer, dict)
        and call.answer.get("ok") is False
        and call.answer.get("error") != "ratelimited"
    ]


def unapplied(request: Request) -> int:
    return AuditEvent.objects.filter(request=request, action="migration.unapplied").count()


def roll_back_everything(stack: Stack) -> Request:
    asked = stack.chat.say("rollback big app000 zero", user="U0ALICE")
    assert asked.request is not None and asked.request.state == State.AWAITING_APPROVAL, asked.thread
    return asked.request


def migrate_back(stack: Stack) -> None:
    manage(stack, "big", "migrate", "--noinput")


def test_a_100_app_showmigrations_is_posted_with_nothing_rejected(stack: Stack) -> None:
    since = len(stack.api.calls)
    shown = stack.chat.say("showmigrations big", user="U0ALICE")
    assert shown.request is not None and shown.request.state == State.SUCCEEDED
    assert "✅ done" in shown.thread
    assert rejected(stack, since) == []


def test_a_300_step_plan_is_posted_whole_counts_first_and_the_full_list_attached(stack: Stack) -> None:
    """100 of its 300 steps drop a table and the 200 others run code: more than a message can show, so the
    counts lead, the first of them are shown, the fold says how many more are in the file, and the file has
    all; so do the 99 apps the rollback cascades into, each with the dependency that forces it."""
    since = len(stack.api.calls)
    request = roll_back_everything(stack)
    thread = stack.chat.thread(request)
    assert rejected(stack, since) == []
    counts = thread.index(
        "300 steps · 🔥 drops 100 tables (0 rows) · 0 ⛔ irreversible · 0 ⚪ no-op reverse · 🐍 200 steps run code"
        " · ↪️ 99 other apps"
    )
    assert (
        counts
        < thread.index("↩️ unapply `app099.0001_initial` — 🔥 destroys data in `app099_item`")
        < thread.index("[Approve]")
    )
    assert "the full list is in `request-" in thread
    files = [
        file for message in stack.api.store.replies(stack.chat.channel, request.thread_ts) for file in message.files
    ]
    whole = next(file.content for file in files if file.name.endswith("-plan.txt"))
    assert whole.count("↩️ unapply") == 300 and "`app000.0001_initial` — 🔥 destroys data in `app000_item`" in whole
    assert "… and 96 more apps — the full list is in `request-" in thread
    assert whole.count("↪️ also unapplies 3 migrations in `app") == 99
    assert (
        "↪️ also unapplies 3 migrations in `app002`, because `app002.0001_initial` depends on `app001.0001_initial`,"
        " which depends on `app000.0001_initial`"
    ) in whole
    Request.objects.filter(pk=request.pk).update(state=State.CANCELLED)


def test_a_rate_limited_300_step_rollback_runs_whole_and_the_thread_tells_it_all(stack: Stack) -> None:
    request = roll_back_everything(stack)
    since = len(stack.api.calls)
    stack.api.set_rate_limits({"chat.update": Limit(1, per=5, burst=1)})  # about half the updates: 429
    try:
        approve_without_waiting(stack, request)
        done = stack.chat.settle(request.pk)
    finally:
        stack.api.set_rate_limits(False)
    assert done.state == State.SUCCEEDED, done.error
    assert unapplied(done) == APPS * MIGRATIONS
    thread = stack.chat.thread(done)
    assert "✅ done" in thread and "unapplied 300 migration(s)" in thread
    updates = [call for call in stack.api.calls[since:] if call.method == "chat.update"]
    limited = sum(1 for call in updates if isinstance(call.answer, dict) and call.answer.get("error") == "ratelimited")
    assert limited > 0, f"the stand-in never rate-limited {len(updates)} updates: the test proves nothing"
    running = AuditEvent.objects.get(request=done, action="request.running").created_at
    finished = AuditEvent.objects.get(request=done, action="request.succeeded").created_at
    # Updates are bounded by the run's duration (one a message every 2 s), not by its 600 events.
    assert len(updates) <= 3 * ((finished - running).total_seconds() / 2 + 10), len(updates)
    migrate_back(stack)


def test_slack_down_for_a_minute_mid_run_touches_nothing_and_the_thread_catches_up(stack: Stack) -> None:
    request = roll_back_everything(stack)
    approve_without_waiting(stack, request)
    deadline = time.monotonic() + 60
    while Request.objects.get(pk=request.pk).state != State.RUNNING and time.monotonic() < deadline:
        time.sleep(0.05)
    started = time.monotonic()
    outage = stack.api.outage(seconds=60, mode="down")
    while Request.objects.get(pk=request.pk).state == State.RUNNING and time.monotonic() - started < 55:
        time.sleep(0.1)
    ran_for = time.monotonic() - started
    assert Request.objects.get(pk=request.pk).state == State.SUCCEEDED, "the run waited on Slack"
    assert unapplied(request) == APPS * MIGRATIONS
    assert not outage.over  # all of it while Slack was unreachable
    while not outage.over:
        time.sleep(0.5)
    done = stack.chat.settle(request.pk)
    thread = stack.chat.thread(done)
    assert "✅ done" in thread and "unapplied 300 migration(s)" in thread
    assert ran_for < 55
    migrate_back(stack)
