"""Rollback, migrate, fake and restore from Slack, end to end: the plan in the thread, an approval
by someone else, a verified backup recorded, the run with progress, the final state — and every
refusal on the way (self-approval, not an approver, irreversible, plan changed, lock held,
backup failed). Real worker process, real Redis, real PostgreSQL and SQLite, real pg_dump."""

from __future__ import annotations

import hashlib
import time
from datetime import timedelta
from pathlib import Path

import psycopg
from django.utils import timezone
from e2e_stack import Stack, manage
from freezegun import freeze_time

from bot.housekeeping import sweep
from controlplane.models import Approval, AuditEvent, Backup, Request


def fully_migrated(stack: Stack, env: str) -> None:
    manage(stack, env, "migrate", "--noinput")


def pg_snapshot(stack: Stack) -> dict[str, int]:
    """Every table of the pg target with its row count: the schema and the data, roughly."""
    with psycopg.connect(stack.target_env["E2E_PG_DATABASE_URL"]) as connection:
        tables = [
            row[0]
            for row in connection.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
        ]
        return {table: connection.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0] for table in tables}


def seed_rows(stack: Stack) -> None:
    manage(stack, "pg", "seed_demo")


def test_rollback_needs_another_persons_approval_and_a_verified_backup(stack: Stack) -> None:
    fully_migrated(stack, "pg")
    seed_rows(stack)
    asked = stack.chat.say("rollback pg marketplace 0005", user="U0ALICE")
    request = asked.request
    assert request is not None and request.state == "awaiting_approval"
    assert "↩️ unapply `media.0004_banner` — 🔥 destroys data in `media_banner`" in asked.thread
    assert "↩️ unapply `marketplace.0006_alter_listing_title`" in asked.thread
    assert "`media_banner` (3 rows)" in asked.thread
    assert "[Approve] [Deny]" in asked.thread
    # The risk leads (counts, then why another app moves), then the steps, the buttons, and the SQL file.
    thread = asked.thread
    assert (
        thread.index("2 steps · 🔥 drops 1 table (3 rows) · 0 ⛔ irreversible · 0 ⚪ no-op reverse · ↪️ 1 other app")
        < thread.index(
            "↪️ also unapplies 1 migration in `media`, because `media.0004_banner` depends on "
            "`marketplace.0006_alter_listing_title`"
        )
        < thread.index("↩️ unapply `media.0004_banner`")
        < thread.index("[Approve] [Deny]")
        < thread.index("📎 SQL this plan runs")
    ), thread

    own = stack.chat.click("approve", user="U0ALICE", request=request)
    assert "You requested this; someone else has to approve it." in own.thread
    outsider = stack.chat.click("approve", user="U0MALLORY", request=request)
    assert "@mallory may not approve requests on `pg`" in outsider.thread
    assert Request.objects.get(pk=request.pk).state == "awaiting_approval"

    done = stack.chat.click("approve", user="U0BOB", request=request)
    assert done.request is not None and done.request.state == "succeeded", done.thread
    assert "✅ Approved by @bob" in done.thread and "[Approve]" not in done.thread
    backup = Backup.objects.get(request=request)
    assert backup.verified and backup.sha256 == hashlib.sha256(Path(backup.path).read_bytes()).hexdigest()
    assert f"🗄️ Backup #{backup.pk} recorded" in done.thread
    assert "↩️ unapplied `media.0004_banner`" in done.thread
    listing = manage(stack, "pg", "showmigrations", "marketplace", "media")
    assert "[ ] 0006_alter_listing_title" in listing and "[ ] 0004_banner" in listing
    assert backup.migration_state["apps"], "the state at backup time is recorded"
    order = list(AuditEvent.objects.filter(request=request).values_list("action", flat=True))
    assert order.index("request.approved") < order.index("backup.recorded") < order.index("request.running")


def test_irreversible_rollback_is_refused_before_anything_runs(stack: Stack) -> None:
    fully_migrated(stack, "lite")
    before = manage(stack, "lite", "showmigrations", "--list")
    refused = stack.chat.say("rollback lite marketplace 0002", user="U0ALICE")
    assert refused.request is not None and refused.request.state == "refused"
    assert "`marketplace.0005_backfill_order_totals` cannot be unapplied" in refused.thread
    assert manage(stack, "lite", "showmigrations", "--list") == before


