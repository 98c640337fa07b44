"""Every moment a message states is in Slack's date formatting, so each viewer reads it in their own
time zone, with the time in UTC as the fallback (what the stand-in, local mode and the audit read);
and a denial's reason is shown in place of the buttons as it was typed, never as markup."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from controlplane.approvals import MAX_REASON
from controlplane.models import Request
from migrabot import messages
from slackui import cards
from slackui.blocks import BLOCKS, TEXT, size
from slackui.text import mrkdwn_to_text, render_blocks

NEW_YEAR = datetime(2030, 1, 1, tzinfo=UTC)
TOKEN = "<!date^1893456000^{date_short_pretty} {time}|2030-01-01 00:00 UTC>"


def plan() -> Request:
    return Request(
        pk=7, verb="rollback", environment="prod", args=["shop", "0002"], requester="U0ALICE",
        state="awaiting_approval", plan={"steps": [], "tables": []}, plan_digest="a" * 64, approvals_required=1,
        expires_at=NEW_YEAR,
    )


def test_the_expiry_of_an_approval_is_shown_in_each_viewers_time_zone() -> None:
    _, blocks = cards.plan_for_approval(plan(), None)
    (context,) = [block for block in blocks if block["type"] == "context"]
    assert context["elements"][0]["text"].endswith(f"· expires {TOKEN}")
    assert "Needs 1 approval from an approver other than @U0ALICE · expires 2030-01-01 00:00 UTC" in render_blocks(
        blocks
    )


@pytest.mark.parametrize(
    "said",
    [
        messages.decision("approved", "U0BOB", NEW_YEAR),
        messages.locked("prod", "user:U0CAROL", "freeze", NEW_YEAR),
        messages.environment_details(["U0BOB"], 1, ("user:U0CAROL", "freeze", NEW_YEAR)),
        messages.home_pending(7, "rollback prod shop 0002", "prod", "U0ALICE", NEW_YEAR),
        messages.request_line(7, "rollback prod shop 0002", "denied", "U0ALICE", NEW_YEAR),
        messages.promoted("staging", 6, NEW_YEAR),
    ],
)
def test_decisions_locks_and_lists_state_their_moments_the_same_way(said: str) -> None:
    assert TOKEN in said
    assert "2030-01-01 00:00 UTC" in mrkdwn_to_text(said) and "<!date" not in mrkdwn_to_text(said)


def test_a_moment_in_another_zone_is_the_same_instant() -> None:
    tokyo = NEW_YEAR.astimezone(timezone(timedelta(hours=9)))
    assert messages.decision("approved", "U0BOB", tokyo) == messages.decision("approved", "U0BOB", NEW_YEAR)


def test_a_denial_shows_who_why_and_when_in_place_of_the_buttons() -> None:
    text, blocks = cards.plan_denied(plan(), "U0CAROL", NEW_YEAR, "not during the freeze")
    assert text == f"⛔ Denied by <@U0CAROL>: `not during the freeze` · {TOKEN}"
    assert blocks[-1] == {"type": "section", "text": {"type": "mrkdwn", "text": text}}
    assert not any(block["type"] == "actions" for block in blocks)
    shown = render_blocks(blocks, {"U0CAROL": "carol"})
    assert shown[-1] == "⛔ Denied by @carol: `not during the freeze` · 2030-01-01 00:00 UTC"


@pytest.mark.parametrize("reason", ["<!channel> *bold* <https://x|y>", "R&D `rm -rf` _now_ ~never~"])
def test_a_hostile_reason_is_shown_as_itself(reason: str) -> None:
    text = messages.denied_because("U0CAROL", reason, NEW_YEAR)
    said = text.split(": ", 1)[1].rsplit(" · ", 1)[0]
    # In a code span Slack applies no formatting and links nothing; inside it, only its escapes.
    assert said.startswith("`") and said.endswith("`") and "`" not in said[1:-1]
    assert "<" not in said and ">" not in said
    assert mrkdwn_to_text(said)[1:-1] == reason.replace("`", "'")


def test_the_longest_reason_of_escaped_characters_fits_whole() -> None:
    message = cards.plan_denied(plan(), "U0CAROL", NEW_YEAR, "&" * MAX_REASON)
    text, blocks = message
    assert size(blocks[-1]["text"]["text"]) <= TEXT and len(blocks) <= BLOCKS
    assert "&amp;" * MAX_REASON in blocks[-1]["text"]["text"] and "cut:" not in text


def test_a_restore_plan_shows_when_its_backup_was_taken_in_each_viewers_time_zone() -> None:
    taken = NEW_YEAR.astimezone(timezone(timedelta(hours=9))).isoformat()  # as workers.plans keeps it
    said = messages.restore_plan(3, "f" * 64, 1048576, taken)
    assert f"taken {TOKEN}" in said and mrkdwn_to_text(said).count("2030-01-01 00:00 UTC") == 1


def test_a_refusal_listing_long_findings_keeps_each_whole_and_counts_the_rest() -> None:
    """Cut at a character count, the text could end inside a date token or a mention and show as markup."""
    finding = f"⚠️ `prod` · `shop.0001_initial` changed after it was applied ({TOKEN}) " + "x" * 1200
    said = messages.refused_until_clean("prod", [finding] * 4)
    lines = said.split("\n")
    assert len(said) <= 2900 and lines[1:] == [finding, finding, "… and 2 more: see `check prod`."]
