"""``migrate --measure`` (migrabot_probe.measure): on PostgreSQL each success event says which
statement newly took which lock on which table, which tables were rewritten and how big they were
before — real migrations of the example project on a real database. On SQLite, or without the
flag, the events are what they always were; measuring changes no result a migration reads, never
hides a statement's error, and never fails a migration when it cannot measure.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from psycopg import sql

from migrabot.config import Environment
from workers.target import MigrationFailed, Target

URL_VARIABLE = "MIGRABOT_TEST_MEASURE_DATABASE_URL"
ACCESS_EXCLUSIVE = "ACCESS EXCLUSIVE"

# Data for the marketplace: 3 customers, 5 listings, an open order of 2 of each listing by each
# customer. Few rows, so that autovacuum never changes a table's size while a test measures it.
CUSTOMERS = """INSERT INTO accounts_customer (email, name, display_name, created_at)
SELECT 'c' || i || '@example.com', 'Customer ' || i, '', now() FROM generate_series(1, 3) i"""
LISTINGS = """INSERT INTO marketplace_listing (seller_id, title, price_cents, created_at)
SELECT (SELECT min(id) FROM accounts_customer), 'Listing ' || i, 100 * i, now() FROM generate_series(1, 5) i"""
ORDERS = """INSERT INTO marketplace_order (buyer_id, listing_id, quantity, status, placed_at{totals})
SELECT c.id, l.id, 2, 'open', now(){zero} FROM accounts_customer c CROSS JOIN marketplace_listing l"""

# Reads through a statement the measuring looks after (one touching django_migrations), then
# changes data, then the schema: its read must be its own, its data change is "(data changes)".
READING_MIGRATION = '''
from django.db import migrations, models


def read_then_write(apps, schema_editor):
    with schema_editor.connection.cursor() as cursor:
        cursor.execute("SELECT name FROM django_migrations WHERE app = %s ORDER BY name", ["marketplace"])
        names = [name for (name,) in cursor.fetchall()]
    if names[-1] != "0006_alter_listing_title":
        raise RuntimeError(f"read {names!r} from django_migrations")
    apps.get_model("accounts", "Customer").objects.update(display_name="checked")


class Migration(migrations.Migration):
    dependencies = [("accounts", "0002_customer_display_name"), ("marketplace", "0006_alter_listing_title")]
    operations = [
        migrations.RunPython(read_then_write, migrations.RunPython.noop),
        migrations.AddField("listing", "note", models.CharField(default="", max_length=20)),
    ]
'''

BROKEN_MIGRATION = '''
from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("marketplace", "0006_alter_listing_title")]
    operations = [migrations.RunSQL("THIS IS NOT SQL;", migrations.RunSQL.noop)]
'''


def target_on(project: Path, url: str, monkeypatch: pytest.MonkeyPatch) -> Target:
    monkeypatch.setenv(URL_VARIABLE, url)
    environment = Environment(
        name="measure", project=project, settings="backend.settings", env={"DATABASE_URL": URL_VARIABLE}
    )
    return Target(environment, timeout_seconds=120)


@pytest.fixture
def target(example_project: Path, pg_database_url: str, monkeypatch: pytest.MonkeyPatch) -> Target:
    return target_on(example_project, pg_database_url, monkeypatch)


@pytest.fixture
def manage_ok(example_project: Path, pg_database_url: str, manage: Callable[..., Any]) -> Callable[..., None]:
    def run(*args: str) -> None:
        completed = manage(example_project, pg_database_url, *args)
        assert completed.returncode == 0, completed.stderr

    return run


def execute(url: str, *statements: str) -> list[tuple[Any, ...]]:
    """Run ``statements`` in autocommit; the last one's rows."""
    with psycopg.connect(url, autocommit=True) as connection:
        for statement in statements:
            cursor = connection.execute(statement)
        return cursor.fetchall() if cursor.description else []


def sizes(url: str, *tables: str) -> dict[str, int]:
    rows = execute(url, f"SELECT {', '.join(f'pg_total_relation_size({t!r})' for t in tables)}")
    return dict(zip(tables, rows[0], strict=True))


def filenode(url: str, table: str) -> int:
    return int(execute(url, f"SELECT pg_relation_filenode('{table}')")[0][0])


