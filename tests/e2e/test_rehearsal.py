"""Rehearsals end to end: every write's plan is run on a throwaway copy before anyone approves it.
Real worker process, real Redis, real PostgreSQL (copies restored from a real pg_dump) and SQLite.

The target is the example project with three more migrations: ``accounts.0005_pause`` (its reverse
sleeps for ``MIGRATION_PAUSE_SECONDS``, which only the ``slow`` environment's ``rehearsal_env``
sets), ``media.0005_fragile`` (its reverse raises NameError) and ``media.0006_scratch`` (a table
made and dropped by SQL), so rolling ``media`` back to 0004 fails half-way.
"""

from __future__ import annotations

import shutil
import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from e2e_stack import CONFIG, EXAMPLE_PROJECT, Stack, manage, running_stack, tally_runs, wait_until
from fault_report import FaultReport
from services import RedisServer

from controlplane.models import Backup, Request

PAUSE = '''import os
import time

from django.db import migrations


def pause(apps, schema_editor):
    time.sleep(float(os.environ.get("MIGRATION_PAUSE_SECONDS", "0")))


class Migration(migrations.Migration):
    dependencies = [("accounts", "0004_customer_created_index_remove_profile_website")]
    operations = [migrations.RunPython(migrations.RunPython.noop, pause)]
'''
FRAGILE = '''from django.db import migrations


def restore_legacy_banners(apps, schema_editor):
    legacy_banners.restore()  # noqa: F821 - the bug a rehearsal finds before anyone approves


class Migration(migrations.Migration):
    dependencies = [("media", "0004_banner")]
    operations = [migrations.RunPython(migrations.RunPython.noop, restore_legacy_banners)]
'''
SCRATCH = '''from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("media", "0005_fragile")]
    operations = [migrations.RunSQL("CREATE TABLE media_scratch (id integer)", "DROP TABLE media_scratch")]
'''
REHEARSAL_CONFIG = CONFIG + """
[environments.slow]
description = "The pg database; rehearsals pause in accounts.0005's reverse"
project = "{project}"
settings = "backend.settings"
backup_dir = "{folder}/backups/slow"
env = {{ DATABASE_URL = "E2E_PG_DATABASE_URL" }}
rehearsal_env = {{ MIGRATION_PAUSE_SECONDS = "30" }}
[environments.slow.policy]
readers = ["*"]
requesters = ["*"]
approvers = ["U0BOB"]

[environments.partial]
description = "The pg database, above its rehearse_max_bytes"
project = "{project}"
settings = "backend.settings"
backup_dir = "{folder}/backups/partial"
env = {{ DATABASE_URL = "E2E_PG_DATABASE_URL" }}
[environments.partial.policy]
readers = ["*"]
requesters = ["*"]
approvers = ["U0BOB"]
rehearse_max_bytes = 1

[environments.unrehearsed]
description = "SQLite, rehearse = false"
project = "{project}"
settings = "backend.settings"
backup_dir = "{folder}/backups/unrehearsed"
env = {{ DATABASE_URL = "E2E_OFF_DATABASE_URL" }}
[environments.unrehearsed.policy]
readers = ["*"]
requesters = ["*"]
approvers = ["U0BOB"]
rehearse = false
"""


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    redis_server: RedisServer,
    postgres_admin_url: str,
    module_fault_report: FaultReport,
) -> Iterator[Stack]:
    before = Request.objects.order_by("-id").values_list("id", flat=True).first() or 0
    folder = tmp_path_factory.mktemp("rehearsal")
    project = Path(
        shutil.copytree(EXAMPLE_PROJECT, folder / "backend", ignore=shutil.ignore_patterns("__pycache__", "*.sqlite3"))
    )
    (project / "accounts/migrations/0005_pause.py").write_text(PAUSE)
    (project / "media/migrations/0005_fragile.py").write_text(FRAGILE)
    (project / "media/migrations/0006_scratch.py").write_text(SCRATCH)
    with running_stack(
        folder,
        redis_url=redis_server.url,
        postgres_admin_url=postgres_admin_url,
        project=project,
        config_text=REHEARSAL_CONFIG,
        target_env={"E2E_OFF_DATABASE_URL": f"sqlite:///{folder / 'off.sqlite3'}"},
        starting_points={"lite": [()], "pg": [()], "unrehearsed": [()]},
    ) as stack:
        manage(stack, "pg", "seed_demo")
        manage(stack, "lite", "seed_demo")
        yield stack
        tally_runs(before, module_fault_report)