def test_deny_asks_why_replaces_the_buttons_with_the_reason_and_runs_nothing(stack: Stack) -> None:
    fully_migrated(stack, "lite")
    asked = stack.chat.say("rollback lite media 0003", user="U0ALICE")
    clicked = stack.chat.click("deny", user="U0CAROL", request=asked.request)
    assert clicked.request.state == "awaiting_approval" and "[Approve] [Deny]" in clicked.thread  # a dialog asks why
    denied = stack.chat.deny(user="U0CAROL", reason="not before the <!channel> demo", request=asked.request)
    assert denied.request.state == "denied"
    assert "⛔ Denied by @carol: `not before the <!channel> demo` · " in denied.thread
    assert "[Approve]" not in denied.thread
    assert Approval.objects.get(request=asked.request).reason == "not before the <!channel> demo"
    assert AuditEvent.objects.get(request=asked.request, action="request.denied").detail["reason"] == (
        "not before the <!channel> demo"
    )
    assert not Backup.objects.filter(request=asked.request).exists()


def test_a_changed_plan_is_refused_at_run_time(stack: Stack) -> None:
    fully_migrated(stack, "lite")
    asked = stack.chat.say("rollback lite media 0003", user="U0ALICE")
    manage(stack, "lite", "migrate", "media", "0003")  # someone moved the database meanwhile
    refused = stack.chat.click("approve", user="U0BOB", request=asked.request)
    assert refused.request.state == "refused"
    assert "the migrations to run changed since the plan was approved" in refused.thread
    assert not Backup.objects.filter(request=asked.request).exists()


def test_a_locked_environment_refuses_a_write_when_it_is_asked_for(stack: Stack) -> None:
    """Nothing is planned and nobody is asked to approve: the refusal names who, why and since when."""
    fully_migrated(stack, "lite")
    locked = stack.chat.say("lock lite release freeze", user="U0CAROL")
    assert "`lite` is locked" in locked.ack
    try:
        asked = stack.chat.say("rollback lite media 0003", user="U0ALICE")
        assert asked.request is None, "a request was recorded on a locked environment"
        assert "`lite` is locked by <@U0CAROL> since " in asked.ack and "release freeze" in asked.ack
        assert "Nothing was run" in asked.ack
        assert stack.chat.say("showmigrations lite media", user="U0ALICE").request is not None  # reads go on
    finally:
        assert "`lite` is unlocked." in stack.chat.say("unlock lite", user="U0ALICE").ack


def test_a_lock_taken_after_the_plan_blocks_the_run_and_names_the_holder(stack: Stack) -> None:
    fully_migrated(stack, "lite")
    asked = stack.chat.say("rollback lite media 0003", user="U0ALICE")
    assert asked.request is not None and asked.request.state == "awaiting_approval"
    stack.chat.say("lock lite release freeze", user="U0CAROL")
    blocked = stack.chat.click("approve", user="U0BOB", request=asked.request)
    assert blocked.request.state == "refused"
    assert "locked by @carol" in blocked.thread and "release freeze" in blocked.thread
    assert "`lite` is unlocked." in stack.chat.say("unlock lite", user="U0ALICE").ack
    assert "[X] 0004_banner" in manage(stack, "lite", "showmigrations", "media")


def test_a_failed_backup_stops_the_run_with_nothing_touched(stack: Stack, tmp_path: Path) -> None:
    fully_migrated(stack, "lite")
    backup_dir = Path(stack.config.environments["lite"].backup_dir)
    backup_dir.parent.mkdir(parents=True, exist_ok=True)
    moved = backup_dir.with_name("lite-moved")
    if backup_dir.exists():
        backup_dir.rename(moved)
    backup_dir.write_text("not a folder")  # the backup cannot be written
    try:
        asked = stack.chat.say("rollback lite media 0003", user="U0ALICE")
        failed = stack.chat.click("approve", user="U0BOB", request=asked.request)
    finally:
        backup_dir.unlink()
        if moved.exists():
            moved.rename(backup_dir)
    assert failed.request.state == "failed"
    assert "The backup failed, so nothing was touched" in failed.thread
    assert "[X] 0004_banner" in manage(stack, "lite", "showmigrations", "media")


def test_restore_round_trip_brings_schema_and_rows_back(stack: Stack) -> None:
    fully_migrated(stack, "pg")
    seed_rows(stack)
    before = pg_snapshot(stack)
    rollback = stack.chat.say("rollback pg media 0003", user="U0ALICE")
    stack.chat.click("approve", user="U0BOB", request=rollback.request)
    backup = Backup.objects.get(request=rollback.request)
    assert "media_banner" not in pg_snapshot(stack)

    asked = stack.chat.say(f"restore pg {backup.pk}", user="U0ALICE")
    assert f"♻️ restore backup #{backup.pk}" in asked.thread
    restored = stack.chat.click("approve", user="U0CAROL", request=asked.request)
    assert restored.request.state == "succeeded", restored.thread
    assert f"Restored backup #{backup.pk}" in restored.thread
    assert Backup.objects.filter(request=asked.request).count() == 1  # the state before the restore
    assert pg_snapshot(stack) == before


