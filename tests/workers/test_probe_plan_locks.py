"""The probe's `plan` says, on PostgreSQL, what each step locks, whether it rewrites or scans the table, and
the table's size — derived from the step's SQL and the catalog — and it is what PostgreSQL really does:
each step's SQL, run statement by statement in a transaction on the same database, takes exactly those
locks (pg_locks) and rewrites exactly those tables (a new relfilenode). Real probe, real PostgreSQL, on a
private copy of the example project; on SQLite a plan has no locks.
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

PROBE = ("-c", BOOTSTRAP)

SEED = """
from accounts.models import Customer, Profile
from marketplace.models import Listing, Order
from media.models import Banner, Image
sellers = [Customer.objects.create(email=f"s{i}@example.com", name=f"Seller {i}") for i in range(50)]
Profile.objects.bulk_create(Profile(customer=c, bio="b" * 200) for c in sellers)
listings = Listing.objects.bulk_create(
    Listing(title=f"Lamp {i}", price_cents=i, seller=sellers[i % 50]) for i in range(400)
)
Order.objects.bulk_create(Order(listing=listings[i % 400], buyer=sellers[i % 50], quantity=1) for i in range(3000))
images = Image.objects.bulk_create(Image(listing=listings[i], path=f"{i}.jpg") for i in range(100))
Banner.objects.bulk_create(Banner(listing=listings[i], image=images[i], headline="Bright") for i in range(100))
"""

SIZES = (
    "import json; from django.db import connection; c = connection.cursor(); "
    "c.execute(\"SELECT relname, pg_total_relation_size(oid) FROM pg_class WHERE relkind = 'r' "
    "AND relnamespace = 'public'::regnamespace\"); print(json.dumps(dict(c.fetchall())))"
)

# Applies each step's SQL (a JSON list in the file named by argv[1]) in a transaction of its own and reports,
# before its COMMIT, the strongest lock it holds on each table that existed before it, and the tables it rewrote.
MEASURE = """
import json, sys
import django
django.setup()
from django.db import connection
from migrabot_probe.locks import split_statements
from migrabot_probe.protocol import LOCK_MODES, lock_rank

MODES = {mode.replace(" ", "").lower() + "lock": mode for mode in LOCK_MODES}
found = []
with open(sys.argv[1]) as file, connection.cursor() as cursor:
    for sql in json.load(file):
        cursor.execute("SELECT oid, relname, relfilenode FROM pg_class WHERE relkind = 'r' "
                       "AND relnamespace = 'public'::regnamespace")
        before = {oid: (name, node) for oid, name, node in cursor.fetchall()}
        cursor.execute("BEGIN")
        for statement in split_statements(sql):
            if statement.tokens[0].word not in ("begin", "commit"):
                cursor.execute(statement.text)
        cursor.execute("SELECT relation, mode FROM pg_locks WHERE pid = pg_backend_pid() AND locktype = 'relation'")
        held = {}
        for oid, mode in cursor.fetchall():
            if oid in before:
                name, mode = before[oid][0], MODES[mode.lower()]
                if name not in held or lock_rank(mode) > lock_rank(held[name]):
                    held[name] = mode
        cursor.execute("SELECT oid, relfilenode FROM pg_class")
        rewrote = sorted(before[oid][0] for oid, node in cursor.fetchall() if oid in before and before[oid][1] != node)
        cursor.execute("COMMIT")
        found.append({"locks": held, "rewrote": rewrote})
print(json.dumps(found))
"""


def ok(completed: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert completed.returncode == 0, completed.stderr
    return completed


@pytest.fixture
def in_project(
    example_project: Path, pg_database_url: str, run_in_project: Callable, tmp_path: Path
) -> Callable[..., Any]:
    """``in_project("plan", *args)``: the probe's plan; ``("manage", *args)``: manage.py's output;
    ``("sizes",)``: each table's pg_total_relation_size; ``("measure", sqls)``: MEASURE's findings."""

    def call(kind: str, *args: Any) -> Any:
        if kind == "plan":
            return json.loads(ok(run_in_project(example_project, pg_database_url, *PROBE, "plan", *args)).stdout)
        if kind == "sizes":
            return json.loads(call("manage", "shell", "-v", "0", "-c", SIZES))
        if kind == "measure":
            (sqls,) = args
            (tmp_path / "sqls.json").write_text(json.dumps(sqls))
            argv = ("-c", MEASURE, str(tmp_path / "sqls.json"))
            return json.loads(ok(run_in_project(example_project, pg_database_url, *argv)).stdout)
        return ok(run_in_project(example_project, pg_database_url, "manage.py", *args)).stdout

    return call


def step_sqls(plan: dict[str, Any]) -> list[str]:
    """The plan's SQL cut at its `-- app.name [(backwards)]` headers, one string a step."""
    headers = [f"-- {s['app']}.{s['name']}" + (" (backwards)" if s["backwards"] else "") for s in plan["steps"]]
    parts = re.split("^(" + "|".join(map(re.escape, headers)) + ")\n", plan["sql"], flags=re.M)
    assert parts[1::2] == headers
    return parts[2::2]


