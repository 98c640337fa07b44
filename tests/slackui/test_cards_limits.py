"""Slack's limits hold by construction (issue 9): whatever a card is given, its message stays within
what real Slack accepts, and nothing that matters to an approver is cut away silently.

Slack's numbers (DESIGN.md, "Facts that bite"): a text object (a section's text, a context element)
holds 1–3,000 characters, a message at most 50 blocks, its text at most 40,000 characters. slack_sdk's
models check the per-block rules they know; the rest are checked here.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from slack_sdk.models.blocks import Block

from controlplane.models import Backup, Request
from slackui import cards

TEXT, BLOCKS, MESSAGE_TEXT = 3000, 50, 40_000
FOLD = re.compile(r"^… and (\d+) more (step|app)s?(?:, (\d+) of them (?:dangerous|not up to date))? — (.+)\.$")


def text_objects(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["text"]] if node.get("type") in ("mrkdwn", "plain_text") else []
        return found + [text for value in node.values() for text in text_objects(value)]
    if isinstance(node, list):
        return [text for value in node for text in text_objects(value)]
    return []


def within_limits(message: cards.Message) -> None:
    text, blocks = message
    assert 0 < len(text) <= MESSAGE_TEXT and text.strip()
    assert 0 < len(blocks) <= BLOCKS
    ids = [block["block_id"] for block in blocks if "block_id" in block]
    assert len(ids) == len(set(ids)), "block ids are unique in a message"
    for block in blocks:
        parsed = Block.parse(block)
        assert parsed is not None
        parsed.validate_json()  # slack_sdk's own checks of the block
        for shown in text_objects(block):
            assert 1 <= len(shown) <= TEXT and shown.strip(), shown[:80]


def sections_text(blocks: cards.Blocks) -> str:
    return "\n".join(block["text"]["text"] for block in blocks if block["type"] == "section")


def fold_line(blocks: cards.Blocks) -> re.Match[str] | None:
    lines = [block["elements"][0]["text"] for block in blocks if block.get("block_id") == "folded"]
    assert len(lines) <= 1
    return FOLD.match(lines[0]) if lines else None


def operation(
    *, destroys: bool = False, noop: bool = False, irreversible: bool = False, tables: list[str] | None = None
) -> dict[str, Any]:
    return {
        "type": "RemoveField",
        "description": "Remove field legacy from thing",
        "irreversible": irreversible,
        "destroys_data": destroys,
        "noop_reverse": noop,
        "tables": tables or [],
    }


def step(number: int, *, app: str = "shop", backwards: bool = True, **flags: Any) -> dict[str, Any]:
    return {
        "app": app,
        "name": f"{number:04d}_change_{number}",
        "backwards": backwards,
        "operations": [operation(**flags)],
    }


def request(steps: list[dict[str, Any]], tables: list[dict[str, Any]] | None = None, **plan: Any) -> Request:
    return Request(
        pk=42,
        verb="rollback",
        environment="staging",
        args=["shop", "zero"],
        requester="U0ALICE",
        state="awaiting_approval",
        plan={"steps": steps, "tables": tables or [], **plan},
        plan_digest="a" * 64,
        approvals_required=1,
        expires_at=datetime(2030, 1, 1, tzinfo=UTC),
    )


def shown_steps(blocks: cards.Blocks, steps: list[dict[str, Any]]) -> list[int]:
    text = sections_text(blocks)
    return [i for i, s in enumerate(steps) if f"`{s['app']}.{s['name']}`" in text]


def state(apps: list[tuple[str, int, int]]) -> dict[str, Any]:
    """A showmigrations document: (app, applied, total) per app."""
    return {
        "apps": [
            {
                "app": app,
                "migrations": [
                    {"name": f"{i:04d}_m", "state": "applied" if i < done else "unapplied"} for i in range(total)
                ],
            }
            for app, done, total in apps
        ]
    }


# --- the cases of the issue --------------------------------------------------------------------------


def test_a_300_step_rollback_shows_its_destroying_last_step_before_the_buttons() -> None:
    steps = [step(300 - i) for i in range(299)] + [step(1, destroys=True, tables=["shop_ledger"])]
    plan = request(steps, [{"table": "shop_ledger", "exists": True, "rows": 1200}])

    message = cards.plan_for_approval(plan, None)

    within_limits(message)
    _, blocks = message
    assert blocks[-1]["type"] == "actions" and [e["action_id"] for e in blocks[-1]["elements"]] == ["approve", "deny"]
    first = sections_text(blocks[:1])
    assert "300 steps · 🔥 drops 1 table (1,200 rows) · 0 ⛔ irreversible · 0 ⚪ no-op reverse" in first
    destroying = "↩️ unapply `shop.0001_change_1` — 🔥 destroys data in `shop_ledger`"
    where = next(i for i, block in enumerate(blocks) if destroying in block.get("text", {}).get("text", ""))
    assert where < len(blocks) - 1
    shown = shown_steps(blocks, steps)
    assert 299 in shown
    fold = fold_line(blocks)
    assert fold is not None and int(fold[1]) == 300 - len(shown) > 0 and fold[3] is None
    assert fold[4] == "the full list is in `request-42-plan.txt`"
    assert cards.folded(message) and cards.plan_folded(plan)
    filename, listing = cards.plan_listing(plan)
    assert filename == "request-42-plan.txt"
    assert all(f"`shop.{s['name']}`" in listing for s in steps) and destroying in listing

    decided = cards.plan_decided(plan, "U0BOB", datetime(2030, 1, 1, tzinfo=UTC), "approved")
    within_limits(decided)
    assert destroying in sections_text(decided[1]) and decided[1][-1]["text"]["text"].startswith("✅ Approved")


def test_showmigrations_of_100_apps_leads_with_the_summary_and_the_apps_behind() -> None:
    behind = {7, 55, 99}
    doc = state([(f"payments_ledger_{i:03d}", 48 if i in behind else 50, 50) for i in range(100)])  # ~3,400 characters

    message = cards.showmigrations_result("staging", doc)

    within_limits(message)
    _, blocks = message
    assert blocks[0]["text"]["text"] == "*staging*: 4994 of 5000 migrations applied, 6 not applied."
    listed = sections_text(blocks[1:])
    lines = listed.split("\n")
    assert lines[:3] == [f"🟡 *payments_ledger_{i:03d}* 48/50 · next `0048_m`" for i in sorted(behind)]
    fold = fold_line(blocks)
    assert fold is not None and int(fold[1]) == 100 - len(lines) and fold[3] is None
    assert fold[4] == "the full list is in the file" and cards.folded(message)

    run = cards.run_result(request([]), {"unapplied": ["a"]}, doc)  # no file there: the read verb instead
    within_limits(run)
    assert (fold := fold_line(run[1])) is not None and fold[4] == "`showmigrations staging` lists them all"


def test_200_dangerous_steps_are_counted_per_kind_and_the_rest_are_in_the_file() -> None:
    steps = [step(200 - i, destroys=i % 5 < 3, noop=i % 5 >= 3, tables=[f"t{i}"]) for i in range(200)]
    plan = request(steps)

    message = cards.plan_for_approval(plan, None)

    within_limits(message)
    _, blocks = message
    assert "200 steps · 🔥 drops 120 tables (rows unknown) · 0 ⛔ irreversible · 80 ⚪ no-op reverse" in sections_text(
        blocks[:1]
    )
    shown = shown_steps(blocks, steps)
    assert shown == list(range(len(shown))), "the first dangerous steps, in order"
    fold = fold_line(blocks)
    assert fold is not None
    assert int(fold[1]) == int(fold[3]) == 200 - len(shown) > 0
    assert fold[4] == "the full list is in `request-42-plan.txt`"
    assert blocks[-1]["type"] == "actions"


def test_a_message_text_over_40000_characters_is_capped_and_says_so() -> None:
    long = "\n".join(f"line {i:06d} of a very long note" for i in range(2000))  # 64,000 characters
    assert len(long) > MESSAGE_TEXT

    for message in (cards.note(long), cards.code(long)):
        within_limits(message)
        text, blocks = message
        assert text.endswith(f"(cut: {len(long):,} characters in all)")
        assert sections_text(blocks).replace("```", "") == long, "the blocks split it between lines, whole"

    huge = "\n".join([long] * 5)  # more than 50 sections hold
    for message in (cards.note(huge), cards.code(huge)):
        within_limits(message)
        assert cards.folded(message) and "more blocks left out" in message[1][-1]["elements"][0]["text"]


def test_the_progress_message_keeps_the_newest_lines_and_counts_the_folded_ones() -> None:
    lines = [f"↩️ unapplied `shop.{i:04d}_change_{i}` in 0.01 s" for i in range(500)]

    message = cards.progress(lines)

    within_limits(message)
    _, blocks = message
    kept = sections_text(blocks).split("\n")
    assert kept == lines[-len(kept) :]
    assert blocks[0]["elements"][0]["text"] == f"… {500 - len(kept)} earlier lines folded; the newest are below."
    assert cards.progress(lines[:3])[1] == cards.note("\n".join(lines[:3]))[1]


def test_one_line_longer_than_a_section_is_cut_visibly() -> None:
    tables = [f"shop_table_with_a_long_name_{i:04d}" for i in range(200)]  # one step's line: ~7,000 characters
    plan = request([step(1, destroys=True, tables=tables)], [{"table": t, "exists": True, "rows": 1} for t in tables])
    message = cards.plan_for_approval(plan, None)
    within_limits(message)
    assert "characters in all)" in sections_text(message[1])
    assert "and 175 more (all in the file)" in str(message[1]) and cards.folded(message)

    checked = cards.check_result("staging", ["⚠️ " + "x" * 5000] * 12)
    within_limits(checked)


def test_a_short_plan_is_shown_whole_in_the_lines_the_e2e_tests_read() -> None:
    steps = [
        {
            "app": "media",
            "name": "0004_banner",
            "backwards": True,
            "operations": [operation(destroys=True, tables=["media_banner"])],
        },
        {"app": "marketplace", "name": "0006_alter_listing_title", "backwards": True, "operations": [operation()]},
    ]
    message = cards.plan_for_approval(request(steps, [{"table": "media_banner", "exists": True, "rows": 3}]), None)
    within_limits(message)
    shown = sections_text(message[1])
    assert (
        "↩️ unapply `media.0004_banner` — 🔥 destroys data in `media_banner`\n"
        "↩️ unapply `marketplace.0006_alter_listing_title`"
        in shown
    )
    assert not cards.folded(message) and "`media_banner` (3 rows)" in str(message[1])


# --- properties: any input -------------------------------------------------------------------------

names = st.text(alphabet="abcdefghij_0123456789", min_size=1, max_size=60)


def flags(rare: bool) -> st.SearchStrategy[dict[str, Any]]:
    # Plans with a few dangerous steps among many, and plans with more than a message shows.
    risk = st.sampled_from([False] * 9 + [True]) if rare else st.booleans()
    return st.fixed_dictionaries(
        {"destroys": risk, "noop": risk, "irreversible": risk, "tables": st.lists(names, max_size=6)}
    )


def sizes(element: st.SearchStrategy[Any], short: int, long: int) -> st.SearchStrategy[list[Any]]:
    # Hypothesis favours short lists: draw long ones as often, which is where folding happens.
    return st.one_of(st.lists(element, max_size=short), st.lists(element, min_size=short, max_size=long))


plans = st.one_of([sizes(st.tuples(st.booleans(), flags(rare)), 30, 400) for rare in (True, False)]).map(
    lambda drawn: [step(i, backwards=back, **f) | {"name": f"{i:04d}_{i}"} for i, (back, f) in enumerate(drawn)]
)
relaxed = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


def dangerous(s: dict[str, Any]) -> bool:
    op = s["operations"][0]
    return op["irreversible"] or op["destroys_data"] or (s["backwards"] and op["noop_reverse"])


def assert_every_step_accounted(blocks: cards.Blocks, steps: list[dict[str, Any]]) -> None:
    """Each step is shown, or counted in the fold line: dangerous ones first, none silently cut."""
    shown = shown_steps(blocks, steps)
    fold = fold_line(blocks)
    hidden, hidden_dangerous = (int(fold[1]), int(fold[3] or 0)) if fold else (0, 0)
    event("dangerous steps folded" if hidden_dangerous else "folded" if fold else "whole")
    assert len(shown) + hidden == len(steps)
    assert sum(dangerous(steps[i]) for i in shown) + hidden_dangerous == sum(map(dangerous, steps))
    if hidden_dangerous:
        assert all(dangerous(steps[i]) for i in shown), "no ordinary step takes a dangerous one's room"


@relaxed
@given(plans, st.lists(st.text(min_size=1, max_size=4000), max_size=14))
def test_any_plan_for_approval_is_within_limits_and_hides_no_danger(
    steps: list[dict[str, Any]], findings: list[str]
) -> None:
    plan = request(steps, problems=findings, warnings=findings[:3])
    message = cards.plan_for_approval(plan, None)
    within_limits(message)
    assert message[1][-1]["type"] == "actions"
    assert_every_step_accounted(message[1], steps)
    assert cards.folded(message) == cards.plan_folded(plan) == (fold_line(message[1]) is not None)


@relaxed
@given(plans)
def test_any_plan_read_is_within_limits_and_hides_no_danger(steps: list[dict[str, Any]]) -> None:
    message = cards.plan_result("staging", {"steps": steps}, [])
    within_limits(message)
    assert_every_step_accounted(message[1], steps)


@relaxed
@given(sizes(st.tuples(names, st.integers(0, 60), st.integers(0, 60)), 30, 200))
def test_any_showmigrations_is_within_limits_with_the_apps_behind_first(drawn: list[tuple[str, int, int]]) -> None:
    apps = [(f"{name}{i}", min(a, b), max(a, b)) for i, (name, a, b) in enumerate(drawn)]
    backup = Backup(pk=7, created_at=datetime(2030, 1, 1, tzinfo=UTC))
    for message in (
        cards.showmigrations_result("staging", state(apps)),
        cards.restored(request([]), backup, state(apps)),
    ):
        within_limits(message)
        lines = sections_text(message[1][1:]).split("\n") if len(message[1]) > 1 else []
        lines = [line for line in lines if line]
        fold = fold_line(message[1])
        event("folded" if fold else "whole")
        behind = sum(done < total for _, done, total in apps)
        assert len(lines) + (int(fold[1]) if fold else 0) == len(apps)
        shown_behind = sum(line.startswith("🟡") for line in lines)
        assert shown_behind + (int(fold[3] or 0) if fold else 0) == behind
        if fold:
            assert all(line.startswith("🟡") for line in lines[:shown_behind])


@relaxed
@given(sizes(st.text(min_size=1, max_size=500), 30, 800))
def test_any_progress_or_note_is_within_limits(lines: list[str]) -> None:
    within_limits(cards.progress(lines))
    within_limits(cards.note("\n".join(lines) or "-"))


def test_approve_asks_for_confirmation_naming_what_is_destroyed_within_slacks_limit() -> None:
    destroys = {"type": "DeleteModel", "description": "Delete model", "irreversible": False,
                "destroys_data": True, "noop_reverse": False}
    steps = [
        {"app": "shop", "name": f"{n:04d}_x", "backwards": True, "file": "f.py", "sha256": "0" * 64,
         "operations": [destroys | {"tables": [f"shop_table_with_a_long_name_{n:02d}"]}]}
        for n in range(20)
    ]
    tables = [{"table": f"shop_table_with_a_long_name_{n:02d}", "exists": True, "rows": 1204 + n} for n in range(20)]
    message = cards.plan_for_approval(request(steps, tables), None)
    (approve,) = [e for e in message[1][-1]["elements"] if e["action_id"] == "approve"]
    text = approve["confirm"]["text"]["text"]
    assert len(text) <= 300
    assert text.startswith("Drops `shop_table_with_a_long_name_00` (1,204 rows), ")
    shown = text.count("`shop_table_with_a_long_name_")
    assert text.endswith(f" … and {20 - shown} more tables on `staging`.") and 0 < shown < 20
    (deny,) = [e for e in message[1][-1]["elements"] if e["action_id"] == "deny"]
    assert "confirm" not in deny