def pg_snapshot(stack: Stack) -> dict[str, int]:
    """Every table of the pg target with its row count."""
    with psycopg.connect(stack.target_env["E2E_PG_DATABASE_URL"]) as connection:
        tables = [r[0] for r in connection.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        return {table: connection.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0] for table in sorted(tables)}


def scratch_databases(stack: Stack) -> list[str]:
    with psycopg.connect(stack.target_env["E2E_PG_DATABASE_URL"]) as connection:
        found = connection.execute("SELECT datname FROM pg_database WHERE datname LIKE 'migrabot\\_rehearsal\\_%'")
        return sorted(row[0] for row in found)


def sqlite_copies(stack: Stack) -> list[Path]:
    folder = Path(stack.target_env["E2E_LITE_DATABASE_URL"].removeprefix("sqlite:///")).parent
    return sorted(folder.glob(".migrabot-rehearsal-*"))


def test_a_rollback_whose_reverse_raises_is_refused_before_approval_and_nothing_changes(stack: Stack) -> None:
    before, history = pg_snapshot(stack), manage(stack, "pg", "showmigrations", "--list")
    asked = stack.chat.say("rollback pg media 0004", user="U0ALICE")
    request = asked.request
    assert request is not None and request.state == "refused", asked.thread
    assert "❌ Rehearsal failed at `media.0005_fragile` (after `media.0006_scratch` was unapplied)" in asked.thread
    assert "NameError: name 'legacy_banners' is not defined" in asked.thread
    assert "Nothing ran on `pg`" in asked.thread
    assert "[Approve]" not in asked.thread, "a plan that failed its rehearsal is never offered"
    assert pg_snapshot(stack) == before and manage(stack, "pg", "showmigrations", "--list") == history
    assert not Backup.objects.filter(request=request).exists()
    assert scratch_databases(stack) == []


def test_on_sqlite_too_the_failure_shows_first_and_the_copy_is_gone(stack: Stack) -> None:
    history = manage(stack, "lite", "showmigrations", "--list")
    asked = stack.chat.say("rollback lite media 0004", user="U0ALICE")
    assert asked.request is not None and asked.request.state == "refused", asked.thread
    assert "❌ Rehearsal failed at `media.0005_fragile`" in asked.thread
    assert manage(stack, "lite", "showmigrations", "--list") == history
    assert "media_scratch" in sqlite_tables(stack), "the real database still has what the copy lost"
    assert sqlite_copies(stack) == []


def sqlite_tables(stack: Stack) -> set[str]:
    path = stack.target_env["E2E_LITE_DATABASE_URL"].removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_a_good_rollback_shows_its_rehearsal_then_runs(stack: Stack) -> None:
    asked = stack.chat.say("rollback pg accounts 0003", user="U0ALICE")
    request = asked.request
    assert request is not None and request.state == "awaiting_approval", asked.thread
    assert "🧪 Rehearsed on a copy: 2 of 2 steps succeeded in" in asked.thread
    assert "accounts.0004_customer_created_index_remove_profile_website" in asked.thread
    rehearsal = request.plan["rehearsal"]
    assert [s["migration"] for s in rehearsal["steps"]] == [
        "accounts.0005_pause", "accounts.0004_customer_created_index_remove_profile_website"
    ]
    # The thread's plan: the rehearsal right under its title, above the risks and the steps.
    plan_text = asked.thread.split("Plan for #", 1)[1]
    assert plan_text.index("🧪 Rehearsed") < plan_text.index("↩️ unapply")
    # What the copy measured: the step's locks, on which tables, and how long it took there.
    assert "🔒 ACCESS EXCLUSIVE on `accounts_customer`" in asked.thread and " on the copy" in asked.thread
    assert scratch_databases(stack) == []

    done = stack.chat.click("approve", user="U0BOB", request=request)
    assert done.request is not None and done.request.state == "succeeded", done.thread
    assert "[ ] 0004_customer_created_index_remove_profile_website" in manage(stack, "pg", "showmigrations", "accounts")
    manage(stack, "pg", "migrate", "accounts", "--noinput")  # as it was, for the tests after this one


def test_a_run_refuses_when_the_history_changed_since_the_rehearsal(stack: Stack) -> None:
    asked = stack.chat.say("rollback lite accounts 0004", user="U0ALICE")
    assert asked.request is not None and asked.request.state == "awaiting_approval", asked.thread
    manage(stack, "lite", "migrate", "media", "0005", "--fake", "--noinput")  # someone changed the history
    try:
        done = stack.chat.click("approve", user="U0BOB", request=asked.request)
        assert done.request is not None and done.request.state == "refused", done.thread
        assert "migration history changed since" in done.thread
        assert "[X] 0005_pause" in manage(stack, "lite", "showmigrations", "accounts")
    finally:
        manage(stack, "lite", "migrate", "media", "--fake", "--noinput")


