"""What a plan's steps put at risk, named by the probe's `plan` (issue 12, item 2): each dropped column
with the rows that hold a value in it, counted on the real database; each column a reversed
RemoveField brings back empty and what it holds then; the Python or SQL each step runs; and the other
apps a plan cascades into, with the dependency that forces each. Real Django CLI against real SQLite
and PostgreSQL databases, on a private copy of the example project with a fixture migration added,
and the rollback then run with `manage.py migrate` to show the plan said what happens.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.db import models

from migrabot_probe.protocol import BOOTSTRAP
from migrabot_probe.risks import fill

PROBE = ("-c", BOOTSTRAP)
NICKNAMES = "0005_profile_nickname"
REMOVE_WEBSITE = "0004_customer_created_index_remove_profile_website"

# A nullable column filled by a data migration whose reverse writes rows (into another table).
NICKNAME_MIGRATION = '''
from django.db import migrations, models


def fill_nicknames(apps, schema_editor):
    """Give each profile with a bio a nickname: its customer's first name."""
    Profile = apps.get_model("accounts", "Profile")
    for profile in Profile.objects.exclude(bio="").select_related("customer"):
        profile.nickname = profile.customer.name.split()[0]
        profile.save(update_fields=["nickname"])


def keep_nicknames(apps, schema_editor):
    """Copy each nickname into its customer's display_name before the column goes.

    Otherwise unapplying 0005 would lose them.
    """
    Profile = apps.get_model("accounts", "Profile")
    for profile in Profile.objects.exclude(nickname=None).select_related("customer"):
        profile.customer.display_name = profile.nickname
        profile.customer.save(update_fields=["display_name"])


class Migration(migrations.Migration):
    dependencies = [("accounts", "0004_customer_created_index_remove_profile_website")]
    operations = [
        migrations.AddField("profile", "nickname", models.CharField(max_length=40, null=True)),
        migrations.RunPython(fill_nicknames, keep_nicknames),
    ]
