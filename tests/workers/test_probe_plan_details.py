"""What the probe's `plan` tells an approver beyond `migrate --plan`: which steps destroy data,
which reverses are no-ops, the tables each step touches with their current row counts, and the
SQL — each step's byte for byte what `manage.py sqlmigrate [--backwards]` prints. Real Django
CLI against real SQLite and PostgreSQL databases, on a private copy of the example project.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from migrabot_probe.protocol import BOOTSTRAP

PROBE = ("-c", BOOTSTRAP)  # the probe, one-shot, as `python -c …` (protocol.command_line)
SQUASHED = "0001_squashed_0002_image_alt_text"

TABLES = "import json; from django.db import connection; print(json.dumps(connection.introspection.table_names()))"

# One customer with two orders on one listing, an image and a banner.
SEED_ROWS = """
from accounts.models import Customer
from marketplace.models import Listing, Order
from media.models import Banner, Image
seller = Customer.objects.create(email="s@example.com", name="Seller")
listing = Listing.objects.create(title="Lamp", price_cents=1200, seller=seller)
Order.objects.create(listing=listing, buyer=seller)
Order.objects.create(listing=listing, buyer=seller, quantity=2)
image = Image.objects.create(listing=listing, path="lamp.jpg")
Banner.objects.create(listing=listing, image=image, headline="Bright")
"""

# The example has no migration whose reverse is a no-op; this one is added to the private copy only.
NOOP_REVERSE_MIGRATION = '''
from django.db import migrations


def touch(apps, schema_editor):
    """Nothing to undo."""


class Migration(migrations.Migration):
    dependencies = [("marketplace", "0006_alter_listing_title")]
    operations = [
        migrations.RunPython(touch, migrations.RunPython.noop),
        migrations.RunSQL("SELECT 1;", migrations.RunSQL.noop),
    ]
'''


def ok(completed: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert completed.returncode == 0, completed.stderr
    return completed


@pytest.fixture
def probe_plan(example_project: Path, database_url: str, run_in_project: Callable) -> Callable[..., dict[str, Any]]:
    return lambda *args: json.loads(ok(run_in_project(example_project, database_url, *PROBE, "plan", *args)).stdout)


@pytest.fixture
def manage_ok(example_project: Path, database_url: str, manage: Callable) -> Callable[..., str]:
    return lambda *args: ok(manage(example_project, database_url, *args)).stdout


def operations(plan: dict[str, Any], key: str) -> list[tuple[str, str, Any]]:
    return [(step["name"], op["type"], op[key]) for step in plan["steps"] for op in step["operations"]]


def test_a_rollback_shows_what_it_destroys_and_the_rows_at_stake(
    probe_plan: Callable[..., dict[str, Any]], manage_ok: Callable[..., str]
) -> None:
    manage_ok("migrate")
    manage_ok("shell", "-c", SEED_ROWS)
    plan = probe_plan("marketplace", "0003")
    assert operations(plan, "destroys_data") == [
        ("0004_banner", "CreateModel", True),  # drops media_banner
        ("0006_alter_listing_title", "AlterField", False),
        ("0005_backfill_order_totals", "RunPython", False),  # unknown: only its description says
        ("0004_order_total_cents", "AddField", True),  # drops marketplace_order.total_cents
    ]
    assert operations(plan, "tables") == [
        ("0004_banner", "CreateModel", ["media_banner"]),
        ("0006_alter_listing_title", "AlterField", ["marketplace_listing"]),
        ("0005_backfill_order_totals", "RunPython", []),
        ("0004_order_total_cents", "AddField", ["marketplace_order"]),
    ]
    assert plan["tables"] == [
        {"table": "media_banner", "exists": True, "rows": 1},
        {"table": "marketplace_listing", "exists": True, "rows": 1},
        {"table": "marketplace_order", "exists": True, "rows": 2},
    ]
    assert not any(op["noop_reverse"] for step in plan["steps"] for op in step["operations"])


def test_removing_a_field_destroys_data_forwards_but_not_backwards(
    probe_plan: Callable[..., dict[str, Any]], manage_ok: Callable[..., str]
) -> None:
    manage_ok("migrate", "accounts", "0003")
    forwards = probe_plan("accounts")
    assert operations(forwards, "destroys_data") == [
        ("0004_customer_created_index_remove_profile_website", "RemoveField", True),
        ("0004_customer_created_index_remove_profile_website", "AddIndex", False),
    ]
    manage_ok("migrate", "accounts")
    backwards = probe_plan("accounts", "0003")
    # Re-adding website brings back an empty column, not the data.
    assert [op for _, _, op in operations(backwards, "destroys_data")] == [False, False]
    assert operations(backwards, "tables") == [
        ("0004_customer_created_index_remove_profile_website", "RemoveField", ["accounts_profile"]),
        ("0004_customer_created_index_remove_profile_website", "AddIndex", ["accounts_customer"]),
    ]


def test_a_fresh_plan_names_every_table_that_migrate_then_creates(
    probe_plan: Callable[..., dict[str, Any]], manage_ok: Callable[..., str]
) -> None:
    before = probe_plan()
    assert all(not t["exists"] and t["rows"] is None for t in before["tables"])
    manage_ok("migrate")
    existing = set(json.loads(manage_ok("shell", "-v", "0", "-c", TABLES)))
    planned = {t["table"] for t in before["tables"]}
    assert planned <= existing
    # Every model table (auth's many-to-many tables included) and nothing else: the
    # names come from the migrations' states, not from a database.
    assert existing - planned == {"django_migrations"}


def test_noop_reverses_are_marked(
    probe_plan: Callable[..., dict[str, Any]], manage_ok: Callable[..., str], example_project: Path
) -> None:
    (example_project / "marketplace" / "migrations" / "0007_noop_reverse.py").write_text(NOOP_REVERSE_MIGRATION)
    manage_ok("migrate")
    assert operations(probe_plan("marketplace", "0006"), "noop_reverse") == [
        ("0007_noop_reverse", "RunPython", True),
        ("0007_noop_reverse", "RunSQL", True),
    ]
    # A real reverse (clear_display_names) is not a no-op; forwards nothing is.
    assert operations(probe_plan("accounts", "0002"), "noop_reverse") == [
        ("0004_customer_created_index_remove_profile_website", "RemoveField", False),
        ("0004_customer_created_index_remove_profile_website", "AddIndex", False),
        ("0003_fill_display_names", "RunPython", False),
    ]
    manage_ok("migrate", "marketplace", "0006")
    assert operations(probe_plan("marketplace"), "noop_reverse") == [
        ("0007_noop_reverse", "RunPython", False),
        ("0007_noop_reverse", "RunSQL", False),
    ]


def test_a_fake_plan_shows_whether_the_schema_already_matches(
    probe_plan: Callable[..., dict[str, Any]], manage_ok: Callable[..., str]
) -> None:
    manage_ok("migrate")
    manage_ok("migrate", "--fake", "marketplace", "0001")  # history behind, schema ahead
    fake = probe_plan("--fake", "marketplace", "0002")
    assert fake["fake"] is True
    assert [(s["name"], s["backwards"]) for s in fake["steps"]] == [("0002_order", False)]
    assert fake["tables"] == [{"table": "marketplace_order", "exists": True, "rows": 0}]
    assert {**probe_plan("marketplace", "0002"), "fake": True} == fake


# (manage.py commands that build the state, plan arguments): single- and multi-step plans,
# forwards and backwards, SQLite table rebuilds, raw SQL, Python, a squashed migration.
SQL_CASES = {
    "forward-add-field": ([("migrate", "marketplace", "0003")], ("marketplace", "0004")),
    "backward-create-model": ([("migrate",)], ("media", "0003")),
    "backward-remove-field-index-python": ([("migrate",)], ("accounts", "0002")),
    "backward-raw-sql": ([("migrate", "marketplace", "0003")], ("marketplace", "0002")),
    "forward-from-empty-through-squash": ([], ("media", SQUASHED)),
}


def split_steps(plan: dict[str, Any]) -> dict[str, str]:
    """The plan's SQL cut at its `-- app.name [(backwards)]` headers, keyed by header."""
    headers = [f"-- {s['app']}.{s['name']}" + (" (backwards)" if s["backwards"] else "") for s in plan["steps"]]
    pattern = "^(" + "|".join(re.escape(header) for header in headers) + ")\n"
    parts = re.split(pattern, plan["sql"], flags=re.M)
    assert parts[0] == "" and parts[1::2] == headers
    return dict(zip(parts[1::2], parts[2::2], strict=True))


@pytest.mark.parametrize("case", SQL_CASES)
def test_each_steps_sql_is_what_sqlmigrate_prints(
    case: str, probe_plan: Callable[..., dict[str, Any]], manage_ok: Callable[..., str]
) -> None:
    setup, args = SQL_CASES[case]
    for command in setup:
        manage_ok(*command)
    plan = probe_plan(*args)
    assert plan["steps"]
    printed = {}
    for step in plan["steps"]:
        backwards = ["--backwards"] if step["backwards"] else []
        header = f"-- {step['app']}.{step['name']}" + (" (backwards)" if step["backwards"] else "")
        printed[header] = manage_ok("sqlmigrate", *backwards, step["app"], step["name"])
    assert split_steps(plan) == printed


def test_an_irreversible_step_is_named_in_the_sql_instead_of_crashing(
    probe_plan: Callable[..., dict[str, Any]], manage_ok: Callable[..., str]
) -> None:
    manage_ok("migrate")
    steps = split_steps(probe_plan("marketplace", "0004"))
    assert steps["-- marketplace.0005_backfill_order_totals (backwards)"] == (
        "-- IRREVERSIBLE: marketplace.0005_backfill_order_totals (RunPython: Raw Python operation)\n"
    )