def test_migrate_forward_and_fake(stack: Stack) -> None:
    manage(stack, "lite", "migrate", "media", "0003")
    forward = stack.chat.say("migrate lite media", user="U0ALICE")  # lite's policy needs no approval
    assert forward.request.state == "succeeded", forward.thread
    assert "✅ applied `media.0004_banner`" in forward.thread
    backwards = stack.chat.say("migrate lite media 0003", user="U0ALICE")
    assert backwards.request.state == "refused" and "Use `rollback lite media 0003_image_position`" in backwards.thread

    fake = stack.chat.say("fake lite media 0003", user="U0ALICE")
    assert fake.request.state == "awaiting_approval"
    assert "`media_banner`" in fake.thread
    faked = stack.chat.click("approve", user="U0BOB", request=fake.request)
    assert faked.request.state == "succeeded", faked.thread
    assert "(fake) `media.0004_banner`" in faked.thread
    assert "[ ] 0004_banner" in manage(stack, "lite", "showmigrations", "media")
    assert Backup.objects.filter(request=fake.request).count() == 1
    manage(stack, "lite", "migrate", "media", "--fake")  # the table is still there: record it again


def test_an_unanswered_request_expires_and_the_thread_says_so(stack: Stack) -> None:
    fully_migrated(stack, "lite")
    asked = stack.chat.say("rollback lite media 0003", user="U0ALICE")
    with freeze_time(timezone.now() + timedelta(minutes=61), tick=True):  # lite's window: 60 minutes
        sweep(stack.bot.followup)
    expired = stack.chat.settle(asked.request.pk)
    thread = stack.chat.thread(expired)
    assert expired.state == "expired"
    assert f"Request #{expired.pk} has expired" in thread and "⌛ Expired" in thread and "[Approve]" not in thread
    late = stack.chat.click("approve", user="U0BOB", request=expired)
    assert late.ack == "(there is no approve button to click)"


def test_a_channel_the_bot_cannot_post_in_ends_the_request_and_tells_the_requester_privately(stack: Stack) -> None:
    """Slack's real answer for a private channel the bot was not invited to: `channel_not_found`.
    The requester hears it through the command's response_url (which works there); nothing runs."""
    fully_migrated(stack, "lite")
    stack.api.set_channel("G0SECRET", "private")
    newest = Request.objects.order_by("-id").values_list("id", flat=True).first() or 0
    reply = stack.sender.slash_command("/migrate", "rollback lite media 0003", "U0ALICE", "G0SECRET")
    assert reply.status == 200
    request = Request.objects.get(id__gt=newest, channel="G0SECRET")
    deadline = time.monotonic() + 30
    while Request.objects.get(pk=request.pk).state not in ("refused",) and time.monotonic() < deadline:
        time.sleep(0.05)
    ended = Request.objects.get(pk=request.pk)
    assert ended.state == "refused" and "cannot post in G0SECRET" in ended.error
    told = stack.api.store.wait_for(
        lambda: [e for e in stack.api.store.ephemerals(user="U0ALICE", channel="G0SECRET") if "/invite" in e.text]
    )
    assert f"request #{request.pk} was stopped and nothing ran" in told[0].text
    time.sleep(1)  # the worker's plan, if it got that far, must not become an approval request
    assert Request.objects.get(pk=request.pk).state == "refused"
    assert not Backup.objects.filter(request=request).exists()
    assert not AuditEvent.objects.filter(request=request, action="request.running").exists()


def test_envs_shows_who_approves_and_the_lock(stack: Stack) -> None:
    stack.chat.say("lock lite release freeze", user="U0CAROL")
    try:
        listed = stack.chat.say("envs", user="U0ALICE").ack
        lite = next(line for line in listed.splitlines() if line.startswith("• `lite`"))
        assert "approve: U0BOB, U0CAROL (1 needed)" in lite
        assert "🔒 locked by <@U0CAROL> since " in lite and "release freeze" in lite
        pg = next(line for line in listed.splitlines() if line.startswith("• `pg`"))
        assert "locked" not in pg
    finally:
        stack.chat.say("unlock lite", user="U0ALICE")
