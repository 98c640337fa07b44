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

from bot.directory import Directory
from bot.followup import FollowUp
from bot.refusals import audit_refusal
from controlplane.approvals import request_decide
from controlplane.errors import Refusal
from controlplane.models import Decision, Request
from migrabot import messages
from migrabot.config import Config
from migrabot.logs import log_bind, log_context
from slackui.cards import APPROVE, DENY

log = logging.getLogger(__name__)


def register(app: App, *, config: Config, directory: Directory, followup: FollowUp) -> None:
    @app.action(re.compile(f"^({APPROVE}|{DENY})$"))
    @log_context()  # its lines name the request once the click is matched to one
    def on_decision(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        # The shapes are bot.server's: ids are Slack's, every field read here is a string or absent.
        person, channel = body["user"]["id"], body["channel"]["id"]
        container = body.get("container", {})
        request: Request | None = None
        try:
            request_id, digest = _button_value(action.get("value"))
            request = _clicked_request(request_id, channel, container.get("message_ts", ""))
            log_bind(request_id=request.pk, environment=request.environment, verb=request.verb)
            environment = config.environments.get(request.environment)
            if environment is None:  # another bot's environment sharing this control plane
                raise Refusal(messages.no_such_request(request_id))
            outcome = request_decide(
                request_id=request.pk,
                person=person,
                decision=Decision(action["action_id"]),
                plan_digest=digest,
                environment=environment,
                members_of=directory.members_of,
            )
        except Refusal as refusal:
            log.info("decision.refused person=%s reason=%s", person, refusal)
            audit_refusal(
                actor=person,
                action="decision.refused",
                reason=str(refusal),
                environment=request.environment if request else "",
                value=str(action.get("value", ""))[:200],
            )
            followup.submit(
                followup.tell, channel=channel, user=person, text=str(refusal), thread_ts=container.get("thread_ts")
            )
            return
        except DatabaseError:
            log.exception("decision.control_plane_unreachable person=%s", person)
            followup.submit(followup.tell, channel=channel, user=person, text=messages.control_plane_down())
            return
        followup.submit(followup.decided, outcome.request.pk, person, outcome.approvers, outcome.decided)


MAX_VALUE = 2000  # Slack's limit on a button's value
MAX_ID = 2**63 - 1  # the largest primary key a database holds; larger ones make the driver raise


def _button_value(value: object) -> tuple[int, str]:
    """The request id and plan digest a button carries: exactly what ``cards.plan_for_approval``
    writes, an object with an integer ``request`` and a string ``digest``. Anything else — not
    JSON, too deep, ``1e309``, ``true``, ``"12"``, a number no database holds — names no request."""
    try:
        if not isinstance(value, str) or len(value) > MAX_VALUE:
            raise ValueError(value)
        data = json.loads(value)
        request_id, digest = data["request"], data.get("digest", "")
    except Exception:  # noqa: BLE001 - json raises ValueError, RecursionError, …; data may be any JSON value
        raise Refusal(messages.no_such_request(0)) from None
    if type(request_id) is not int or not 0 < request_id <= MAX_ID or not isinstance(digest, str):
        raise Refusal(messages.no_such_request(0))
    return request_id, digest


def _clicked_request(request_id: int, channel: str, message_ts: str) -> Request:
    """The request whose own plan message was clicked; anything else is treated as no request."""
    request = Request.objects.filter(pk=request_id, channel=channel, plan_ts=message_ts).exclude(plan_ts="").first()
    if request is None:
        raise Refusal(messages.no_such_request(request_id))
    return request
