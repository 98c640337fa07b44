"""``migrabot bot`` as a real process (gunicorn, HTTP mode) for the tests that need one or two."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.utils import timezone
from services import free_port

from controlplane import services
from controlplane.models import Request, State
from slacklocal import SignedSender

BOT_TOKEN = "xoxb-bot-process-test"
SECRET = "bot-process-signing-secret"
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


@dataclass(frozen=True)
class BotProcess:
    url: str  # where Slack posts events
    process: subprocess.Popen[bytes]

    def kill(self) -> None:
        """SIGKILL the bot, gunicorn's master and its serving worker at once (a container dying)."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)


@contextmanager
def bot_process(
    tmp_path: Path, slack_api_url: str, redis_url: str, extra_env: dict[str, str] | None = None
) -> Iterator[BotProcess]:
    """``migrabot bot`` on a free port (gunicorn, HTTP mode), serving the environment ``grp`` of
    the example project, once it answers."""
    config = tmp_path / f"migrabot-{free_port()}.toml"
    config.write_text(CONFIG.format(project=Path(__file__).resolve().parents[2] / "example" / "backend"))
    port = free_port()
    env = (
        os.environ
        | {
            "MIGRABOT_CONFIG": str(config),
            "MIGRABOT_BROKER_URL": redis_url,
            "SLACK_BOT_TOKEN": BOT_TOKEN,
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": slack_api_url,
        }
        | (extra_env or {})
    )
    env.pop("SLACK_APP_TOKEN", None)
    log = tmp_path / f"bot-{port}.log"
    with open(log, "wb") as output:  # a file, not a pipe nobody drains
        process = subprocess.Popen(
            [sys.executable, "-m", "migrabot.cli", "bot", "--bind", f"127.0.0.1:{port}"],
            env=env,
            stdout=output,
            stderr=output,
            start_new_session=True,  # its own process group: ``kill`` takes gunicorn's worker too
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
                raise RuntimeError("the bot did not start:\n" + log.read_text())
            time.sleep(0.2)
        yield BotProcess(url, process)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)


def awaiting_approval(**fields: Any) -> Request:
    """A rollback on ``grp`` awaiting approval, as the planning step leaves it (``fields`` override)."""
    request, _ = services.request_create(
        verb="rollback", environment="grp", args=["media", "0003"], requester="U0ALICE", channel=CHANNEL,
        trigger_id=None,
    )
    services.request_transition(
        request_id=request.pk, from_states=[State.RECEIVED], to=State.PLANNING, actor="test", action="request.planning"
    )
    expires = timezone.now() + timedelta(hours=1)
    plan = {"plan": {"steps": []}, "plan_digest": "d" * 64, "approvals_required": 1, "expires_at": expires}
    moved = services.request_transition(
        request_id=request.pk,
        from_states=[State.PLANNING],
        to=State.AWAITING_APPROVAL,
        actor="test",
        action="request.awaiting_approval",
        fields=plan | fields,
    )
    assert moved is not None
    return moved
