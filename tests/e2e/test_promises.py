"""The promises under attack, with real processes: an approval covers exactly the code that runs,
a task delivered again never runs twice or unlocks the run it doubles, and no request is left
half-way or misreported when its worker goes away.

A real Redis, real worker processes (two at once where the attack needs them), the bot over HTTP
with real signatures, SQLite and PostgreSQL targets on a private copy of the example project
whose migration files the tests edit.
"""

from __future__ import annotations

import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from e2e_stack import EXAMPLE_PROJECT, Stack, manage, running_stack, tally_runs, wait_until
from fault_report import FaultReport
from freezegun import freeze_time
from services import RedisServer

from bot.housekeeping import sweep
from controlplane.models import AuditEvent, Backup, EnvironmentLock, Request, State
from migrabot.broker import enqueue

CONFIG = """
[environments.lite]
project = "{project}"
settings = "backend.settings"
backup_dir = "{folder}/backups/lite"
env = {{ DATABASE_URL = "PROMISE_LITE_DATABASE_URL" }}
[environments.lite.policy]
readers = ["*"]
requesters = ["*"]
approvers = ["U0BOB"]

[environments.dev]
project = "{project}"
settings = "backend.settings"
backup_dir = "{folder}/backups/dev"
env = {{ DATABASE_URL = "PROMISE_DEV_DATABASE_URL" }}
[environments.dev.policy]
readers = ["*"]
requesters = ["*"]

[environments.prod]
project = "{project}"
settings = "backend.settings"
production = true
backup_dir = "{folder}/backups/prod"
env = {{ DATABASE_URL = "E2E_PG_DATABASE_URL" }}
[environments.prod.policy]
readers = ["*"]
requesters = ["U0ALICE"]
approvers = ["U0BOB"]
approval_for = ["migrate"]
"""

# The reverse SQL is longer than the 40 characters Django's description keeps, so an edit after
# them is invisible in every description: only the file's content tells.
NOTES = '''from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("accounts", "0004_customer_created_index_remove_profile_website")]
    operations = [
        migrations.RunSQL(
            "CREATE TABLE accounts_note (id integer PRIMARY KEY, body text)",
            "DROP TABLE accounts_note /* the notes table goes away again */",
        )
    ]
'''
TAMPERED = NOTES.replace(" goes away again */", " */; DELETE FROM accounts_customer")
# Importing this takes a while (a heavy module, say): planning it is slow enough to be caught.
SLOW_TO_LOAD = '''import time

from django.db import migrations

time.sleep(2)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0005_notes")]
    operations = [migrations.RunSQL("SELECT 1", "SELECT 1")]
'''
# A forward data migration that takes a while: long enough to sample the lock while it runs.
SLOW_FORWARD = '''import time

from django.db import migrations


def pause(apps, schema_editor):
    time.sleep(3)


class Migration(migrations.Migration):
    dependencies = [("accounts", "0005_notes")]
    operations = [migrations.RunPython(pause, migrations.RunPython.noop)]
'''


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    redis_server: RedisServer,
    postgres_admin_url: str,
    module_fault_report: FaultReport,
) -> Iterator[Stack]:
    before = Request.objects.order_by("-id").values_list("id", flat=True).first() or 0
    folder = tmp_path_factory.mktemp("promises")
    project = Path(
        shutil.copytree(EXAMPLE_PROJECT, folder / "backend", ignore=shutil.ignore_patterns("__pycache__", "*.sqlite3"))
    )
    (project / "accounts/migrations/0005_notes.py").write_text(NOTES)
    target_env = {
        "PROMISE_LITE_DATABASE_URL": f"sqlite:///{folder / 'lite.sqlite3'}",
        "PROMISE_DEV_DATABASE_URL": f"sqlite:///{folder / 'dev.sqlite3'}",
    }
    with running_stack(
        folder,
        redis_url=redis_server.url,
        postgres_admin_url=postgres_admin_url,
        project=project,
        config_text=CONFIG,
        target_env=target_env,
        starting_points={"lite": [()], "dev": [()], "prod": [("accounts", "0004")]},
    ) as stack:
        yield stack
        tally_runs(before, module_fault_report)


def customers(stack: Stack, env: str) -> int:
    path = stack.target_env[f"PROMISE_{env.upper()}_DATABASE_URL"].removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT count(*) FROM accounts_customer").fetchone()[0])


