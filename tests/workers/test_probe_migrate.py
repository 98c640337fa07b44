"""The probe's `migrate` and `connection`, driven through `workers.target.Target` as the worker does:
the probe must leave a database exactly where `manage.py migrate` would, stream its progress as it
happens, refuse an irreversible rollback before touching anything, and report a failing
migration by name. Real SQLite and PostgreSQL databases, a private copy of the example project.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from services import create_database, database_name, drop_database

from controlplane.errors import Refusal
from migrabot.config import Environment
from migrabot_probe.protocol import BOOTSTRAP
from workers.target import MigrationFailed, Target

PROBE = ("-c", BOOTSTRAP)  # the probe, one-shot, as `python -c …` (protocol.command_line)
URL_VARIABLE = "MIGRABOT_TEST_TARGET_DATABASE_URL"
FAILED_EXIT = 4

BROKEN_MIGRATION = '''
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("marketplace", "0006_alter_listing_title")]
    operations = [migrations.RunSQL("THIS IS NOT SQL;", migrations.RunSQL.noop)]
'''

# Waits until the test has seen this migration's apply_start: only a live stream lets it finish.
WAITING_MIGRATION = '''
import pathlib
import time

from django.db import migrations


def wait_for_the_reader(apps, schema_editor):
    deadline = time.monotonic() + 20
    while not pathlib.Path({seen!r}).exists():
        if time.monotonic() > deadline:
            raise RuntimeError("nobody saw apply_start while the migration ran")
        time.sleep(0.05)


class Migration(migrations.Migration):
    dependencies = [("marketplace", "0006_alter_listing_title")]
    operations = [migrations.RunPython(wait_for_the_reader, migrations.RunPython.noop)]
'''

# Registers an exit handler, as an error reporter's SDK does to flush what it captured.
EXIT_HANDLER_MIGRATION = '''
import atexit
import pathlib

from django.db import migrations


def report_at_exit(apps, schema_editor):
    atexit.register(pathlib.Path({flushed!r}).write_text, "flushed")


class Migration(migrations.Migration):
    dependencies = [("marketplace", "0006_alter_listing_title")]
    operations = [migrations.RunPython(report_at_exit, migrations.RunPython.noop)]
'''

TABLES = "import json; from django.db import connection; print(json.dumps(connection.introspection.table_names()))"
# What manage.py sees of a database, in one process: `showmigrations --list`, the content types
# post_migrate created, and the tables.
DATABASE_STATE = """
import io, json
from django.contrib.contenttypes.models import ContentType
from django.core.management import call_command
from django.db import connection
listing = io.StringIO()
call_command("showmigrations", "--list", stdout=listing)
tables = sorted(connection.introspection.table_names())
types = sorted(ContentType.objects.values_list("app_label", "model")) if "django_content_type" in tables else []
print(json.dumps({"showmigrations": listing.getvalue(), "content_types": types, "tables": tables}))
"""


@pytest.fixture(params=["sqlite", "postgres"])
def database_urls(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two empty databases of one vendor: one for the probe, one for manage.py."""
    if request.param == "sqlite":
        yield (f"sqlite:///{tmp_path / 'probe.sqlite3'}", f"sqlite:///{tmp_path / 'manage.sqlite3'}")
        return
    admin = request.getfixturevalue("postgres_admin_url")
    second = create_database(admin)
    yield (request.getfixturevalue("pg_database_url"), second)
    drop_database(admin, database_name(second))


@pytest.fixture
def database_url(database_urls: tuple[str, str]) -> str:
    return database_urls[0]


@pytest.fixture
def target(example_project: Path, database_url: str, monkeypatch: pytest.MonkeyPatch) -> Target:
    monkeypatch.setenv(URL_VARIABLE, database_url)
    environment = Environment(
        name="test", project=example_project, settings="backend.settings", env={"DATABASE_URL": URL_VARIABLE}
    )
    return Target(environment, timeout_seconds=120)