def ask_without_waiting(stack: Stack, text: str, user: str = "U0ALICE") -> Request:
    """Type the command and return its request at once (it goes on being planned)."""
    newest = Request.objects.order_by("-id").values_list("id", flat=True).first() or 0
    assert stack.sender.slash_command("/migrate", text, user, stack.chat.channel).status == 200
    wait_until(lambda: Request.objects.filter(id__gt=newest, requester=user).exists(), timeout=10)
    return Request.objects.filter(id__gt=newest, requester=user).order_by("id").first()  # type: ignore[return-value]


def wait_for_scratch(stack: Stack, count: int = 1) -> list[str]:
    wait_until(lambda: len(scratch_databases(stack)) >= count, timeout=60)
    return scratch_databases(stack)


def test_a_cancel_during_the_rehearsal_stops_it_and_drops_the_copy(stack: Stack) -> None:
    started = time.monotonic()
    request = ask_without_waiting(stack, "rollback slow accounts 0004")
    wait_for_scratch(stack)
    stack.chat.say(f"cancel {request.pk}", user="U0ALICE")
    wait_until(lambda: not scratch_databases(stack), timeout=20)
    assert time.monotonic() - started < 25, "the rehearsal was stopped, not waited out (it pauses 30 s)"
    request.refresh_from_db()
    assert request.state == "cancelled"
    assert "[X] 0005_pause" in manage(stack, "slow", "showmigrations", "accounts")


def test_two_requests_on_one_environment_rehearse_on_two_copies(stack: Stack) -> None:
    first = ask_without_waiting(stack, "rollback slow accounts 0004", "U0ALICE")
    second = ask_without_waiting(stack, "rollback slow accounts 0004", "U0BOB")
    names = wait_for_scratch(stack, 2)
    assert len(names) == 2 and {f"_r{first.pk}_" in n or f"_r{second.pk}_" in n for n in names} == {True}
    for request in (first, second):
        stack.chat.say(f"cancel {request.pk}", user="U0ALICE" if request == first else "U0BOB")
    wait_until(lambda: not scratch_databases(stack), timeout=20)


def test_a_copy_left_by_a_killed_worker_is_dropped_when_a_worker_starts(stack: Stack) -> None:
    ask_without_waiting(stack, "rollback slow accounts 0004")
    wait_for_scratch(stack)
    stack.stop_worker(signal.SIGKILL)
    assert scratch_databases(stack), "nothing cleaned up after a SIGKILL"
    stack.start_worker()
    wait_until(lambda: not scratch_databases(stack), timeout=30)
    assert "[X] 0005_pause" in manage(stack, "slow", "showmigrations", "accounts")


def test_a_partial_copy_says_so_in_the_plan(stack: Stack) -> None:
    asked = stack.chat.say("rollback partial accounts 0003", user="U0ALICE")
    request = asked.request
    assert request is not None and request.state == "awaiting_approval", asked.thread
    assert "🧪 Rehearsed on a copy: 2 of 2 steps succeeded" in asked.thread
    assert "the copy held the whole schema but the rows of only" in asked.thread
    assert "a failure that depends on other tables' rows may not show" in asked.thread
    assert request.plan["rehearsal"]["partial"] and "django_migrations" in request.plan["rehearsal"]["kept"]
    stack.chat.say(f"cancel {request.pk}", user="U0ALICE")


def test_with_rehearse_false_the_plan_says_not_rehearsed(stack: Stack) -> None:
    asked = stack.chat.say("rollback unrehearsed accounts 0004", user="U0ALICE")
    request = asked.request
    assert request is not None and request.state == "awaiting_approval", asked.thread
    assert "Not rehearsed" in asked.thread and "🧪" not in asked.thread
    stack.chat.say(f"cancel {request.pk}", user="U0ALICE")


def test_a_write_that_needs_no_approval_runs_only_after_its_rehearsal(stack: Stack) -> None:
    manage(stack, "lite", "migrate", "accounts", "0004", "--noinput")
    done = stack.chat.say("migrate lite accounts", user="U0ALICE")
    assert done.request is not None and done.request.state == "succeeded", done.thread
    assert done.thread.index("🧪 Rehearsed on a copy: 1 of 1 steps succeeded") < done.thread.index(
        "✅ applied `accounts.0005_pause`"
    )
    assert "[X] 0005_pause" in manage(stack, "lite", "showmigrations", "accounts")
    assert sqlite_copies(stack) == []