'''

# Three customers with profiles, two of them with a nickname (one NULL), after migrating.
SEED = """
from accounts.models import Customer, Profile
for email, name, nickname in [("ada@x.org", "Ada Lovelace", "Ada"), ("alan@x.org", "Alan Turing", "Alan"),
                              ("grace@x.org", "Grace Hopper", None)]:
    Profile.objects.create(customer=Customer.objects.create(email=email, name=name), nickname=nickname)
"""
READ_BACK = """
import json
from django.db import connection
with connection.cursor() as cursor:
    cursor.execute("SELECT website FROM accounts_profile ORDER BY id")
    websites = [row[0] for row in cursor.fetchall()]
    cursor.execute("SELECT display_name FROM accounts_customer ORDER BY id")
    display_names = [row[0] for row in cursor.fetchall()]
print(json.dumps({"websites": websites, "display_names": display_names}))
"""


def ok(completed: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert completed.returncode == 0, completed.stderr
    return completed


@pytest.fixture
def project(example_project: Path) -> Path:
    """The example with accounts.0005 (a nickname column and its data migration) and its model field."""
    (example_project / "accounts" / "migrations" / f"{NICKNAMES}.py").write_text(NICKNAME_MIGRATION)
    models_py = example_project / "accounts" / "models.py"
    bio = "    bio = models.CharField(max_length=280, blank=True)\n"
    nickname = "    nickname = models.CharField(max_length=40, null=True)\n"
    assert bio in models_py.read_text()
    models_py.write_text(models_py.read_text().replace(bio, bio + nickname))
    return example_project


@pytest.fixture
def probe_plan(project: Path, database_url: str, run_in_project: Callable) -> Callable[..., dict[str, Any]]:
    return lambda *args: json.loads(ok(run_in_project(project, database_url, *PROBE, "plan", *args)).stdout)


@pytest.fixture
def manage_ok(project: Path, database_url: str, manage: Callable) -> Callable[..., str]:
    return lambda *args: ok(manage(project, database_url, *args)).stdout


def risks(plan: dict[str, Any], key: str) -> list[tuple[str, str, Any]]:
    return [(step["name"], op["type"], op[key]) for step in plan["steps"] for op in step["operations"] if op[key]]


def test_a_rollback_names_the_columns_it_drops_what_comes_back_empty_and_the_code_it_runs(
    probe_plan: Callable[..., dict[str, Any]], manage_ok: Callable[..., str]
) -> None:
    manage_ok("migrate")
    manage_ok("shell", "-c", SEED)
    plan = probe_plan("accounts", "0003")
    assert [(s["name"], s["backwards"]) for s in plan["steps"]] == [(NICKNAMES, True), (REMOVE_WEBSITE, True)]
    # Two of the three profiles hold a nickname: the count is of non-null values, not of rows.
    assert risks(plan, "drops_columns") == [
        (NICKNAMES, "AddField", [{"table": "accounts_profile", "column": "nickname", "rows": 2, "new": False}]),
    ]
    assert risks(plan, "drops_tables") == []
    # Re-adding website brings back a column of '' (URLField(blank=True)), not the old URLs.
    assert risks(plan, "recreates") == [
        (REMOVE_WEBSITE, "RemoveField",
         [{"table": "accounts_profile", "column": "website", "fill": {"kind": "empty", "value": "''"}}]),
    ]
    # The reverse's first docstring line says what it does.
    keep = {"python": f"accounts.migrations.{NICKNAMES}.keep_nicknames",
            "doc": "Copy each nickname into its customer's display_name before the column goes."}
    assert risks(plan, "runs") == [(NICKNAMES, "RunPython", [keep])]
    assert plan["cascades"] == []

    # What the plan said is what happens: the reverse wrote the nicknames, website came back empty.
    manage_ok("migrate", "accounts", "0003")
    after = json.loads(manage_ok("shell", "-v", "0", "-c", READ_BACK))
    assert after == {"websites": ["", "", ""], "display_names": ["Ada", "Alan", ""]}


def test_a_migrate_names_the_code_that_will_run_and_counts_nothing_the_plan_creates(
    probe_plan: Callable[..., dict[str, Any]], manage_ok: Callable[..., str]
) -> None:
    # From an empty database: accounts.0004 drops website from a table 0001 creates in the same plan.
    fresh = probe_plan("accounts")
    website = {"table": "accounts_profile", "column": "website", "rows": None, "new": True}
    assert risks(fresh, "drops_columns") == [(REMOVE_WEBSITE, "RemoveField", [website])]
    assert [run for _, _, runs in risks(fresh, "runs") for run in runs] == [
        {"python": "accounts.migrations.0003_fill_display_names.fill_display_names",
         "doc": "Copy each customer's name into the new display_name."},
        {"python": f"accounts.migrations.{NICKNAMES}.fill_nicknames",
         "doc": "Give each profile with a bio a nickname: its customer's first name."},
    ]
    manage_ok("migrate", "marketplace", "0002")
    forwards = probe_plan("marketplace", "0004")
    assert risks(forwards, "runs") == [
        ("0003_order_open_index", "RunSQL",
         [{"sql": "CREATE INDEX marketplace_order_open_idx ON marketplace_order (listing_id) WHERE status = 'open';"}]),
    ]
    assert risks(forwards, "drops_columns") == risks(forwards, "recreates") == []


def test_a_rollback_cascading_into_other_apps_says_which_dependency_forces_each(
    probe_plan: Callable[..., dict[str, Any]], manage_ok: Callable[..., str]
) -> None:
    # Applying, from an empty database: marketplace needs accounts' first two migrations.
    assert probe_plan("marketplace")["cascades"] == [
        {"app": "accounts", "migrations": 2, "backwards": False, "migration": "marketplace.0001_initial",
         "depends_on": "accounts.0001_initial", "through": []},
    ]
    manage_ok("migrate")
    manage_ok("seed_demo")
    plan = probe_plan("marketplace", "0005")
    assert [f"{s['app']}.{s['name']}" for s in plan["steps"]] == [
        "media.0004_banner", "marketplace.0006_alter_listing_title",
    ]
    assert plan["cascades"] == [
        {"app": "media", "migrations": 1, "backwards": True, "migration": "media.0004_banner",
         "depends_on": "marketplace.0006_alter_listing_title", "through": []},
    ]
    assert risks(plan, "drops_tables") == [("0004_banner", "CreateModel", ["media_banner"])]

    # Two apps deep: media goes because of marketplace, which goes because of accounts.
    deep = probe_plan("accounts", "0001")
    per_app = {app: sum(s["app"] == app for s in deep["steps"]) for app in ("media", "marketplace")}
    assert per_app == {"media": 1, "marketplace": 5}
    assert deep["cascades"] == [
        {"app": "media", "migrations": per_app["media"], "backwards": True, "migration": "media.0004_banner",
         "depends_on": "accounts.0002_customer_display_name",
         "through": [f"marketplace.{name}" for name in (
             "0006_alter_listing_title", "0005_backfill_order_totals", "0004_order_total_cents",
             "0003_order_open_index", "0002_order")]},
        {"app": "marketplace", "migrations": per_app["marketplace"], "backwards": True,
         "migration": "marketplace.0002_order", "depends_on": "accounts.0002_customer_display_name", "through": []},
    ]
    # seed_demo's three orders all hold a total.
    assert ("0004_order_total_cents", "AddField",
            [{"table": "marketplace_order", "column": "total_cents", "rows": 3, "new": False}]) in risks(
        deep, "drops_columns")



def test_a_count_that_fails_leaves_the_rows_unknown_and_the_plan_whole(
    probe_plan: Callable[..., dict[str, Any]], manage_ok: Callable[..., str]
) -> None:
    manage_ok("migrate")
    manage_ok("shell", "-c", SEED)
    # The schema drifted from the history: the column the rollback drops is not there to count.
    rename = "from django.db import connection; connection.cursor().execute(" \
             "'ALTER TABLE accounts_profile RENAME COLUMN nickname TO nick')"
    manage_ok("shell", "-c", rename)
    plan = probe_plan("accounts", "0003")
    assert risks(plan, "drops_columns") == [
        (NICKNAMES, "AddField", [{"table": "accounts_profile", "column": "nickname", "rows": None, "new": False}]),
    ]
    # The connection is still usable after the failed count (PostgreSQL aborts a failed transaction).
    assert plan["tables"] == [
        {"table": "accounts_profile", "exists": True, "rows": 3},
        {"table": "accounts_customer", "exists": True, "rows": 3},
    ]


def test_what_a_re_added_column_holds_is_what_djangos_schema_editor_puts_there() -> None:
    assert fill(models.URLField(blank=True)) == {"kind": "empty", "value": "''"}
    assert fill(models.CharField(max_length=9, null=True)) == {"kind": "null", "value": None}
    assert fill(models.CharField(max_length=9, default="open")) == {"kind": "default", "value": "'open'"}
    assert fill(models.IntegerField(null=True, default=0)) == {"kind": "default", "value": "0"}
    assert fill(models.DateTimeField(auto_now_add=True)) == {"kind": "now", "value": None}
    assert fill(models.IntegerField()) == {"kind": "none", "value": None}
    assert fill(models.UUIDField(default=__import__("uuid").uuid4)) == {"kind": "default", "value": "uuid.uuid4()"}
    assert fill(models.IntegerField(db_default=7)) == {"kind": "db_default", "value": "7"}
