"""A plan leads with its risk (issue 12, item 2): the counts line first — tables and columns destroyed with
the rows that hold values, irreversible steps, columns re-created empty, code that runs, the other apps it
cascades into — then why each other app moves, then the steps, each naming what it destroys (every column
with its rows holding a value), what comes back empty and what it holds, and the Python or SQL it runs;
then the buttons, whose confirmation names the destroyed tables and columns within Slack's 300 characters.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from controlplane.models import Request
from slackui import cards
from slackui.text import render_blocks

CLEAR = "accounts.migrations.0003_fill_display_names.clear_display_names"


def op(kind: str, **facts: Any) -> dict[str, Any]:
    """An operation as the probe's plan describes it (migrabot_probe.plans, migrabot_probe.risks)."""
    return {"type": kind, "description": f"{kind} …", "irreversible": False, "destroys_data": False,
            "noop_reverse": False, "tables": [], "drops_tables": [], "drops_columns": [], "recreates": [],
            "runs": []} | facts


def column(table: str, name: str, rows: int | None, new: bool = False) -> dict[str, Any]:
    return {"table": table, "column": name, "rows": rows, "new": new}


def step(app: str, name: str, *operations: dict[str, Any], backwards: bool = True) -> dict[str, Any]:
    return {"app": app, "name": name, "backwards": backwards, "operations": list(operations)}


BANNER = step("media", "0004_banner", op("CreateModel", destroys_data=True, tables=["media_banner"],
                                          drops_tables=["media_banner"]))
TOTALS = step("marketplace", "0004_order_total_cents", op(
    "AddField", destroys_data=True, tables=["marketplace_order"],
    drops_columns=[column("marketplace_order", "total_cents", 1204)]))
WEBSITE = step("accounts", "0004_remove_profile_website", op(
    "RemoveField", tables=["accounts_profile"],
    recreates=[{"table": "accounts_profile", "column": "website", "fill": {"kind": "empty", "value": "''"}}]))
DISPLAY_NAMES = step("accounts", "0003_fill_display_names", op(
    "RunPython", runs=[{"python": CLEAR, "doc": "Blank display_name again so 0002 can drop the column cleanly."}]))
OPEN_INDEX = step("marketplace", "0003_order_open_index", op(
    "RunSQL", runs=[{"sql": "DROP INDEX marketplace_order_open_idx;"}]))
TABLES = [{"table": "media_banner", "exists": True, "rows": 3}, {"table": "marketplace_order", "exists": True,
                                                                 "rows": 2000}]
MEDIA = {"app": "media", "migrations": 1, "backwards": True, "migration": "media.0004_banner",
         "depends_on": "marketplace.0006_alter_listing_title", "through": []}


def request(steps: list[dict[str, Any]], tables: list[dict[str, Any]] | None = None, **plan: Any) -> Request:
    return Request(
        pk=42, verb="rollback", environment="prod", args=["marketplace", "0003"], requester="U0ALICE",
        state="awaiting_approval", plan={"steps": steps, "tables": tables or [], "sql": "…", **plan},
        plan_digest="a" * 64, approvals_required=1, expires_at=datetime(2030, 1, 1, tzinfo=UTC),
    )


def shown(message: cards.Message) -> list[str]:
    return render_blocks(message[1])


def confirmation(message: cards.Message) -> str:
    (approve,) = [e for e in message[1][-1]["elements"] if e["action_id"] == "approve"]
    text: str = approve["confirm"]["text"]["text"]
    assert len(text) <= 300
    return text


def test_the_plan_leads_with_its_risk_then_the_steps_each_naming_it_then_the_buttons() -> None:
    plan = request([BANNER, TOTALS, WEBSITE, DISPLAY_NAMES, OPEN_INDEX], TABLES, cascades=[MEDIA])
    message = cards.plan_for_approval(plan, None)
    assert shown(message) == [
        "*Plan for #42* `rollback prod marketplace 0003`",
        "5 steps · 🔥 drops 1 table (3 rows), 1 column (1,204 values) · 0 ⛔ irreversible · 0 ⚪ no-op reverse"
        " · 🕳️ 1 column back empty · 🐍 2 steps run code · ↪️ 1 other app",
        "↪️ also unapplies 1 migration in `media`, because `media.0004_banner` depends on"
        " `marketplace.0006_alter_listing_title`",
        "↩️ unapply `media.0004_banner` — 🔥 destroys data in `media_banner`",
        "↩️ unapply `marketplace.0004_order_total_cents` — 🔥 destroys data in `marketplace_order.total_cents`"
        " (1,204 rows with a value)",
        "↩️ unapply `accounts.0004_remove_profile_website` — 🕳️ `accounts_profile.website` comes back empty"
        " (its old values are not restored): every row holds `''`",
        f"↩️ unapply `accounts.0003_fill_display_names` — 🐍 runs `{CLEAR}`"
        " (“Blank display_name again so 0002 can drop the column cleanly.”)",
        "↩️ unapply `marketplace.0003_order_open_index` — 🧾 runs SQL `DROP INDEX marketplace_order_open_idx;`",
        "Tables: `media_banner` (3 rows), `marketplace_order` (2,000 rows)",
        "Needs 1 approval from an approver other than @U0ALICE · expires 2030-01-01 00:00 UTC",
        "[Approve] [Deny]",
    ]
    assert confirmation(message) == (
        "Drops `media_banner` (3 rows), `marketplace_order.total_cents` (1,204 rows) on `prod`."
    )
    assert not cards.folded(message) and not cards.plan_folded(plan)
    _, listing = cards.plan_listing(plan)
    assert listing.split("\n")[1:4] == [shown(message)[1], shown(message)[2], ""]
    assert "— 🔥 destroys data in `marketplace_order.total_cents` (1,204 rows with a value)\n" in listing


