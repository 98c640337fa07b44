"""The bot in process for the security tests (the ``inproc`` fixture): the Bolt app over real HTTP with real signatures,
the local Slack stand-in, the control plane — and, at the bot's boundary, an ``enqueue`` that
records what would be sent to a worker instead of sending it. No worker and no target: these
tests are about what reaches the queue, a subprocess or the database, which is nothing.

People and policy (``CONFIG``): alice may request on both environments; bob approves; carol
approves through the group S0DBAS; dave only reads ``sec-guarded``; mallory is nobody.
``sec-guarded`` takes requests only in C0OPS and gates ``migrate`` behind an approval too.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from slack_sdk import WebClient

from bot.app import Bot, build_app
from bot.server import BackgroundServer
from controlplane import services
from controlplane.models import AuditEvent, Request, State
from migrabot.config import Config, load_config
from slacklocal import SignedSender, SlackWebAPI

EXAMPLE_PROJECT = Path(__file__).resolve().parents[2] / "example" / "backend"
BOT_TOKEN = "xoxb-security-token"
SIGNING_SECRET = "security-signing-secret"
PEOPLE = {"U0ALICE": "alice", "U0BOB": "bob", "U0CAROL": "carol", "U0DAVE": "dave", "U0MALLORY": "mallory"}
GROUPS = {"S0DBAS": ["U0CAROL"]}
OPS, ELSEWHERE = "C0OPS", "C0ELSEWHERE"
CATALOG = {"accounts": ["0001_initial", "0002_profile"], "media": ["0001_initial", "0002_image", "0003_image_position"]}

CONFIG = """
[environments.sec-open]
project = "{project}"
settings = "backend.settings"
[environments.sec-open.policy]
readers = ["*"]
requesters = ["*"]
approvers = ["U0BOB", "S0DBAS"]

[environments.sec-guarded]
project = "{project}"
settings = "backend.settings"
production = true
[environments.sec-guarded.policy]
readers = ["U0ALICE", "U0BOB", "U0CAROL", "U0DAVE"]
requesters = ["U0ALICE"]
approvers = ["U0BOB", "S0DBAS"]
approval_for = ["migrate"]
channels = ["C0OPS"]
"""

# What would start another program. Python reports these to audit hooks before doing them.
SPAWNING = ("subprocess.Popen", "os.system", "os.exec", "os.posix_spawn", "os.spawn", "os.fork")


@dataclass
class InProcessBot:
    api: SlackWebAPI
    config: Config
    sender: SignedSender
    bot: Bot
    enqueued: list[tuple[int, str]] = field(default_factory=list)  # (request id, queue)
    spawned: list[str] = field(default_factory=list)  # programs started while watching
    watching: threading.Event = field(default_factory=threading.Event)

    @contextmanager
    def watch(self) -> Iterator[list[str]]:
        """Record every program started in this process meanwhile (the list it yields)."""
        self.spawned.clear()
        self.watching.set()
        try:
            yield self.spawned
        finally:
            self.watching.clear()

    def newest_ids(self) -> tuple[int, int]:
        """The newest request and audit event ids: tests look only at what comes after them."""
        request = Request.objects.order_by("-id").values_list("id", flat=True).first() or 0
        event = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
        return request, event

    def wait_enqueued(self, request_id: int, timeout: float = 10) -> bool:
        deadline = time.monotonic() + timeout
        while not any(pk == request_id for pk, _ in self.enqueued):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def pending(
        self, env: str, *, verb: str = "rollback", requester: str = "U0ALICE", expired: bool = False
    ) -> Request:
        """A request awaiting approval with its plan message posted, as the planning step leaves it."""
        channel = OPS
        request, _ = services.request_create(
            verb=verb,
            environment=env,
            args=["media", "0002_image"],
            requester=requester,
            channel=channel,
            trigger_id=None,
        )
        services.request_transition(
            request_id=request.pk,
            from_states=[State.RECEIVED],
            to=State.PLANNING,
            actor="test",
            action="request.planning",
        )
        expires = timezone.now() + timedelta(minutes=-1 if expired else 60)
        fields = {
            "plan": {"steps": []},
            "plan_digest": f"digest-{request.pk}",
            "approvals_required": 1,
            "expires_at": expires,
        }
        services.request_transition(
            request_id=request.pk,
            from_states=[State.PLANNING],
            to=State.AWAITING_APPROVAL,
            actor="test",
            action="request.awaiting_approval",
            fields=fields,
        )
        ts = self.api.methods.call("chat.postMessage", {"channel": channel, "text": f"Plan for #{request.pk}"})["ts"]
        services.request_set_plan_message(request_id=request.pk, ts=ts)
        return Request.objects.get(pk=request.pk)


@pytest.fixture(scope="module")
def inproc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessBot]:
    folder = tmp_path_factory.mktemp("security")
    (folder / "migrabot.toml").write_text(CONFIG.format(project=EXAMPLE_PROJECT))
    config = load_config(folder / "migrabot.toml")
    for name in config.environments:
        services.catalog_publish(environment=name, apps=CATALOG)
    with SlackWebAPI(BOT_TOKEN, users={u: {"name": n} for u, n in PEOPLE.items()}, usergroups=GROUPS) as api:
        enqueued: list[tuple[int, str]] = []
        client = WebClient(token=BOT_TOKEN, base_url=api.base_url)
        bot = build_app(
            config=config,
            client=client,
            signing_secret=SIGNING_SECRET,
            enqueue=lambda request_id, *, queue: enqueued.append((request_id, queue)),
        )
        bot.start()
        try:
            with BackgroundServer(bot.app) as server:
                sender = SignedSender(server.url, SIGNING_SECRET, store=api.store, user_names=PEOPLE)
                inproc = InProcessBot(api, config, sender, bot, enqueued)
                sys.addaudithook(_spawn_watcher(inproc))
                yield inproc
                inproc.watching.clear()
        finally:
            bot.close()


def _spawn_watcher(bot: InProcessBot):  # type: ignore[no-untyped-def]
    """An audit hook (it cannot be removed, so it only records while ``bot.watching`` is set)."""

    def hook(event: str, args: tuple[object, ...]) -> None:
        if bot.watching.is_set() and event.startswith(SPAWNING):
            bot.spawned.append(f"{event} {args[:2]!r}")

    return hook