@pytest.fixture
def manage_ok(example_project: Path, database_url: str, manage: Callable) -> Callable[..., str]:
    """manage.py against the probe's database."""
    return lambda *args: ok(manage(example_project, database_url, *args)).stdout


def ok(completed: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert completed.returncode == 0, completed.stderr
    return completed


def shell_json(manage_ok: Callable[..., str], code: str) -> Any:
    return json.loads(manage_ok("shell", "-v", "0", "-c", code))


def events(documents: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(d["event"], f"{d['app']}.{d['name']}") for d in documents if "event" in d]


def test_migrate_leaves_the_database_where_manage_py_migrate_does(
    target: Target, database_urls: tuple[str, str], example_project: Path, manage: Callable
) -> None:
    managed_url = database_urls[1]
    # auth first, so that post_migrate's content types can be compared after every later step.
    steps = [("auth",), ("marketplace", "0004"), (), ("marketplace", "0005"), ("accounts", "0002"), ("media", "zero")]
    for args in steps:
        documents = list(target.stream("migrate", *args))
        ok(manage(example_project, managed_url, "migrate", *args))
        assert set(documents[-1]) == {"result"}
        probed, managed = (
            json.loads(ok(manage(example_project, url, "shell", "-v", "0", "-c", DATABASE_STATE)).stdout)
            for url in database_urls
        )
        assert probed == managed, args


def test_events_arrive_in_order_with_the_result_last(target: Target, manage_ok: Callable[..., str]) -> None:
    manage_ok("migrate", "marketplace", "0004")
    documents = list(target.stream("migrate", "media"))
    assert events(documents) == [
        (action, migration)
        for migration in ("marketplace.0005_backfill_order_totals", "marketplace.0006_alter_listing_title",
                          "media.0001_squashed_0002_image_alt_text", "media.0003_image_position", "media.0004_banner")
        for action in ("apply_start", "apply_success")
    ]
    assert all(d["fake"] is False for d in documents[:-1])
    assert all(d["seconds"] >= 0 for d in documents if d.get("event", "").endswith("_success"))
    assert documents[-1] == {"result": {"applied": [m for _, m in events(documents)[::2]], "unapplied": []}}

    rollback = list(target.stream("migrate", "marketplace", "0005"))
    assert events(rollback) == [
        ("unapply_start", "media.0004_banner"), ("unapply_success", "media.0004_banner"),
        ("unapply_start", "marketplace.0006_alter_listing_title"),
        ("unapply_success", "marketplace.0006_alter_listing_title"),
    ]
    unapplied = ["media.0004_banner", "marketplace.0006_alter_listing_title"]
    assert rollback[-1] == {"result": {"applied": [], "unapplied": unapplied}}


def test_events_stream_while_the_migration_runs(
    target: Target, manage_ok: Callable[..., str], example_project: Path, tmp_path: Path
) -> None:
    seen = tmp_path / "seen"
    migration = example_project / "marketplace" / "migrations" / "0007_wait.py"
    migration.write_text(WAITING_MIGRATION.format(seen=str(seen)))
    manage_ok("migrate", "marketplace", "0006")
    for document in target.stream("migrate", "marketplace"):
        if document.get("event") == "apply_start":
            seen.touch()
    assert document == {"result": {"applied": ["marketplace.0007_wait"], "unapplied": []}}


def test_the_projects_exit_handlers_run_when_the_probe_ends(
    target: Target, manage_ok: Callable[..., str], example_project: Path, tmp_path: Path
) -> None:
    """The probe ends without Python's slow teardown, but what a migration's code left to run at exit
    (an error reporter flushing its events) still runs."""
    flushed = tmp_path / "flushed"
    migration = example_project / "marketplace" / "migrations" / "0007_exit_handler.py"
    migration.write_text(EXIT_HANDLER_MIGRATION.format(flushed=str(flushed)))
    manage_ok("migrate", "marketplace", "0006")
    documents = list(target.stream("migrate", "marketplace"))
    assert documents[-1] == {"result": {"applied": ["marketplace.0007_exit_handler"], "unapplied": []}}
    assert flushed.read_text() == "flushed"


def test_fake_marks_migrations_without_touching_the_schema(target: Target, manage_ok: Callable[..., str]) -> None:
    documents = list(target.stream("migrate", "--fake", "marketplace", "0002"))
    assert documents[-1]["result"]["applied"] == [
        "accounts.0001_initial", "accounts.0002_customer_display_name",
        "marketplace.0001_initial", "marketplace.0002_order",
    ]
    assert all(d["fake"] is True for d in documents[:-1])
    assert "[X] 0002_order" in manage_ok("showmigrations", "marketplace")
    tables = shell_json(manage_ok, TABLES)
    assert "marketplace_order" not in tables and "accounts_customer" not in tables


def test_an_irreversible_rollback_is_refused_before_anything_runs(
    target: Target, manage_ok: Callable[..., str]
) -> None:
    manage_ok("migrate")
    before = (manage_ok("showmigrations", "--list"), sorted(shell_json(manage_ok, TABLES)))
    received: list[dict[str, Any]] = []
    with pytest.raises(Refusal) as refused:
        received.extend(target.stream("migrate", "marketplace", "0002"))
    assert received == []
    assert "marketplace.0005_backfill_order_totals (RunPython: Raw Python operation)" in str(refused.value)
    assert "IrreversibleError" in str(refused.value)
    assert (manage_ok("showmigrations", "--list"), sorted(shell_json(manage_ok, TABLES))) == before
    # Faking runs no operation, so the same rollback can be faked.
    assert list(target.stream("migrate", "--fake", "marketplace", "0002"))[-1]["result"]["unapplied"][-1] == (
        "marketplace.0003_order_open_index"
    )


def test_a_failing_migration_is_reported_by_name_after_the_events_before_it(
    target: Target, manage_ok: Callable[..., str], example_project: Path, database_url: str, run_in_project: Callable
) -> None:
    (example_project / "marketplace" / "migrations" / "0007_broken.py").write_text(BROKEN_MIGRATION)
    manage_ok("migrate", "marketplace", "0004")
    received: list[dict[str, Any]] = []
    with pytest.raises(MigrationFailed) as failed:
        received.extend(target.stream("migrate", "marketplace"))
    assert events(received) == [
        ("apply_start", "marketplace.0005_backfill_order_totals"),
        ("apply_success", "marketplace.0005_backfill_order_totals"),
        ("apply_start", "marketplace.0006_alter_listing_title"),
        ("apply_success", "marketplace.0006_alter_listing_title"),
        ("apply_start", "marketplace.0007_broken"),
    ]
    assert (failed.value.app, failed.value.name) == ("marketplace", "0007_broken")
    assert failed.value.error.split(":")[0] in ("OperationalError", "ProgrammingError")  # SQLite, PostgreSQL
    listing = manage_ok("showmigrations", "marketplace")
    assert "[X] 0006_alter_listing_title" in listing and "[ ] 0007_broken" in listing

    raw = run_in_project(example_project, database_url, *PROBE, "migrate", "marketplace")
    assert raw.returncode == FAILED_EXIT
    assert json.loads(raw.stdout.splitlines()[-1])["failed"]["name"] == "0007_broken"


def test_connection_reports_the_default_database(target: Target, database_url: str) -> None:
    details = target.probe("connection")
    if database_url.startswith("sqlite"):
        assert details == {"vendor": "sqlite", "name": database_url.removeprefix("sqlite:///"), "host": "", "port": "",
                           "user": "", "password": ""}
    else:
        url = urlsplit(database_url)
        assert details == {"vendor": "postgresql", "name": url.path.lstrip("/"), "host": url.hostname or "",
                           "port": str(url.port or ""), "user": url.username or "", "password": url.password or ""}
