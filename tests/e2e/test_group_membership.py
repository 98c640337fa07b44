"""User groups are current in the process that serves clicks, and stale groups fail closed.

``migrabot bot`` runs for real in HTTP mode (gunicorn, which forks its serving process) against the
Slack stand-in; clicks arrive with real signatures. The group's members change in Slack while it
runs, then Slack stops answering for groups: a removed approver is refused once the bot has seen
the change, and past the policy age nobody approves through the group, while an approver listed
by user id still can. The bot also starts while Slack cannot be reached at all.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from services import RedisServer, free_port

from controlplane import services
from controlplane.models import Approval, AuditEvent, Request, State
from slacklocal import SignedSender, SlackWebAPI

TOKEN = "xoxb-groups-test"
SECRET = "groups-signing-secret"
CHANNEL = "C0GROUPS"
CONFIG = """
[environments.grp]
project = "{project}"
settings = "backend.settings"
[environments.grp.policy]
readers = ["*"]
requesters = ["*"]
approvers = ["S0APPROVERS", "U0CAROL"]
"""
REFRESH_SECONDS, MAX_AGE_SECONDS = 0.5, 4.0


@contextmanager
def bot_process(tmp_path: Path, slack_api_url: str, redis_url: str) -> Iterator[str]:
    """``migrabot bot`` on a free port; yields its events URL once it answers."""
    config = tmp_path / "migrabot.toml"
    config.write_text(CONFIG.format(project=Path(__file__).resolve().parents[2] / "example" / "backend"))
    port = free_port()
    env = os.environ | {
        "MIGRABOT_CONFIG": str(config),
        "MIGRABOT_BROKER_URL": redis_url,
        "SLACK_BOT_TOKEN": TOKEN,
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": slack_api_url,
        "MIGRABOT_GROUP_REFRESH_SECONDS": str(REFRESH_SECONDS),
        "MIGRABOT_GROUP_MAX_AGE_SECONDS": str(MAX_AGE_SECONDS),
    }
    env.pop("SLACK_APP_TOKEN", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "migrabot.cli", "bot", "--bind", f"127.0.0.1:{port}"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    url = f"http://127.0.0.1:{port}/slack/events"
    try:
        sender = SignedSender(url, SECRET)
        deadline = time.monotonic() + 30
        while True:
            try:
                if sender.slash_command("/migrate", "help", "U0ALICE", CHANNEL).status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError("the bot did not start:\n" + (process.stdout.read() if process.stdout else ""))
            time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(30)


def awaiting_approval() -> Request:
    request, _ = services.request_create(
        verb="rollback", environment="grp", args=["media", "0003"], requester="U0ALICE", channel=CHANNEL, trigger_id=None
    )
    plan_ts = f"{time.time():.6f}"
    moved = services.request_transition(
        request_id=request.pk, from_states=[State.RECEIVED], to=State.AWAITING_APPROVAL, actor="test", action="request.awaiting_approval",
        fields={"plan": {"steps": []}, "plan_digest": "d" * 64, "plan_ts": plan_ts, "approvals_required": 1,
                "expires_at": timezone.now() + timedelta(hours=1), "thread_ts": plan_ts},
    )
    assert moved is not None
    return moved


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


def test_a_removed_approver_is_refused_and_stale_groups_grant_nothing(tmp_path: Path, redis_server: RedisServer) -> None:
    groups = {"S0APPROVERS": ["U0BOB", "U0DAVE"]}
    with SlackWebAPI(TOKEN, usergroups=groups) as api, bot_process(tmp_path, api.base_url, redis_server.url) as url:
        request = awaiting_approval()
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
    with bot_process(tmp_path, unreachable, redis_server.url) as url:
        reply = SignedSender(url, SECRET).slash_command("/migrate", "envs", "U0ALICE", CHANNEL)
        assert reply.status == 200 and "grp" in str(reply.body)


@pytest.fixture(autouse=True)
def _closed_requests() -> Iterator[None]:
    yield
    Request.objects.filter(environment="grp").exclude(state__in=[State.APPROVED]).update(state=State.CANCELLED)
