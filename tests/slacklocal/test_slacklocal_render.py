"""Rendering a realistic rollback thread as a person reads it on a phone."""

from __future__ import annotations

from slacklocal import Conversation, render_thread
from slacklocal.render import mrkdwn_to_text
from slacklocal.store import File

NAMES = {"UBOT": "migrabot", "U1ALICE": "alice", "U2BOB": "bob"}


def _text(kind: str, text: str) -> dict[str, str]:
    return {"type": kind, "text": text}


def _rollback_thread() -> tuple[Conversation, str]:
    store = Conversation(epoch=1700000000)
    card = store.post(
        "C1",
        "UBOT",
        "Rollback staging marketplace 0002",
        [
            {"type": "header", "text": _text("plain_text", "Rollback · staging")},
            {
                "type": "section",
                "fields": [_text("mrkdwn", "*App:* marketplace"), _text("mrkdwn", "*Target:* 0002_listing_price")],
            },
            {
                "type": "context",
                "elements": [
                    _text("mrkdwn", "Requested by <@U1ALICE>"),
                    {"type": "image", "image_url": "https://x/y.png", "alt_text": "status: awaiting approval"},
                ],
            },
        ],
    )
    store.post(
        "C1",
        "UBOT",
        "Plan: 2 migrations to unapply",
        [
            {"type": "section", "text": _text("mrkdwn", "*Unapply* 2 migrations &amp; drop 1 column:")},
            {
                "type": "section",
                "text": _text(
                    "mrkdwn",
                    "• marketplace.0004_listing_tags  ⚠ drops `tags` (&lt;1,204 rows&gt;)\n"
                    "• marketplace.0003_listing_slug",
                ),
            },
            {"type": "divider"},
            {
                "type": "actions",
                "elements": [
                    {
                        "type": "button",
                        "action_id": "approve",
                        "text": _text("plain_text", "Approve"),
                        "style": "primary",
                    },
                    {"type": "button", "action_id": "deny", "text": _text("plain_text", "Deny"), "style": "danger"},
                ],
            },
        ],
        thread_ts=card.ts,
    )
    store.post_ephemeral("C1", "U1ALICE", "You cannot approve your own request.", thread_ts=card.ts)
    output = "\n".join(f"[X] 00{i:02d}_step" for i in range(1, 24))
    store.post("C1", "UBOT", "", thread_ts=card.ts, files=[File("F1", "plan.txt", "Full plan", output)])
    return store, card.ts


def test_render_thread_reads_like_the_phone_app() -> None:
    store, ts = _rollback_thread()

    assert render_thread(store, "C1", ts, NAMES) == "\n".join(
        [
            "migrabot:",
            "Rollback · staging",
            "*App:* marketplace",
            "*Target:* 0002_listing_price",
            "Requested by @alice  [image: status: awaiting approval]",
            "",
            "    migrabot:",
            "    *Unapply* 2 migrations & drop 1 column:",
            "    • marketplace.0004_listing_tags  ⚠ drops `tags` (<1,204 rows>)",
            "    • marketplace.0003_listing_slug",
            "    ────────────────────────",
            "    [Approve] [Deny]",
            "",
            "    (only visible to you)",
            "    You cannot approve your own request.",
            "",
            "    migrabot:",
            "    📎 Full plan",
            *[f"      [X] 00{i:02d}_step" for i in range(1, 21)],
            "      … (3 more lines)",
        ]
    )


def test_ephemerals_are_shown_only_to_their_recipient() -> None:
    store, ts = _rollback_thread()
    assert "only visible to you" in render_thread(store, "C1", ts, NAMES, viewer="U1ALICE")
    assert "only visible to you" not in render_thread(store, "C1", ts, NAMES, viewer="U2BOB")


def test_mrkdwn_mentions_links_and_escapes() -> None:
    text = "<!subteam^S1|@dbas> <!here> see <https://audit.local/r/42|request 42> in <#C1|migrations>"
    text += ", a &lt;b&gt; &amp;amp;"
    assert mrkdwn_to_text(text) == "@dbas @here see request 42 in #migrations, a <b> &amp;"


def test_a_date_reads_as_its_fallback_text() -> None:
    """Slack shows ``<!date^…|fallback>`` in the viewer's own time zone; the stand-in shows the fallback."""
    text = "expires <!date^1893456000^{date_short_pretty} {time}|2030-01-01 00:00 UTC> · by <@U2BOB>"
    assert mrkdwn_to_text(text, NAMES) == "expires 2030-01-01 00:00 UTC · by @bob"
