"""Two bot processes behind one load balancer, against one control plane: each with its notifier
and its sweeps. Nothing is posted twice, no sweep acts twice, and killing either loses nothing."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

from bot_process import BOT_TOKEN, CHANNEL, awaiting_approval, bot_process
from django.utils import timezone
from services import RedisServer

from controlplane import services
from controlplane.models import AuditEvent, Post, Request, State
from slacklocal import SlackWebAPI

FAST = {"MIGRABOT_MIN_UPDATE_SECONDS": "0.1", "MIGRABOT_POST_CLAIM_SECONDS": "3", "MIGRABOT_SWEEP_SECONDS": "0.3"}


def record_requests(count: int, notes: int, tag: str) -> list[Request]:
    """Requests with their cards and a few notes each, as workers would record them."""
    requests = []
    for number in range(count):
        request, _ = services.request_create(
            verb="showmigrations", environment="grp", args=[], requester="U0ALICE", channel=CHANNEL, trigger_id=None
        )
        for note in range(notes):
            services.post_note(request_id=request.pk, text=f"{tag} request {number} note {note}")
        requests.append(request)
    return requests


def wait_until_shown(requests: list[Request], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while Post.objects.filter(request__in=requests, pending=True).exists():
        assert time.monotonic() < deadline, "some posts were never shown"
        time.sleep(0.05)


def posted_texts(api: SlackWebAPI, tag: str) -> Counter[str]:
    return Counter(
        str(call.params.get("text", ""))
        for call in api.calls_to("chat.postMessage")
        if call.status == 200 and str(call.params.get("text", "")).startswith(tag)
    )


def test_two_bots_post_every_message_once_and_killing_one_loses_nothing(
    tmp_path: Path, redis_server: RedisServer
) -> None:
    with (
        SlackWebAPI(BOT_TOKEN) as api,
        bot_process(tmp_path, api.base_url, redis_server.url, FAST) as first,
        bot_process(tmp_path, api.base_url, redis_server.url, FAST),
    ):
        before = record_requests(10, notes=5, tag="before")
        wait_until_shown(before)
        assert posted_texts(api, "before") == Counter(
            {f"before request {r} note {n}": 1 for r in range(10) for n in range(5)}
        )
        cards = Counter(
            call.params.get("channel") for call in api.calls_to("chat.postMessage") if not call.params.get("thread_ts")
        )
        assert cards[CHANNEL] == 10  # one card a request, not one per bot

        # A sweep due in both bots acts once: one expiry, one note in the thread.
        due = awaiting_approval(expires_at=timezone.now())
        deadline = time.monotonic() + 30
        while Request.objects.get(pk=due.pk).state != State.EXPIRED:
            assert time.monotonic() < deadline, "no bot expired the request"
            time.sleep(0.05)
        time.sleep(2)  # both bots sweep several times meanwhile
        assert AuditEvent.objects.filter(request=due, action="request.expired").count() == 1
        wait_until_shown([due])
        expired_notes = [
            c for c in api.calls_to("chat.postMessage") if f"Request #{due.pk} has expired" in str(c.params.get("text"))
        ]
        assert len(expired_notes) == 1

        first.kill()  # the load balancer's other bot goes on alone
        after = record_requests(5, notes=3, tag="after")
        wait_until_shown(after)
        assert posted_texts(api, "after") == Counter(
            {f"after request {r} note {n}": 1 for r in range(5) for n in range(3)}
        )
    Request.objects.filter(environment="grp").exclude(state=State.EXPIRED).update(state=State.CANCELLED)
