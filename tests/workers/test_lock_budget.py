"""The lock budget on PostgreSQL (policy lock_timeout, statement_timeout, lock_retries): a migration
queued behind a long transaction for its ACCESS EXCLUSIVE lock gives up in time — so the queries
queued behind it go on — is tried again only as an atomic migration that failed that way, and the
thread learns which session held the lock (pid, application, how long; never its query)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from migrabot.config import Environment, Policy
from workers.target import MigrationFailed, Target

URL_VARIABLE = "MIGRABOT_TEST_LOCK_DATABASE_URL"
TABLE = "marketplace_listing"  # unapplying marketplace.0006 alters it: ACCESS EXCLUSIVE
# Rolling marketplace back to 0005 unapplies media.0004_banner first (it depends on 0006, and its
# foreign key to the listing table needs that table's lock too), then marketplace.0006.
ROLLED_BACK = ["media.0004_banner", "marketplace.0006_alter_listing_title"]
NON_ATOMIC = '''from django.db import migrations


class Migration(migrations.Migration):
    atomic = False
    dependencies = [("marketplace", "0006_alter_listing_title")]
    operations = [migrations.RunSQL("ALTER TABLE marketplace_listing ADD COLUMN note integer", migrations.RunSQL.noop)]
'''


@pytest.fixture
def target(example_project: Path, pg_database_url: str, manage: Callable, monkeypatch: pytest.MonkeyPatch) -> Target:
    completed = manage(example_project, pg_database_url, "migrate")
    assert completed.returncode == 0, completed.stderr
    monkeypatch.setenv(URL_VARIABLE, pg_database_url)
    environment = Environment(
        name="lockpg", project=example_project, settings="backend.settings", env={"DATABASE_URL": URL_VARIABLE}
    )
    return Target(environment, timeout_seconds=120)


@pytest.fixture
def blocker(pg_database_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A report that keeps a transaction open after reading the table (ACCESS SHARE, held)."""
    connection = psycopg.connect(pg_database_url, application_name="nightly-report")
    connection.execute(f"SELECT count(*) FROM {TABLE} WHERE id > 0")
    yield connection
    connection.close()


def migrating(target: Target, *args: str) -> tuple[threading.Thread, list[dict[str, Any]], list[BaseException]]:
    events: list[dict[str, Any]] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            events.extend(target.stream("migrate", *args))
        except BaseException as error:  # reported to the test
            errors.append(error)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, events, errors


def waiting_for_a_lock(url: str) -> bool:
    with psycopg.connect(url, autocommit=True) as probe:
        row = probe.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()"
        ).fetchone()
    return bool(row and row[0])


def until(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met"
        time.sleep(0.05)


def test_a_queued_migration_gives_up_in_time_says_who_holds_the_lock_and_is_tried_again(
    target: Target, blocker: psycopg.Connection[Any], pg_database_url: str
) -> None:
    thread, events, errors = migrating(target, "--lock-timeout=1s", "--lock-retries=3", "--", "marketplace", "0005")
    until(lambda: waiting_for_a_lock(pg_database_url))
    # A query queued behind the migration's ACCESS EXCLUSIVE request is answered once it gives up.
    started = time.monotonic()
    with psycopg.connect(pg_database_url) as reader:
        reader.execute(f"SELECT count(*) FROM {TABLE}").fetchone()
    assert time.monotonic() - started < 1 + 1, "lock_timeout + 1 s"
    until(lambda: any(e.get("event") == "lock_timeout" for e in events))
    blocker.commit()  # the report ends: the next attempt gets its lock
    thread.join(60)
    assert not errors, errors
    waits = [e for e in events if e.get("event") == "lock_timeout"]
    assert f"{waits[0]['app']}.{waits[0]['name']}" in ROLLED_BACK
    assert waits[0]["attempt"] == 1 and waits[0]["retries"] == 3
    (held,) = waits[0]["blockers"]
    assert held["pid"] == blocker.info.backend_pid and held["application"] == "nightly-report"
    assert "count(*)" not in json.dumps(events), "never the blocker's query"
    assert events[-1]["result"]["unapplied"] == ROLLED_BACK


def test_with_no_retries_left_the_run_fails_naming_the_blocker_and_nothing_happened(
    target: Target, blocker: psycopg.Connection[Any]
) -> None:
    before = target.probe("showmigrations", "marketplace")
    with pytest.raises(MigrationFailed) as failed:
        list(target.stream("migrate", "--lock-timeout=500ms", "--lock-retries=0", "--", "marketplace", "0005"))
    assert f"{failed.value.app}.{failed.value.name}" in ROLLED_BACK
    assert "lock timeout" in failed.value.error and "(nightly-report)" in failed.value.error
    blocker.rollback()
    assert target.probe("showmigrations", "marketplace") == before


def test_a_non_atomic_migration_never_gets_the_short_lock_budget(
    target: Target, blocker: psycopg.Connection[Any], example_project: Path, pg_database_url: str
) -> None:
    (example_project / "marketplace" / "migrations" / "0007_note.py").write_text(NON_ATOMIC)
    thread, events, errors = migrating(target, "--lock-timeout=500ms", "--lock-retries=0", "--", "marketplace")
    until(lambda: waiting_for_a_lock(pg_database_url))
    time.sleep(1.5)  # three times the short budget: a slow statement waits on
    assert thread.is_alive() and not errors
    blocker.commit()
    thread.join(60)
    assert not errors, errors
    assert not [e for e in events if e.get("event") == "lock_timeout"]
    assert events[-1]["result"]["applied"] == ["marketplace.0007_note"]


def test_production_gets_a_five_second_lock_timeout_by_default() -> None:
    def budget(production: bool, **policy: Any) -> list[str]:
        environment = Environment(name="e", project=Path("."), settings="s", production=production,
                                  policy=Policy(**policy))
        return environment.lock_budget()

    assert "--lock-timeout=5s" in budget(True)
    assert "--lock-timeout=0" in budget(False)
    assert "--lock-timeout=2s" in budget(True, lock_timeout="2s")
    assert "--lock-retries=3" in budget(True)