def add_customer(stack: Stack, env: str) -> None:
    path = stack.target_env[f"PROMISE_{env.upper()}_DATABASE_URL"].removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        db.execute(
            "INSERT INTO accounts_customer (email, name, display_name, created_at) "
            f"VALUES ('{time.monotonic_ns()}@example.com', 'A', 'A', '2026-01-01')"
        )


def notes_file(stack: Stack) -> Path:
    return stack.project / "accounts/migrations/0005_notes.py"


# --- 1. the approval binds to the code and SQL that run ------------------------------------------


def test_a_reverse_sql_edited_after_the_approval_request_is_refused_naming_the_file(stack: Stack) -> None:
    add_customer(stack, "lite")
    before = customers(stack, "lite")
    asked = stack.chat.say("rollback lite accounts 0004", user="U0ALICE")
    assert asked.request is not None and asked.request.state == State.AWAITING_APPROVAL, asked.thread
    notes_file(stack).write_text(TAMPERED)  # while the rollback waits for approval
    try:
        clicked = stack.chat.click("approve", user="U0BOB", request=asked.request)
    finally:
        notes_file(stack).write_text(NOTES)
    assert clicked.request.state == State.REFUSED, clicked.thread
    assert "`accounts/migrations/0005_notes.py` changed since the plan was approved" in clicked.thread
    assert "Make a new request" in clicked.thread
    assert customers(stack, "lite") == before
    assert "[X] 0005_notes" in manage(stack, "lite", "showmigrations", "accounts")
    assert not Backup.objects.filter(request=clicked.request).exists()


def test_a_production_migrate_behind_approval_runs_only_the_approved_file(stack: Stack) -> None:
    asked = stack.chat.say("migrate prod accounts 0005", user="U0ALICE")
    assert asked.request is not None and asked.request.state == State.AWAITING_APPROVAL, asked.thread
    notes_file(stack).write_text(NOTES.replace("body text", "body text, secret text"))
    try:
        clicked = stack.chat.click("approve", user="U0BOB", request=asked.request)
    finally:
        notes_file(stack).write_text(NOTES)
    assert clicked.request.state == State.REFUSED, clicked.thread
    assert "`accounts/migrations/0005_notes.py` changed since the plan was approved" in clicked.thread
    assert "[ ] 0005_notes" in manage(stack, "prod", "showmigrations", "accounts")


def test_the_probe_refuses_code_other_than_the_approved_right_before_it_runs(stack: Stack, tmp_path: Path) -> None:
    """The last check is in the process that imported the code it runs: a file edited after the
    worker's own re-plan (during the backup, say) is refused there."""
    target = stack.config.environments["lite"]
    manage(stack, "lite", "migrate", "accounts", "0004")
    expected = tmp_path / "approved.json"
    expected.write_text(
        '{"steps": [["accounts", "0005_notes", false, "accounts/migrations/0005_notes.py", "'
        + "0" * 64
        + '"]], "sql_sha256": ""}'
    )
    from migrabot_probe.protocol import BOOTSTRAP
    from workers.target import Target

    process = subprocess.run(
        [
            sys.executable,
            "-c",
            BOOTSTRAP,
            "migrate",
            "--expect",
            str(expected),
            "--",
            "accounts",
        ],
        cwd=target.project,
        env=Target(target).environ(),
        capture_output=True,
        text=True,
    )
    assert process.returncode == 3, process.stderr
    assert "`accounts/migrations/0005_notes.py` changed since the plan was approved" in process.stdout
    assert "[ ] 0005_notes" in manage(stack, "lite", "showmigrations", "accounts")
    manage(stack, "lite", "migrate", "accounts")


# --- 3. at most one run per request and per environment ------------------------------------------