def successes(documents: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each success event by migration, after checking the run ended with its result."""
    assert "result" in documents[-1], documents[-1]
    return {f"{d['app']}.{d['name']}": d for d in documents if d.get("event", "").endswith("_success")}


def measured(target: Target, *args: str) -> dict[str, Any]:
    """``migrate --measure args…``: each migration's "measured" (which every success event has)."""
    return {migration: event["measured"] for migration, event in successes(list(
        target.stream("migrate", "--measure", *args))).items()}


def test_adding_a_column_takes_access_exclusive_and_rewrites_nothing(target: Target, pg_database_url: str) -> None:
    plain = successes(list(target.stream("migrate", "marketplace", "0003")))
    assert plain and not [event for event in plain.values() if "measured" in event]  # not asked for
    execute(pg_database_url, CUSTOMERS, LISTINGS, ORDERS.format(totals="", zero=""))
    before, node = sizes(pg_database_url, "marketplace_order"), filenode(pg_database_url, "marketplace_order")

    assert measured(target, "marketplace", "0004") == {"marketplace.0004_order_total_cents": {
        "statements": [{
            "sql": 'ALTER TABLE "marketplace_order" ADD COLUMN "total_cents" integer DEFAULT 0 NOT NULL '
                   'CHECK ("total_cents" >= 0)',
            "locks": [{"table": "marketplace_order", "mode": ACCESS_EXCLUSIVE}],
        }],
        "rewrote": [],
        "sizes": before,
    }}
    assert filenode(pg_database_url, "marketplace_order") == node


def test_narrowing_a_column_rewrites_the_table_and_widening_it_does_not(
    target: Target, manage_ok: Callable[..., None], pg_database_url: str
) -> None:
    manage_ok("migrate", "marketplace", "0005")
    execute(pg_database_url, CUSTOMERS, LISTINGS)
    before, node = sizes(pg_database_url, "marketplace_listing"), filenode(pg_database_url, "marketplace_listing")
    title = 'ALTER TABLE "marketplace_listing" ALTER COLUMN "title" TYPE varchar({})'
    locked = [{"table": "marketplace_listing", "mode": ACCESS_EXCLUSIVE}]

    # varchar(120) → varchar(200) is binary-compatible: PostgreSQL keeps the table's file.
    assert measured(target, "marketplace", "0006") == {"marketplace.0006_alter_listing_title": {
        "statements": [{"sql": title.format(200), "locks": locked}], "rewrote": [], "sizes": before,
    }}
    assert filenode(pg_database_url, "marketplace_listing") == node

    # Back to varchar(120): every row is checked and written anew.
    before = sizes(pg_database_url, "marketplace_listing")
    assert measured(target, "marketplace", "0005") == {"marketplace.0006_alter_listing_title": {
        "statements": [{"sql": title.format(120), "locks": locked}], "rewrote": ["marketplace_listing"],
        "sizes": before,
    }}
    assert filenode(pg_database_url, "marketplace_listing") != node


def test_dropping_a_table_reports_its_lock_and_those_on_the_tables_it_referenced(
    target: Target, manage_ok: Callable[..., None], pg_database_url: str
) -> None:
    manage_ok("migrate")
    tables = ("marketplace_listing", "media_banner", "media_image")
    before = sizes(pg_database_url, *tables)
    assert measured(target, "media", "0003") == {"media.0004_banner": {
        "statements": [{
            "sql": 'DROP TABLE "media_banner" CASCADE',
            "locks": [{"table": table, "mode": ACCESS_EXCLUSIVE} for table in tables],
        }],
        "rewrote": [],
        "sizes": before,
    }}


def test_a_data_migration_reads_its_own_results_and_its_locks_are_data_changes(
    target: Target, manage_ok: Callable[..., None], pg_database_url: str, example_project: Path
) -> None:
    (example_project / "marketplace" / "migrations" / "0007_read_then_write.py").write_text(READING_MIGRATION)
    manage_ok("migrate", "marketplace", "0004")
    execute(pg_database_url, CUSTOMERS, LISTINGS, ORDERS.format(totals=", total_cents", zero=", 0"))
    before = sizes(pg_database_url, "accounts_customer", "marketplace_listing", "marketplace_order")

    runs = measured(target, "marketplace")

    # The backfill read each order with its listing, then saved it: the totals are right.
    assert execute(pg_database_url, "SELECT count(*) FROM marketplace_order o JOIN marketplace_listing l "
                                    "ON l.id = o.listing_id WHERE o.total_cents = l.price_cents * 2") == [(15,)]
    assert execute(pg_database_url, "SELECT DISTINCT display_name FROM accounts_customer") == [("checked",)]
    assert runs["marketplace.0005_backfill_order_totals"] == {
        "statements": [{"sql": "(data changes)", "locks": [
            {"table": "marketplace_listing", "mode": "ACCESS SHARE"},
            {"table": "marketplace_order", "mode": "ROW EXCLUSIVE"},
        ]}],
        "rewrote": [],
        "sizes": {table: size for table, size in before.items() if table != "accounts_customer"},
    }
    # The data change is its own entry, not the ALTER TABLE's that followed it.
    assert runs["marketplace.0007_read_then_write"] == {
        "statements": [
            {"sql": "(data changes)", "locks": [{"table": "accounts_customer", "mode": "ROW EXCLUSIVE"}]},
            {"sql": 'ALTER TABLE "marketplace_listing" ADD COLUMN "note" varchar(20) DEFAULT \'\' NOT NULL',
             "locks": [{"table": "marketplace_listing", "mode": ACCESS_EXCLUSIVE}]},
        ],
        "rewrote": [],
        "sizes": {table: size for table, size in before.items() if table != "marketplace_order"},
    }


def test_a_failing_statement_still_fails_its_migration(
    target: Target, manage_ok: Callable[..., None], example_project: Path
) -> None:
    (example_project / "marketplace" / "migrations" / "0007_broken.py").write_text(BROKEN_MIGRATION)
    manage_ok("migrate", "marketplace", "0005")
    received: list[dict[str, Any]] = []
    with pytest.raises(MigrationFailed) as failed:
        received.extend(target.stream("migrate", "--measure", "marketplace"))
    assert (failed.value.app, failed.value.name) == ("marketplace", "0007_broken")
    assert failed.value.error.startswith("ProgrammingError: syntax error")
    (done,) = [event for event in received if event["event"] == "apply_success"]
    assert done["name"] == "0006_alter_listing_title" and done["measured"]["statements"]


@pytest.fixture
def unmeasurable_url(postgres_admin_url: str, pg_database_url: str) -> Iterator[str]:
    """The test database, for a role of its own that may migrate it but not read pg_locks."""
    role = f"migrabot_measure_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(postgres_admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'unmeasured'").format(sql.Identifier(role)))
    with psycopg.connect(pg_database_url, autocommit=True) as database:
        database.execute(sql.SQL("GRANT CREATE, USAGE ON SCHEMA public TO {}").format(sql.Identifier(role)))
        database.execute("REVOKE SELECT ON pg_catalog.pg_locks FROM PUBLIC")  # this database's view only
    url = urlsplit(pg_database_url)
    yield urlunsplit(url._replace(netloc=f"{role}:unmeasured@{url.hostname}:{url.port or 5432}"))
    with psycopg.connect(pg_database_url, autocommit=True) as database:
        database.execute(sql.SQL("DROP OWNED BY {}").format(sql.Identifier(role)))
    with psycopg.connect(postgres_admin_url, autocommit=True) as admin:
        admin.execute(sql.SQL("DROP ROLE {}").format(sql.Identifier(role)))


def test_a_look_that_fails_measures_nothing_and_the_migration_goes_on(
    example_project: Path, unmeasurable_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = target_on(example_project, unmeasurable_url, monkeypatch)
    runs = measured(target, "marketplace", "0004")  # each ALTER TABLE is followed by a look, in its transaction
    assert list(runs)[-1] == "marketplace.0004_order_total_cents"
    assert all(run == {"statements": [], "rewrote": [], "sizes": {}} for run in runs.values())
    columns = execute(unmeasurable_url, "SELECT column_name FROM information_schema.columns "
                                        "WHERE table_name = 'marketplace_order' AND column_name = 'total_cents'")
    assert columns == [("total_cents",)]


def test_on_sqlite_the_events_are_unchanged(
    example_project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = target_on(example_project, f"sqlite:///{tmp_path / 'target.sqlite3'}", monkeypatch)
    done = successes(list(target.stream("migrate", "--measure", "marketplace", "0004")))
    assert "marketplace.0004_order_total_cents" in done
    assert all(set(event) == {"event", "app", "name", "fake", "seconds"} for event in done.values())