def test_the_read_plan_says_the_same_risks() -> None:
    result = {"steps": [TOTALS, WEBSITE, DISPLAY_NAMES], "tables": TABLES, "cascades": [MEDIA]}
    lines = shown(cards.plan_result("prod", result))
    assert lines[:3] == [
        "*prod*: would unapply 3 migrations.",
        "3 steps · 🔥 drops 1 column (1,204 values) · 0 ⛔ irreversible · 0 ⚪ no-op reverse"
        " · 🕳️ 1 column back empty · 🐍 1 step runs code · ↪️ 1 other app",
        "↪️ also unapplies 1 migration in `media`, because `media.0004_banner` depends on"
        " `marketplace.0006_alter_listing_title`",
    ]
    assert lines[3] == (
        "↩️ unapply `marketplace.0004_order_total_cents` (1 operation) · 🔥 destroys data in"
        " `marketplace_order.total_cents` (1,204 rows with a value)"
    )


def test_a_plan_without_those_risks_leaves_their_counts_out() -> None:
    forwards = step("shop", "0002_alter", op("AlterField"), backwards=False)
    assert shown(cards.plan_for_approval(request([forwards]), None))[1] == "1 step · 0 ⛔ irreversible"
    assert confirmation(cards.plan_for_approval(request([forwards]), None)) == (
        "Runs 1 step on `prod`, after a verified backup."
    )


def test_every_destroyed_column_says_how_many_rows_hold_a_value_or_why_it_cannot() -> None:
    dropping = step("shop", "0009_drop", op("RemoveField", destroys_data=True, drops_columns=[
        column("shop_item", "legacy", 0), column("shop_item", "note", 1), column("shop_item", "gone", None),
        column("shop_new", "fresh", None, new=True)]), backwards=False)
    message = cards.plan_for_approval(request([dropping]), None)
    assert shown(message)[1:3] == [
        "1 step · 🔥 drops 4 columns (1+ values) · 0 ⛔ irreversible",
        "➡️ apply `shop.0009_drop` — 🔥 destroys data in `shop_item.legacy` (no rows with a value),"
        " `shop_item.note` (1 row with a value), `shop_item.gone` (rows unknown),"
        " `shop_new.fresh` (added earlier in this plan)",
    ]
    assert confirmation(message) == (
        "Drops `shop_item.legacy` (0 rows), `shop_item.note` (1 row), `shop_item.gone` (rows unknown),"
        " `shop_new.fresh` (new) on `prod`."
    )
    unknown = step("shop", "0010_drop", op("RemoveField", destroys_data=True,
                                           drops_columns=[column("shop_item", "gone", None)]), backwards=False)
    assert shown(cards.plan_for_approval(request([unknown]), None))[1].startswith(
        "1 step · 🔥 drops 1 column (values unknown) · ")


def test_what_comes_back_empty_says_what_it_holds() -> None:
    def back(fill: dict[str, Any] | None, name: str | None = "c") -> str:
        recreated = step("shop", "0003_x", op("RemoveField", recreates=[{"table": "t", "column": name, "fill": fill}]))
        return shown(cards.plan_for_approval(request([recreated]), None))[2].split(" — ", 1)[1]

    said = "🕳️ `t.c` comes back empty (its old values are not restored): "
    assert back({"kind": "default", "value": "'open'"}) == said + "every row holds its default `'open'`"
    assert back({"kind": "db_default", "value": "7"}) == said + "every row holds its database default `7`"
    assert back({"kind": "null", "value": None}) == said + "every row holds NULL"
    assert back({"kind": "now", "value": None}) == said + "every row holds the time it is added back"
    assert back({"kind": "none", "value": None}) == (
        said + "it is NOT NULL with no default, so adding it back fails if the table has rows"
    )
    assert back(None, None) == "🕳️ `t` comes back empty (its old rows are not restored)"
    both = step("shop", "0004_y", op("DeleteModel", recreates=[{"table": "t", "column": None, "fill": None},
                                                               {"table": "u", "column": "c", "fill": None}]))
    assert "🕳️ 1 table and 1 column back empty" in shown(cards.plan_for_approval(request([both]), None))[1]


