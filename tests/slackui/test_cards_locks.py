"""Each step of a plan to approve says what it locks on PostgreSQL: what a rehearsal measured on the copy
where one did, otherwise what the probe derived from the step's SQL, marked as derived. The message names
only the locks that matter (no phrase for plain DML's ROW EXCLUSIVE); the listing file names every one."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from controlplane.models import Request
from slackui import cards

GB = 1024**3


def lock(table: str, mode: str, *, rewrites: bool = False, scans: bool = False, size: int | None = None,
         **more: Any) -> dict[str, Any]:
    return {"table": table, "mode": mode, "rewrites": rewrites, "scans": scans, "size": size, **more}


def step(name: str, locks: list[dict[str, Any]] | None = None, **more: Any) -> dict[str, Any]:
    found: dict[str, Any] = {
        "app": "shop",
        "name": name,
        "backwards": False,
        "operations": [{"type": "AlterField", "description": f"Alter {name}", "irreversible": False,
                        "destroys_data": False, "noop_reverse": False, "tables": ["orders"]}],
    }
    return found | ({"locks": locks} if locks is not None else {}) | more


def request(steps: list[dict[str, Any]]) -> Request:
    return Request(
        pk=7, verb="migrate", environment="prod", args=["shop"], requester="U0ALICE", state="awaiting_approval",
        plan={"steps": steps, "tables": []}, plan_digest="a" * 64, approvals_required=1,
        expires_at=datetime(2030, 1, 1, tzinfo=UTC),
    )


def lines(steps: list[dict[str, Any]]) -> list[str]:
    message = cards.plan_for_approval(request(steps), None)
    text = "\n".join(block["text"]["text"] for block in message[1] if block["type"] == "section")
    return [line for line in text.split("\n") if line.startswith(("➡️", "↩️"))]


REWRITE = lock("orders", "ACCESS EXCLUSIVE", rewrites=True, scans=True, size=12 * GB)
FOREIGN_KEY = [lock("orders", "SHARE ROW EXCLUSIVE", scans=True, size=12 * GB),
               lock("customers", "SHARE ROW EXCLUSIVE", size=300 * 1024**2)]


def test_a_step_without_a_rehearsal_shows_the_derived_lock_marked_as_derived() -> None:
    assert lines([step("0002_bigint", [REWRITE]), step("0003_fk", FOREIGN_KEY)]) == [
        "➡️ apply `shop.0002_bigint` — 🔒 ACCESS EXCLUSIVE on `orders` (12 GB), rewrites it (derived from the SQL)",
        "➡️ apply `shop.0003_fk` — 🔒 SHARE ROW EXCLUSIVE on `orders` (12 GB), scans it; "
        "SHARE ROW EXCLUSIVE on `customers` (300 MB) (derived from the SQL)",
    ]


def test_a_rehearsed_step_shows_the_measurement_instead() -> None:
    rehearsed = {"locks": [{"table": "customers", "mode": "SHARE ROW EXCLUSIVE"},
                           {"table": "orders", "mode": "ACCESS EXCLUSIVE"}],
                 "rewrote": ["orders"], "sizes": {"orders": 12 * GB}, "seconds": 41.2}
    assert lines([step("0002_bigint", [REWRITE, *FOREIGN_KEY[1:]], rehearsed=rehearsed)]) == [
        "➡️ apply `shop.0002_bigint` — 🔒 rewrites `orders` (12 GB) under ACCESS EXCLUSIVE; "
        "SHARE ROW EXCLUSIVE on `customers` (300 MB) — 41 s on the copy",
    ]


def test_a_rehearsal_that_measured_no_locks_falls_back_to_the_derived_ones() -> None:
    # On SQLite, or where the rehearsal could not measure, `rehearsed` has no "locks".
    rehearsed = {"rewrote": [], "sizes": {}, "seconds": 0.4}
    assert lines([step("0002_bigint", [REWRITE], rehearsed=rehearsed)]) == [
        "➡️ apply `shop.0002_bigint` — 🔒 ACCESS EXCLUSIVE on `orders` (12 GB), rewrites it (derived from the SQL)",
    ]


def test_plain_dml_and_sqlite_plans_get_no_phrase_on_the_message_but_the_listing_says_all() -> None:
    backfill = step("0004_backfill", [lock("orders", "ROW EXCLUSIVE", size=12 * GB)])
    sqlite = step("0005_sqlite")  # no "locks": not PostgreSQL
    measured_dml = step("0006_fill", [], rehearsed={"locks": [{"table": "orders", "mode": "ROW EXCLUSIVE"}],
                                                    "rewrote": [], "sizes": {"orders": 5 * GB}, "seconds": 3.25})
    steps = [backfill, sqlite, measured_dml]
    assert lines(steps) == [
        "➡️ apply `shop.0004_backfill`", "➡️ apply `shop.0005_sqlite`", "➡️ apply `shop.0006_fill`",
    ]
    _, listing = cards.plan_listing(request(steps))
    assert "➡️ apply `shop.0004_backfill` — 🔒 ROW EXCLUSIVE on `orders` (12 GB) (derived from the SQL)\n" in listing
    assert "➡️ apply `shop.0005_sqlite`\n" in listing
    assert "➡️ apply `shop.0006_fill` — 🔒 ROW EXCLUSIVE on `orders` (5.0 GB) — 3.2 s on the copy\n" in listing


def test_what_could_not_be_derived_is_said_to_be_unknown() -> None:
    python = step("0007_python", [lock("", "unknown", statement=None)])
    raw = step("0008_raw", [lock("orders", "unknown", size=12 * GB, statement="DO $$ BEGIN PERFORM `x`; END $$")])
    assert lines([python, raw]) == [
        "➡️ apply `shop.0007_python` — 🔒 locks unknown (Python code) (derived from the SQL)",
        "➡️ apply `shop.0008_raw` — 🔒 locks unknown on `orders` (12 GB) (`DO $$ BEGIN PERFORM 'x'; END $$`) "
        "(derived from the SQL)",
    ]


def test_the_message_names_the_strongest_three_tables_and_counts_the_rest() -> None:
    many = [lock(f"t{i}", "SHARE", scans=True, size=i) for i in range(6)] + [REWRITE]
    (line,) = lines([step("0009_many", many)])
    assert line == (
        "➡️ apply `shop.0009_many` — 🔒 ACCESS EXCLUSIVE on `orders` (12 GB), rewrites it; "
        "SHARE on `t5` (5 bytes), `t4` (4 bytes), scans them and 4 more tables (derived from the SQL)"
    )
    _, listing = cards.plan_listing(request([step("0009_many", many)]))
    assert all(f"`t{i}`" in listing for i in range(6))


def test_the_lock_comes_after_the_steps_risks() -> None:
    risky = step("0010_drop", [lock("orders", "ACCESS EXCLUSIVE", size=12 * GB)])
    risky["operations"][0] |= {"destroys_data": True}
    assert lines([risky]) == [
        "➡️ apply `shop.0010_drop` — 🔥 destroys data in `orders` · 🔒 ACCESS EXCLUSIVE on `orders` (12 GB) "
        "(derived from the SQL)"
    ]


def test_a_long_plan_with_many_locks_stays_within_slacks_limits() -> None:
    name = "t" * 63
    steps = [step(f"{i:04d}_x" + "y" * 60, [lock(f"{name}{j}", "ACCESS EXCLUSIVE", rewrites=True, size=j * GB)
                                            for j in range(20)]) for i in range(300)]
    text, blocks = cards.plan_for_approval(request(steps), None)
    assert len(blocks) <= 50 and len(text) <= 40_000
    assert all(len(t["text"]) <= 3000 for b in blocks for t in [b.get("text") or {"text": ""}])
    assert cards.folded((text, blocks))


def test_tables_under_the_same_lock_are_named_together() -> None:
    dropped = [lock(t, "ACCESS EXCLUSIVE", size=size) for t, size in
               [("media_banner", 24 * 1024), ("media_image", 16 * 1024), ("marketplace_listing", None)]]
    measured = {"locks": [{"table": t["table"], "mode": "ACCESS EXCLUSIVE"} for t in dropped], "rewrote": [],
                "sizes": {"media_banner": 56 * 1024}, "seconds": 0.04}
    assert lines([step("0004_banner", dropped), step("0005_banner", dropped, rehearsed=measured)]) == [
        "➡️ apply `shop.0004_banner` — 🔒 ACCESS EXCLUSIVE on `media_banner` (24 KB), `media_image` (16 KB), "
        "`marketplace_listing` (derived from the SQL)",
        "➡️ apply `shop.0005_banner` — 🔒 ACCESS EXCLUSIVE on `media_banner` (56 KB), `media_image` (16 KB), "
        "`marketplace_listing` — 40 ms on the copy",
    ]
