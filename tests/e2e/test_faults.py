"""Faults, with real processes: a worker killed mid-rollback, Redis down or restarted, Slack
delivering a request twice, two rollbacks at once. Nothing is lost and nothing runs twice."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from e2e_stack import EXAMPLE_PROJECT, Stack, approve_without_waiting, manage, running_stack, tally_runs, wait_until
from fault_report import FaultReport
from freezegun import freeze_time
from services import RedisServer

from bot.housekeeping import sweep
from controlplane.locks import lock_current
from controlplane.models import AuditEvent, Request, State

PAUSE_SECONDS = 8
VISIBILITY_SECONDS = 5

SLOW = '''"""Unapplying this takes a while (a long data migration, say)."""
import time

from django.db import migrations


def pause(apps, schema_editor):
    """Wait, as a long backfill would."""
    time.sleep({pause})


class Migration(migrations.Migration):
    dependencies = [("media", "0004_banner")]
    operations = [migrations.RunPython(migrations.RunPython.noop, pause)]
'''
QUICK = '''from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("media", "0005_slow_reverse")]
    operations = [migrations.RunSQL("SELECT 1", "SELECT 1")]
'''


GUARDED = '''from django.db import migrations


def refuse_while_blocked(apps, schema_editor):
    """Unapplying fails while a blocker table exists (a cause an operator can fix)."""
    if "media_rollback_blocker" in schema_editor.connection.introspection.table_names():
        raise RuntimeError("media_rollback_blocker exists: drop it first")


class Migration(migrations.Migration):
    dependencies = [("media", "0006_quick")]
    operations = [migrations.RunPython(migrations.RunPython.noop, refuse_while_blocked)]
'''


@pytest.fixture(scope="module")
def redis(redis_server: RedisServer) -> RedisServer:
    """The suite's Redis: stopped and started again here, on the same port, so every producer
    and worker of the suite reconnects to it as they would in production."""
    return redis_server


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    redis: RedisServer,
    postgres_admin_url: str,
    module_fault_report: FaultReport,
) -> Iterator[Stack]:
    before = Request.objects.order_by("-id").values_list("id", flat=True).first() or 0
    folder = tmp_path_factory.mktemp("faults")
    project = Path(shutil.copytree(EXAMPLE_PROJECT, folder / "backend", ignore=shutil.ignore_patterns("__pycache__")))
    (project / "media/migrations/0005_slow_reverse.py").write_text(SLOW.format(pause=PAUSE_SECONDS))
    (project / "media/migrations/0006_quick.py").write_text(QUICK)
    (project / "media/migrations/0007_guarded.py").write_text(GUARDED)
    # Redis redelivers an unacknowledged message after the visibility timeout: short here, so the
    # "never re-run" tests wait past it instead of past nothing (production's is 12 h).
    os.environ["MIGRABOT_VISIBILITY_TIMEOUT_SECONDS"] = str(VISIBILITY_SECONDS)
    try:
        with running_stack(
            folder, redis_url=redis.url, postgres_admin_url=postgres_admin_url, project=project
        ) as stack:
            yield stack
            tally_runs(before, module_fault_report)
    finally:
        del os.environ["MIGRABOT_VISIBILITY_TIMEOUT_SECONDS"]


def thread_so_far(stack: Stack, request_id: int) -> str:
    request = Request.objects.get(pk=request_id)
    return stack.chat.thread(request) if request.thread_ts else ""


def runs_of(request: Request) -> int:
    return AuditEvent.objects.filter(request=request, action="request.running").count()


def test_worker_killed_mid_rollback_is_reported_interrupted_and_never_rerun(stack: Stack) -> None:
    manage(stack, "pg", "migrate", "--noinput")
    asked = stack.chat.say("rollback pg media 0004", user="U0ALICE")
    assert asked.request is not None and asked.request.state == State.AWAITING_APPROVAL, asked.thread
    approve_without_waiting(stack, asked.request)
    unapplied = AuditEvent.objects.filter(request=asked.request, action="migration.unapplied")
    wait_until(lambda: unapplied.filter(detail__migration="media.0006_quick").exists())
    stack.stop_worker(signal.SIGKILL)  # mid-way through unapplying 0005_slow_reverse

    with freeze_time(timezone.now() + timedelta(minutes=5), tick=True):  # the lock lapses unrenewed
        sweep(stack.bot.followup)
    request = stack.chat.settle(asked.request.pk)
    assert request.state == State.INTERRUPTED
    assert request.result == {"applied": [], "unapplied": ["media.0007_guarded", "media.0006_quick"]}
    thread = stack.chat.thread(request)
    assert "was interrupted" in thread and "unapplied `media.0006_quick`" in thread
    assert "may have changed the schema without `django_migrations`" in thread

    stack.start_worker()
    time.sleep(max(PAUSE_SECONDS, VISIBILITY_SECONDS) + 3)  # past the redelivery of an unacknowledged message
    assert runs_of(request) == 1
    assert Request.objects.get(pk=request.pk).state == State.INTERRUPTED
    listing = manage(stack, "pg", "showmigrations", "media")
    assert "[X] 0005_slow_reverse" in listing and "[ ] 0006_quick" in listing  # the kill stopped the probe too


def test_redis_down_when_a_command_arrives_loses_nothing(stack: Stack, redis: RedisServer) -> None:
    redis.stop()
    try:
        newest = Request.objects.order_by("-id").values_list("id", flat=True).first() or 0
        reply = stack.sender.slash_command("/migrate", "showmigrations lite", "U0ALICE", stack.chat.channel)
        assert reply.status == 200 and "received" in str(reply.body)
        request = Request.objects.get(id__gt=newest, requester="U0ALICE")
        wait_until(lambda: "queue is unreachable" in thread_so_far(stack, request.pk))
        assert Request.objects.get(pk=request.pk).state == State.RECEIVED
    finally:
        redis.start()
    sweep(stack.bot.followup, grace=timedelta(0))
    settled = stack.chat.settle(request.pk)
    assert settled.state == State.SUCCEEDED and runs_of(settled) == 1


def test_redis_restarted_with_messages_queued_runs_each_request_once(stack: Stack, redis: RedisServer) -> None:
    stack.stop_worker()
    texts = ["showmigrations lite", "plan lite", "showmigrations pg media"]
    newest = Request.objects.order_by("-id").values_list("id", flat=True).first() or 0
    for text in texts:
        assert stack.sender.slash_command("/migrate", text, "U0ALICE", stack.chat.channel).status == 200
    requests = list(Request.objects.filter(id__gt=newest).order_by("id"))
    wait_until(
        lambda: Request.objects.filter(pk__in=[r.pk for r in requests], enqueued_at__isnull=False).count() == len(texts)
    )
    redis.stop()  # no persistence: the queued messages are gone
    redis.start()
    stack.start_worker()
    sweep(stack.bot.followup, resend_after=timedelta(0))
    sweep(stack.bot.followup, resend_after=timedelta(0))  # a second pass sends duplicates: still one run
    for request in requests:
        settled = stack.chat.settle(request.pk)
        assert settled.state == State.SUCCEEDED and runs_of(settled) == 1


def test_slack_delivering_the_same_command_twice_makes_one_request(stack: Stack) -> None:
    newest = Request.objects.order_by("-id").values_list("id", flat=True).first() or 0
    body = "command=%2Fmigrate&text=showmigrations+lite&user_id=U0ALICE&channel_id=C0MIGRATIONS&trigger_id=retry-1.2.3"
    first, second = stack.sender.post(body), stack.sender.post(body)
    assert "received" in str(first.body) and "already received; not queued again" in str(second.body)
    assert Request.objects.filter(id__gt=newest).count() == 1


def test_two_rollbacks_at_once_on_one_environment_run_one_at_a_time(stack: Stack) -> None:
    manage(stack, "pg", "migrate", "--noinput")
    slow = stack.chat.say("rollback pg media 0004", user="U0ALICE").request
    other = stack.chat.say("rollback pg media 0005", user="U0ALICE").request
    approve_without_waiting(stack, slow)
    wait_until(lambda: Request.objects.get(pk=slow.pk).state == State.RUNNING)
    approve_without_waiting(stack, other, user="U0CAROL")
    blocked = stack.chat.settle(other.pk)
    assert blocked.state == State.REFUSED and f"locked by request #{slow.pk}" in stack.chat.thread(blocked)
    assert stack.chat.settle(slow.pk).state == State.SUCCEEDED


def test_a_failed_rollback_says_which_migration_and_the_same_command_works_once_fixed(stack: Stack) -> None:
    manage(stack, "lite", "migrate", "--noinput")
    first = stack.chat.say("rollback lite media 0006", user="U0ALICE")
    assert "🧪 Rehearsed on a copy" in first.thread
    # What the rehearsal could not know: the cause appears between the rehearsal and the run.
    blocker = sqlite3.connect(stack.target_env["E2E_LITE_DATABASE_URL"].removeprefix("sqlite:///"))
    blocker.execute("CREATE TABLE media_rollback_blocker (id integer)")
    blocker.commit()
    failed = stack.chat.click("approve", user="U0BOB", request=first.request)
    assert failed.request.state == State.FAILED
    assert "`media.0007_guarded` failed: RuntimeError: media_rollback_blocker exists: drop it first" in failed.thread
    assert "run the same command again: `rollback lite media 0006_quick`" in failed.thread
    assert "[X] 0007_guarded" in manage(stack, "lite", "showmigrations", "media")
    assert lock_current(environment="lite") is None  # released: nothing is stuck

    blocker.execute("DROP TABLE media_rollback_blocker")
    blocker.commit()
    blocker.close()
    again = stack.chat.say("rollback lite media 0006", user="U0ALICE")
    done = stack.chat.click("approve", user="U0BOB", request=again.request)
    assert done.request.state == State.SUCCEEDED, done.thread
    assert "[ ] 0007_guarded" in manage(stack, "lite", "showmigrations", "media")


def test_a_migration_deployed_after_the_worker_started_is_known_after_a_read(stack: Stack) -> None:
    folder = stack.config.environments["lite"].project / "media" / "migrations"
    (folder / "0008_deployed_later.py").write_text(QUICK.replace("0005_slow_reverse", "0007_guarded"))
    before = stack.chat.say("plan lite media 0008", user="U0ALICE")
    assert "Cannot find a migration matching `0008` from app `media`" in before.ack
    stack.chat.say("showmigrations lite media", user="U0ALICE")  # any read refreshes the catalog
    after = stack.chat.say("plan lite media 0008", user="U0ALICE")
    assert after.request is not None and after.request.state == State.SUCCEEDED
    assert "apply `media.0008_deployed_later`" in after.thread
