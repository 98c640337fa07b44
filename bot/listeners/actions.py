"""Approve and Deny: ack at once, then re-check everything on the server before recording.

The button's value names a request and a plan digest, but nothing in a payload is trusted: the
click must come from the request's own plan message in its own channel, and ``request_decide``
checks state, expiry, digest, requester and policy again.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from django.db import DatabaseError
from slack_bolt import Ack, App

from bot.cards import APPROVE, DENY
from bot.directory import Directory
from bot.followup import FollowUp
from bot.refusals import audit_refusal
from controlplane.approvals import request_decide
from controlplane.errors import Refusal
from controlplane.models import Decision, Request
from migrabot import messages
from migrabot.config import Config

log = logging.getLogger(__name__)


def register(app: App, *, config: Config, directory: Directory, followup: FollowUp) -> None:
    @app.action(re.compile(f"^({APPROVE}|{DENY})$"))
    def on_decision(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        person = body["user"]["id"]
        channel = body.get("channel", {}).get("id", "")
        message_ts = body.get("container", {}).get("message_ts", "")
        try:
            request = _clicked_request(action, channel, message_ts)
            outcome = request_decide(
                request_id=request.pk,
                person=person,
                decision=Decision(action["action_id"]),
                plan_digest=str(json.loads(action["value"]).get("digest", "")),
                environment=config.environments[request.environment],
                members_of=directory.members_of,
            )
        except Refusal as refusal:
            log.info("decision.refused person=%s reason=%s", person, refusal)
            audit_refusal(actor=person, action="decision.refused", reason=str(refusal), value=str(action.get("value", ""))[:200])
            thread = body.get("container", {}).get("thread_ts")
            followup.submit(followup.tell, channel=channel, user=person, text=str(refusal), thread_ts=thread)
            return
        except DatabaseError:
            log.exception("decision.control_plane_unreachable person=%s", person)
            followup.submit(followup.tell, channel=channel, user=person, text=messages.control_plane_down())
            return
        followup.submit(followup.decided, outcome.request.pk, person, outcome.approvers, outcome.decided)


def _clicked_request(action: dict[str, Any], channel: str, message_ts: str) -> Request:
    """The request whose own plan message was clicked; anything else is treated as no request."""
    try:
        request_id = int(json.loads(action["value"])["request"])
    except (KeyError, TypeError, ValueError):
        raise Refusal(messages.no_such_request(0)) from None
    request = Request.objects.filter(pk=request_id, channel=channel, plan_ts=message_ts).exclude(plan_ts="").first()
    if request is None:
        raise Refusal(messages.no_such_request(request_id))
    return request
