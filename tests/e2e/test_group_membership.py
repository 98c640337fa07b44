"""User groups are current in the process that serves clicks, and stale groups fail closed.

``migrabot bot`` runs for real in HTTP mode (gunicorn, which forks its serving process) against the
Slack stand-in; clicks arrive with real signatures. The group's members change in Slack while it
runs, then Slack stops answering for groups: a removed approver is refused once the bot has seen
the change, and past the policy age nobody approves through the group, while an approver listed
by user id still can. The bot also starts while Slack cannot be reached at all.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from bot_process import BOT_TOKEN, CHANNEL, SECRET, awaiting_approval, bot_process
from services import RedisServer, free_port

from controlplane.models import Approval, AuditEvent, Request, State
from slacklocal import SignedSender, SlackWebAPI

REFRESH_SECONDS, MAX_AGE_SECONDS = 0.5, 4.0
TIMING = {
    "MIGRABOT_GROUP_REFRESH_SECONDS": str(REFRESH_SECONDS),
    "MIGRABOT_GROUP_MAX_AGE_SECONDS": str(MAX_AGE_SECONDS),
}


def click(url: str, request: Request, user: str) -> str:
    """Approve as ``user``; the refusal the bot recorded for this click, or '' if it recorded none."""
    newest = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    value = json.dumps({"request": request.pk, "digest": request.plan_digest})
    assert SignedSender(url, SECRET).click("approve", value, user, CHANNEL, request.plan_ts).status == 200
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        events = AuditEvent.objects.filter(id__gt=newest, actor=user)
        refused = events.filter(action="decision.refused").first()
        if refused is not None:
            return str(refused.detail["reason"])
        if events.filter(action="request.approve_clicked").exists():
            return ""
        time.sleep(0.05)
    raise TimeoutError(f"the click of {user} was never recorded")


def test_a_removed_approver_is_refused_and_stale_groups_grant_nothing(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    groups = {"S0APPROVERS": ["U0BOB", "U0DAVE"]}
    with (
        SlackWebAPI(BOT_TOKEN, usergroups=groups) as api,
        bot_process(tmp_path, api.base_url, redis_server.url, TIMING) as bot,
    ):
        url = bot.url
        plan_ts = f"{time.time():.6f}"
        request = awaiting_approval(plan_ts=plan_ts, thread_ts=plan_ts)
        api.methods.usergroups["S0APPROVERS"] = ["U0DAVE"]  # Bob leaves the approvers' group
        time.sleep(REFRESH_SECONDS * 4)
        assert "may not approve" in click(url, request, "U0BOB")

        api.methods.usergroups_available = False  # Slack stops answering for groups
        time.sleep(MAX_AGE_SECONDS + 1)
        reason = click(url, request, "U0DAVE")
        assert "are paused" in reason and "`S0APPROVERS`" in reason
        assert not Approval.objects.filter(request=request).exists()

        assert click(url, request, "U0CAROL") == ""  # listed by user id: still an approver
        assert Request.objects.get(pk=request.pk).state == State.APPROVED


def test_the_bot_starts_and_answers_while_slack_is_unreachable(tmp_path: Path, redis_server: RedisServer) -> None:
    unreachable = f"http://127.0.0.1:{free_port()}/api/"  # nothing listens there
    with bot_process(tmp_path, unreachable, redis_server.url, TIMING) as bot:
        url = bot.url
        reply = SignedSender(url, SECRET).slash_command("/migrate", "envs", "U0ALICE", CHANNEL)
        assert reply.status == 200 and "grp" in str(reply.body)


@pytest.fixture(autouse=True)
def _closed_requests() -> Iterator[None]:
    yield
    Request.objects.filter(environment="grp").exclude(state__in=[State.APPROVED]).update(state=State.CANCELLED)