def start_second_worker(stack: Stack) -> subprocess.Popen[str]:
    worker = subprocess.Popen(
        [sys.executable, "-m", "migrabot.cli", "worker", "--env", "dev"],
        env=stack.worker_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    ready = threading.Event()

    def follow() -> None:
        assert worker.stdout is not None
        for line in worker.stdout:
            if " ready." in line:
                ready.set()

    threading.Thread(target=follow, daemon=True).start()
    assert ready.wait(60), "the second worker did not start"
    return worker


def test_a_redelivered_write_runs_once_and_its_lock_is_held_throughout(stack: Stack, fault_report: FaultReport) -> None:
    """Two worker processes get copy after copy of one `migrate` task while it runs: exactly one
    copy runs, and whenever its migrations run its environment holds its lock."""
    (stack.project / "accounts/migrations/0006_slow.py").write_text(SLOW_FORWARD)
    manage(stack, "dev", "migrate", "accounts", "0005")
    second = start_second_worker(stack)
    queue = stack.config.environments["dev"].celery_queue
    try:
        asked = stack.sender.slash_command("/migrate", "migrate dev accounts", "U0ALICE", stack.chat.channel)
        assert asked.status == 200
        request = Request.objects.filter(environment="dev").order_by("-id").first()
        assert request is not None
        samples, unlocked, stop = 0, 0, threading.Event()

        def redeliver() -> None:  # the same message, again and again, as Redis redelivers it
            while not stop.is_set():
                enqueue(request.pk, queue=queue)
                time.sleep(0.005)

        flood = threading.Thread(target=redeliver, daemon=True)
        flood.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            state = Request.objects.get(pk=request.pk).state
            if state == State.RUNNING:  # (a claim to backing_up comes a moment before its lock)
                samples += 1
                unlocked += not EnvironmentLock.objects.filter(environment="dev", request_id=request.pk).exists()
            if state in (State.SUCCEEDED, State.FAILED, State.REFUSED):
                break
            time.sleep(0.01)
        stop.set()
        flood.join()
        settled = Request.objects.get(pk=request.pk)
        assert settled.state == State.SUCCEEDED, settled.error
        assert samples > 50 and unlocked == 0, f"{unlocked} of {samples} samples showed no lock"
        claims = AuditEvent.objects.filter(request=request)
        assert claims.filter(action="request.backing_up").count() == 1
        assert claims.filter(action="migration.applied", detail__migration="accounts.0006_slow").count() == 1
        fault_report.tally(duplicate_runs=int(claims.filter(action="request.running").count() > 1))
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(30)
        (stack.project / "accounts/migrations/0006_slow.py").unlink()
        manage(stack, "dev", "migrate", "accounts", "0005")


# --- 6. no request is stuck or misreported --------------------------------------------------------


def test_a_worker_killed_while_planning_leaves_no_request_planning(stack: Stack) -> None:
    (stack.project / "accounts/migrations/0006_slow.py").write_text(SLOW_TO_LOAD)
    stack.stop_worker()
    try:
        asked = stack.sender.slash_command("/migrate", "migrate dev accounts", "U0ALICE", stack.chat.channel)
        assert asked.status == 200
        request = Request.objects.filter(environment="dev").order_by("-id").first()
        assert request is not None
        stack.start_worker()
        wait_until(lambda: Request.objects.get(pk=request.pk).state != State.RECEIVED)
        stack.stop_worker(signal.SIGKILL)  # while planning: loading the migrations takes 2 s
        assert Request.objects.get(pk=request.pk).state == State.PLANNING
        sweep(stack.bot.followup)
        assert Request.objects.get(pk=request.pk).state == State.PLANNING  # its lease is still live
        with freeze_time(timezone.now() + timedelta(minutes=3), tick=True):
            sweep(stack.bot.followup)
        failed = stack.chat.settle(request.pk)
        assert failed.state == State.FAILED, failed.state
        thread = stack.chat.thread(failed)
        assert "the worker went away while planning" in thread and "Nothing was changed" in thread
        assert "may have changed the schema" not in thread
    finally:
        (stack.project / "accounts/migrations/0006_slow.py").unlink(missing_ok=True)
        if stack.worker is None:
            stack.start_worker()


def test_a_slow_read_is_not_taken_for_a_dead_one(stack: Stack) -> None:
    """A read whose worker is alive keeps its lease, however long it takes: the sweep leaves it
    alone (today's main marked any read older than 30 s 'interrupted', with a false schema warning)."""
    asked = stack.chat.say("showmigrations lite", user="U0ALICE")
    assert asked.request is not None and asked.request.state == State.SUCCEEDED
    # A read in flight, claimed and renewed by a live worker a moment ago, but started 40 s ago.
    Request.objects.filter(pk=asked.request.pk).update(
        state=State.RUNNING, lease_expires_at=timezone.now() + timedelta(seconds=60)
    )
    with freeze_time(timezone.now() + timedelta(seconds=40), tick=True):
        sweep(stack.bot.followup)
    assert Request.objects.get(pk=asked.request.pk).state == State.RUNNING
    Request.objects.filter(pk=asked.request.pk).update(state=State.SUCCEEDED)
