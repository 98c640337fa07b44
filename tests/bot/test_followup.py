"""After the ack: new requests go to the broker from one job, in order, and are marked enqueued;
a send that fails leaves its request to the sweep and says so in the thread."""

from __future__ import annotations

import threading
import uuid
from pathlib import Path

import pytest
from slack_sdk import WebClient

from bot.followup import Enqueue, FollowUp
from bot.notify import Notifier
from controlplane import services
from controlplane.models import Request
from migrabot.config import Config, load_config

EXAMPLE_PROJECT = Path(__file__).resolve().parents[2] / "example" / "backend"


@pytest.fixture
def config(tmp_path: Path) -> Config:
    env = f"fu{uuid.uuid4().hex[:8]}"
    (tmp_path / "migrabot.toml").write_text(
        f'[environments.{env}]\nproject = "{EXAMPLE_PROJECT}"\nsettings = "backend.settings"\n'
    )
    return load_config(tmp_path / "migrabot.toml")


def follow_up(config: Config, enqueue: Enqueue) -> FollowUp:
    notifier = Notifier(WebClient(token="xoxb-followup", base_url="http://127.0.0.1:9/"), config)
    return FollowUp(config=config, notifier=notifier, enqueue=enqueue)


def new_request(config: Config) -> Request:
    (env,) = config.environments
    request, _ = services.request_create(
        verb="showmigrations", environment=env, args=[], requester="U0ALICE", channel="C0FU", trigger_id=None
    )
    return request


def test_new_requests_go_out_in_order_after_the_ack_and_are_marked_enqueued(config: Config) -> None:
    broker_answers = threading.Event()
    sent: list[int] = []

    def slow_broker(request_id: int, *, queue: str) -> None:
        broker_answers.wait(10)
        sent.append(request_id)

    followup = follow_up(config, slow_broker)
    requests = [new_request(config) for _ in range(5)]
    for request in requests:
        followup.start(request)  # returns while the broker is still busy with the first
    assert sent == []
    broker_answers.set()
    followup.shutdown()
    assert sent == [request.pk for request in requests]
    marked = Request.objects.filter(pk__in=sent, enqueued_at__isnull=False)
    assert marked.count() == len(requests)


def test_a_send_that_fails_is_left_to_the_sweep_and_told(config: Config) -> None:
    requests = [new_request(config) for _ in range(3)]
    lost = requests[1].pk

    def flaky_broker(request_id: int, *, queue: str) -> None:
        if request_id == lost:
            raise ConnectionError("Redis went away")

    followup = follow_up(config, flaky_broker)
    followup.enqueue(*requests)
    followup.shutdown()
    unsent = Request.objects.filter(pk__in=[r.pk for r in requests], enqueued_at__isnull=True)
    assert list(unsent.values_list("pk", flat=True)) == [lost]
    assert requests[1].posts.filter(kind="note").exists() and not requests[0].posts.filter(kind="note").exists()