def by_name(plan: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    return {step["name"]: step["locks"] for step in plan["steps"]}


def test_a_rollback_names_each_steps_locks_with_the_real_tables_sizes(in_project: Callable[..., Any]) -> None:
    in_project("manage", "migrate")
    in_project("manage", "shell", "-v", "0", "-c", SEED)
    sizes = in_project("sizes")
    assert sizes["marketplace_order"] > 100_000  # 3,000 rows: the sizes below are the tables', not a constant
    locks = by_name(in_project("plan", "marketplace", "0005"))
    # varchar(200) back to varchar(120): not binary-coercible, so the whole table is copied under the lock.
    assert locks["0006_alter_listing_title"] == [
        {"table": "marketplace_listing", "mode": "ACCESS EXCLUSIVE", "rewrites": True, "scans": True,
         "size": sizes["marketplace_listing"]},
    ]
    # DROP TABLE … CASCADE also drops its foreign keys: ACCESS EXCLUSIVE on the tables they reference
    # (the catalog says which), not only on media_banner.
    assert locks["0004_banner"] == [
        {"table": table, "mode": "ACCESS EXCLUSIVE", "rewrites": False, "scans": False, "size": sizes[table]}
        for table in ("media_banner", "media_image", "marketplace_listing")
    ]


def test_a_forward_plan_names_its_locks_and_the_new_tables_are_left_out(in_project: Callable[..., Any]) -> None:
    in_project("manage", "migrate", "accounts", "0003")
    in_project("manage", "migrate", "marketplace", "0001")
    sizes = in_project("sizes")
    locks = by_name(in_project("plan"))
    assert locks["0004_customer_created_index_remove_profile_website"] == [
        {"table": "accounts_profile", "mode": "ACCESS EXCLUSIVE", "rewrites": False, "scans": False,
         "size": sizes["accounts_profile"]},
        # CREATE INDEX: SHARE (reads go on, writes wait) while it reads the whole table.
        {"table": "accounts_customer", "mode": "SHARE", "rewrites": False, "scans": True,
         "size": sizes["accounts_customer"]},
    ]
    # marketplace_order is created in the step's own transaction: only the referenced tables are held.
    assert locks["0002_order"] == [
        {"table": table, "mode": "SHARE ROW EXCLUSIVE", "rewrites": False, "scans": False, "size": sizes[table]}
        for table in ("accounts_customer", "marketplace_listing")
    ]
    # An index on a table an earlier step of this plan creates: it has no size yet.
    assert locks["0003_order_open_index"] == [
        {"table": "marketplace_order", "mode": "SHARE", "rewrites": False, "scans": True, "size": None},
    ]
    # RunPython: nobody knows its SQL before it runs, and the plan says so.
    assert [lock["mode"] for lock in locks["0005_backfill_order_totals"]] == ["unknown"]


@pytest.mark.parametrize(
    ("migrated", "args"),
    [(True, ("accounts", "zero")), (False, ())],  # every step backwards across the three apps; all forwards
    ids=["rollback-to-zero", "forward-from-empty"],
)
def test_the_derived_locks_are_the_ones_postgresql_takes(
    in_project: Callable[..., Any], migrated: bool, args: tuple[str, ...]
) -> None:
    if migrated:
        in_project("manage", "migrate")
        in_project("manage", "shell", "-v", "0", "-c", SEED)
    plan = in_project("plan", *args)
    measured = in_project("measure", step_sqls(plan))
    compared = 0
    for step, found in zip(plan["steps"], measured, strict=True):
        # Python's locks are "unknown" (and MEASURE runs no Python): every other one must be exact.
        derived = [lock for lock in step["locks"] if lock["mode"] != "unknown"]
        assert {lock["table"]: lock["mode"] for lock in derived} == found["locks"], step["name"]
        assert sorted(lock["table"] for lock in derived if lock["rewrites"]) == found["rewrote"], step["name"]
        compared += bool(derived)
    assert compared >= 10


def test_a_sqlite_plan_has_no_locks(example_project: Path, run_in_project: Callable, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'target.sqlite3'}"
    plan = json.loads(ok(run_in_project(example_project, url, *PROBE, "plan")).stdout)
    assert plan["steps"] and not any("locks" in step for step in plan["steps"])
