"""Approve and Deny: ack at once, then re-check everything on the server before recording.

The button's value names a request and a plan digest, but nothing in a payload is trusted: the
click must come from the request's own plan message in its own channel, and ``request_decide``
checks state, expiry, digest, requester and policy again.

Deny asks why first. The click is checked as a decision would be (``request_may_decide``: a
refusal is told at once, and no dialog opens for someone whose Deny would not count), acked, and
the dialog (``slackui.modals``) opened after the ack with the click's ``trigger_id``, which Slack
honours for about 3 seconds. If Slack does not open it (down, slow, the trigger expired) the
clicker is told so privately and nothing is recorded: the request still awaits approval. The
submission (``view_submission``) is a decision like a click, checked again whatever its metadata
says — state, expiry, digest, the person, once — with the reason (``checked_reason``) last.

Decision — a submission refused (an empty or too long reason, a request decided meanwhile, a
person who may not decide) is answered ``response_action: errors`` on the reason field. The
dialog stays open, saying why under what they typed, where they are looking; a closing dialog
with an ephemeral message instead would leave them nothing on screen if they were not looking
at the channel (a dialog opens over any channel, and on a phone over the whole app). Cancel
closes it; a request decided meanwhile shows its decision in the thread as well.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from django.db import DatabaseError
from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.directory import Directory
from bot.followup import FollowUp
from bot.refusals import audit_refusal
from controlplane.approvals import request_decide, request_may_decide
from controlplane.errors import Refusal
from controlplane.models import Decision, Request
from migrabot import messages
from migrabot.config import Config
from migrabot.logs import log_bind, log_context
from slackui.cards import APPROVE, DENY
from slackui.modals import DENY_VIEW, REASON_BLOCK, deny_modal, submitted_reason
from slackui.text import mrkdwn_to_text

log = logging.getLogger(__name__)


def register(app: App, *, config: Config, directory: Directory, followup: FollowUp) -> None:
    @app.action(re.compile(f"^({APPROVE}|{DENY})$"))
    @log_context()  # its lines name the request once the click is matched to one
    def on_decision(ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient) -> None:
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
            decision = Decision(action["action_id"])
            if decision == Decision.DENY:  # why, first: nothing is recorded until the reason comes
                request = request_may_decide(
                    request_id=request.pk,
                    person=person,
                    plan_digest=digest,
                    environment=environment,
                    members_of=directory.members_of,
                )
                where = {"channel": channel, "thread_ts": container.get("thread_ts")}
                followup.submit(open_deny_dialog, client, body.get("trigger_id", ""), request, person, followup, where)
                return
            outcome = request_decide(
                request_id=request.pk,
                person=person,
                decision=decision,
                plan_digest=digest,
                environment=environment,
                members_of=directory.members_of,
            )
        except Refusal as refusal:
            _audit_refused(person, refusal, request, action.get("value"))
            followup.submit(
                followup.tell, channel=channel, user=person, text=str(refusal), thread_ts=container.get("thread_ts")
            )
            return
        except DatabaseError:
            log.exception("decision.control_plane_unreachable person=%s", person)
            followup.submit(followup.tell, channel=channel, user=person, text=messages.control_plane_down())
            return
        followup.submit(followup.decided, outcome.request.pk, person, outcome.approvers, outcome.decided)

    @app.view(DENY_VIEW)
    @log_context()
    def on_deny_reason(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        # The shapes are bot.server's: a submission's user, and its view's strings and typed values.
        person, metadata = body["user"]["id"], view.get("private_metadata")
        request: Request | None = None
        try:
            request_id, digest = _button_value(metadata)  # the dialog carries the button's own value
            request = Request.objects.filter(pk=request_id).first()
            environment = config.environments.get(request.environment) if request else None
            if request is None or environment is None:
                raise Refusal(messages.no_such_request(request_id))
            log_bind(request_id=request.pk, environment=request.environment, verb=request.verb)
            outcome = request_decide(
                request_id=request.pk,
                person=person,
                decision=Decision.DENY,
                plan_digest=digest,
                environment=environment,
                members_of=directory.members_of,
                reason=submitted_reason(view),
            )
        except Refusal as refusal:
            _audit_refused(person, refusal, request, metadata)
            # A dialog's errors are plain text: the refusal as a person reads it (<@U1> as @U1).
            ack(response_action="errors", errors={REASON_BLOCK: mrkdwn_to_text(str(refusal))})
            return
        except DatabaseError:
            log.exception("decision.control_plane_unreachable person=%s", person)
            ack(response_action="errors", errors={REASON_BLOCK: messages.control_plane_down()})
            return
        ack()  # closes the dialog; the thread shows the denial once the notifier posts it
        followup.submit(followup.decided, outcome.request.pk, person, outcome.approvers, outcome.decided)


def open_deny_dialog(
    client: WebClient, trigger_id: str, request: Request, person: str, followup: FollowUp, where: dict[str, Any]
) -> None:
    """After the Deny click's ack: the dialog asking why. When Slack does not open it, the clicker
    is told (``where`` the click was) and nothing is recorded."""
    try:
        client.views_open(trigger_id=trigger_id, view=deny_modal(request))
    except Exception as error:  # SlackApiError (expired_trigger_id, …), or no answer at all
        said = error.response.get("error") if isinstance(error, SlackApiError) else repr(error)[:200]
        log.warning("deny.dialog_failed person=%s error=%s", person, said)
        followup.tell(user=person, text=messages.deny_dialog_failed(request.pk), **where)
        return
    log.info("deny.dialog_opened person=%s", person)


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


def _audit_refused(person: str, refusal: Refusal, request: Request | None, value: object) -> None:
    """A refused click or dialog, in the log and the audit trail (with what it carried, cut short)."""
    log.info("decision.refused person=%s reason=%s", person, refusal)
    audit_refusal(
        actor=person,
        action="decision.refused",
        reason=str(refusal),
        environment=request.environment if request else "",
        value=str(value or "")[:200],
    )