def test_long_sql_is_cut_on_the_message_and_whole_in_the_file_and_code_text_is_never_markup() -> None:
    sql = "UPDATE shop_item SET note = 'x' WHERE id IN (" + ", ".join(str(n) for n in range(200)) + ");"
    hostile = "<!channel> wipes `everything` & more"
    steps = [
        step("shop", "0005_sql", op("RunSQL", runs=[{"sql": sql}]), backwards=False),
        step("shop", "0006_py", op("RunPython", runs=[{"python": "shop.migrations.x.<lambda>", "doc": hostile}]),
             backwards=False),
    ]
    plan = request(steps)
    blocks = cards.plan_for_approval(plan, None)[1]
    text = "\n".join(block["text"]["text"] for block in blocks if block["type"] == "section")
    sql_line = next(line for line in text.split("\n") if "0005_sql" in line)
    assert sql_line.endswith("…`") and sql[:150] in sql_line and len(sql_line) < 300
    assert "<!channel>" not in text and "&lt;!channel&gt; wipes 'everything' &amp; more" in text
    assert "`shop.migrations.x.&lt;lambda&gt;`" in text
    _, listing = cards.plan_listing(plan)
    assert f"🧾 runs SQL `{sql}`" in listing


def test_more_cascades_than_a_message_names_are_counted_and_the_file_names_them_all() -> None:
    apps = [f"app{n:03d}" for n in range(1, 8)]
    steps = [step(app, "0001_initial", op("CreateModel")) for app in reversed(apps)] + [
        step("app000", "0001_initial", op("CreateModel"))]
    cascades = [{"app": app, "migrations": 1, "backwards": True, "migration": f"{app}.0001_initial",
                 "depends_on": "app000.0001_initial", "through": [f"app{n:03d}.0001_initial" for n in range(i, 0, -1)]}
                for i, app in enumerate(apps)]
    plan = request(steps, cascades=cascades)
    message = cards.plan_for_approval(plan, None)
    lines = shown(message)
    assert lines[1] == "8 steps · 0 ⛔ irreversible · 0 ⚪ no-op reverse · ↪️ 7 other apps"
    assert lines[2:6] == [
        "↪️ also unapplies 1 migration in `app001`, because `app001.0001_initial` depends on `app000.0001_initial`",
        "↪️ also unapplies 1 migration in `app002`, because `app002.0001_initial` depends on `app001.0001_initial`,"
        " which depends on `app000.0001_initial`",
        "↪️ also unapplies 1 migration in `app003`, because `app003.0001_initial` depends on `app002.0001_initial`,"
        " which (through 1 more migration) depends on `app000.0001_initial`",
        "… and 4 more apps — the full list is in `request-42-plan.txt`.",
    ]
    assert cards.folded(message) and cards.plan_folded(plan), "the file is attached: it names them all"
    _, listing = cards.plan_listing(plan)
    assert sum(line.startswith("↪️ also unapplies") for line in listing.split("\n")) == 7


def test_the_confirmation_counts_the_tables_and_columns_that_do_not_fit() -> None:
    drops = [op("RemoveField", destroys_data=True, drops_columns=[column("catalog_product", f"summary_{n:02d}", 1204)])
             for n in range(12)]
    tables = [op("DeleteModel", destroys_data=True, drops_tables=[f"catalog_table_{n}"]) for n in range(2)]
    message = cards.plan_for_approval(request([step("catalog", "0031_x", *tables, *drops)]), None)
    text = confirmation(message)
    assert text.startswith("Drops `catalog_table_0`, `catalog_table_1`, `catalog_product.summary_00` (1,204 rows), ")
    named = text.count("`catalog_product.summary_")
    assert 0 < named < 12 and text.endswith(f" … and {12 - named} more columns on `prod`.")

    many = [op("DeleteModel", destroys_data=True, drops_tables=[f"catalog_table_with_a_long_name_{n}"])
            for n in range(12)]
    both = confirmation(cards.plan_for_approval(request([step("catalog", "0031_x", *many, *drops)]), None))
    assert both.endswith(" more tables and 12 more columns on `prod`.") and "`catalog_product." not in both


def test_a_fake_plan_risks_nothing_it_lists_the_history_it_writes_and_what_exists() -> None:
    """Faking runs no SQL and no code: drops, code and locks it would name for a real run are not its risks."""
    fake = request([BANNER, TOTALS, DISPLAY_NAMES], TABLES, fake=True)
    fake.verb, fake.args = "fake", ["media", "0003"]
    message = cards.plan_for_approval(fake, None)
    assert shown(message)[1:5] == [
        "3 steps · 🪪 fake: recorded as unapplied without running (no SQL, no code, no data touched),"
        " so the schema must already match",
        "↩️ record unapplied `media.0004_banner` (not run)",
        "↩️ record unapplied `marketplace.0004_order_total_cents` (not run)",
        "↩️ record unapplied `accounts.0003_fill_display_names` (not run)",
    ]
    assert "Tables: `media_banner` (3 rows), `marketplace_order` (2,000 rows)" in shown(message)
    assert confirmation(message) == (
        "Records 3 steps as unapplied on `prod` without running them, after a verified backup."
    )
    _, listing = cards.plan_listing(fake)
    assert "🔥" not in listing and "🐍" not in listing and "(not run)" in listing
