"""A slash command signed as Slack signs it, dispatched straight into a Bolt app (no HTTP)."""

from __future__ import annotations

import time
import uuid
from urllib.parse import urlencode

from slack_bolt import App
from slack_bolt.request import BoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.signature import SignatureVerifier


def slash_command(
    app: App, text: str, *, secret: str, channel: str, trigger: str | None = None, user: str = "U0ALICE"
) -> BoltResponse:
    body = urlencode(
        {"command": "/migrate", "text": text, "user_id": user, "channel_id": channel,
         "trigger_id": trigger or f"cmd.{uuid.uuid4().hex}", "team_id": "T0LOCAL"}
    )  # fmt: skip
    stamp = str(int(time.time()))
    headers: dict[str, str | list[str]] = {
        "content-type": ["application/x-www-form-urlencoded"],
        "x-slack-request-timestamp": [stamp],
        "x-slack-signature": [SignatureVerifier(secret).generate_signature(timestamp=stamp, body=body)],
    }
    return app.dispatch(BoltRequest(body=body, headers=headers))
