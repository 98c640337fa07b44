"""Talking to the bot as people in a channel do, through the local Slack stand-in.

Used by the local mode and by the tests, so that both read like a chat transcript:
``chat.say("plan dev", user="U0ALICE")`` returns what the requester saw at once (the ack) and the
request's thread once the request has settled (finished, or waiting for someone).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from django.db.models import Max

from bot import cards
from controlplane.models import TERMINAL_STATES, Request
from slacklocal import Conversation, SignedSender, render_thread

DEFAULT_CHANNEL = "C0MIGRATIONS"
SETTLED = TERMINAL_STATES


@dataclass(frozen=True)
class Exchange:
    ack: str  # what the requester saw at once, only to them
    request: Request | None  # the request it created, as it settled
    thread: str  # the request's thread as a person reads it ("" when none was created)


class Chat:
    def __init__(
        self,
        *,
        sender: SignedSender,
        store: Conversation,
        command: str,
        channel: str = DEFAULT_CHANNEL,
        names: dict[str, str] | None = None,
        settle_seconds: float = 60,
    ) -> None:
        self.sender = sender
        self.store = store
        self.command = command
        self.channel = channel
        self.names = names or {}
        self.settle_seconds = settle_seconds

    def say(self, text: str, *, user: str) -> Exchange:
        """Type ``<command> <text>`` as ``user`` and wait until the request it made settles."""
        newest = Request.objects.aggregate(newest=Max("id"))["newest"] or 0
        reply = self.sender.slash_command(self.command, text, user, self.channel)
        ack = reply.body.get("text", "") if isinstance(reply.body, dict) else str(reply.body)
        if reply.status != 200:
            return Exchange(ack=f"(HTTP {reply.status}) {ack}".strip(), request=None, thread="")
        request = Request.objects.filter(id__gt=newest, requester=user).order_by("id").first()
        if request is None:
            return Exchange(ack=ack, request=None, thread="")
        request = self.settle(request.pk)
        return Exchange(ack=ack, request=request, thread=self.thread(request))

    def settle(self, request_id: int) -> Request:
        """Wait until the request is settled and its card shows it (the last thing posted)."""
        deadline = time.monotonic() + self.settle_seconds
        while True:
            request = Request.objects.get(pk=request_id)
            if request.state in SETTLED and self._card_shows(request):
                return request
            if time.monotonic() > deadline:
                raise TimeoutError(f"request #{request_id} did not settle (state {request.state})")
            time.sleep(0.02)

    def thread(self, request: Request) -> str:
        return render_thread(self.store, self.channel, request.thread_ts, self.names)

    def _card_shows(self, request: Request) -> bool:
        card = self.store.parent(self.channel, request.thread_ts) if request.thread_ts else None
        return card is not None and card.text == cards.request_card(request, self.command)[0]
