"""Talking to the bot as people in a channel do, through the local Slack stand-in.

Used by the local mode and by the tests, so that both read like a chat transcript:
``chat.say("plan dev", user="U0ALICE")`` returns what the requester saw at once (the ack) and the
request's thread once the request has settled (finished, or waiting for someone);
``chat.deny(user="U0CAROL", reason="…")`` clicks Deny, types the reason into the dialog the bot
opens, and submits it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from django.db.models import Max

from controlplane.models import TERMINAL_STATES, Post, Request, State
from slacklocal import Conversation, Message, SignedSender, render_modal, render_thread
from slackui import cards
from slackui.modals import REASON_ACTION
from slackui.text import render_blocks

DEFAULT_CHANNEL = "C0MIGRATIONS"
SETTLED = TERMINAL_STATES | {State.AWAITING_APPROVAL}


@dataclass(frozen=True)
class Exchange:
    ack: str  # what the requester saw at once, only to them (a dialog still open: as it shows)
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

    def home(self, user: str) -> str:
        """Open the app's Home tab as ``user`` (Slack's ``app_home_opened``) and read what the bot
        publishes there, as a person reads it."""
        before = self.store.home(user)
        reply = self.sender.event("app_home_opened", user)
        if reply.status != 200:
            return f"(HTTP {reply.status})"
        def published() -> dict[str, Any] | None:
            view = self.store.home(user)
            return view if view is not before else None

        view = self.store.wait_for(published, timeout=self.settle_seconds)
        assert view is not None  # wait_for returns only once it is truthy
        return "\n".join(render_blocks(view.get("blocks", []), self.names))

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
        return Exchange(ack=ack, request=request, thread=self.thread(request, viewer=user))

    def click(self, action_id: str, *, user: str, request: Request | None = None) -> Exchange:
        """Click the newest button ``action_id`` (in ``request``'s thread, if given) as ``user``."""
        message = self._newest_with_button(action_id, request)
        if message is None:
            return Exchange(ack=f"(there is no {action_id} button to click)", request=None, thread="")
        clicked = Request.objects.get(channel=self.channel, thread_ts=message.thread_ts)
        before = self._activity(clicked, user)
        value = next(
            element["value"]
            for block in message.blocks
            for element in block.get("elements", [])
            if element.get("action_id") == action_id
        )
        reply = self.sender.click(action_id, value, user, self.channel, message.ts)
        if reply.status != 200:
            return Exchange(ack=f"(HTTP {reply.status})", request=clicked, thread=self.thread(clicked, viewer=user))
        self.store.wait_for(lambda: self._activity(clicked, user) != before, timeout=self.settle_seconds)
        settled = self.settle(clicked.pk)
        return Exchange(ack="", request=settled, thread=self.thread(settled, viewer=user))

    def deny(self, *, user: str, reason: str, request: Request | None = None) -> Exchange:
        """Click Deny (the newest, or ``request``'s) as ``user``, type ``reason`` into the dialog the
        bot opens and submit it. When no dialog opens (the click was refused, or Slack could not
        open it) the thread says why; when the bot answers the submission with errors, ``ack`` is
        the dialog as it shows them, still open."""
        opened = len(self.store.modals(user))
        clicked = self.click(cards.DENY, user=user, request=request)
        modals = self.store.modals(user, open_only=True)
        if clicked.request is None or len(self.store.modals(user)) == opened or not modals:
            return clicked
        denied = clicked.request
        before = self._activity(denied, user)
        reply = self.sender.submit_view(user, {REASON_ACTION: reason}, view_id=modals[-1].id)
        if reply.status != 200:
            return Exchange(ack=f"(HTTP {reply.status})", request=denied, thread=self.thread(denied, viewer=user))
        modal = self.store.modal(modals[-1].id)
        if modal is not None and not modal.closed:  # refused: the dialog shows why
            shown = render_modal(modal, self.names)
            return Exchange(ack=shown, request=denied, thread=self.thread(denied, viewer=user))
        self.store.wait_for(lambda: self._activity(denied, user) != before, timeout=self.settle_seconds)
        settled = self.settle(denied.pk)
        return Exchange(ack="", request=settled, thread=self.thread(settled, viewer=user))

    def settle(self, request_id: int) -> Request:
        """Wait until the request is settled and shows it: its card is the last thing updated,
        and a request awaiting approval shows its plan's buttons last."""
        deadline = time.monotonic() + self.settle_seconds
        while True:
            request = Request.objects.get(pk=request_id)
            shown = not Post.objects.filter(request=request, pending=True).exists()  # the notifier caught up
            if request.state in SETTLED and shown and self._card_shows(request) and self._plan_shown(request):
                return request
            if time.monotonic() > deadline:
                raise TimeoutError(f"request #{request_id} did not settle (state {request.state})")
            time.sleep(0.02)

    def thread(self, request: Request, viewer: str | None = None) -> str:
        """The thread as ``viewer`` sees it (their own ephemerals only), or with every ephemeral."""
        return render_thread(self.store, self.channel, request.thread_ts, self.names, viewer=viewer)

    def _plan_shown(self, request: Request) -> bool:
        return request.state != State.AWAITING_APPROVAL or self.store.message(self.channel, request.plan_ts) is not None

    def _activity(self, request: Request, user: str) -> tuple[int, int, int, int]:
        """A fingerprint of what happened in a thread and to one person (a dialog opened for them
        counts), to wait for a change."""
        replies = self.store.replies(self.channel, request.thread_ts)
        parent = self.store.parent(self.channel, request.thread_ts)
        edits = sum(message.edits for message in replies) + (parent.edits if parent else 0)
        told = len(self.store.ephemerals(user=user, channel=self.channel))
        return len(replies), edits, told, len(self.store.modals(user))

    def _newest_with_button(self, action_id: str, request: Request | None) -> Message | None:
        threads = [request.thread_ts] if request else [m.ts for m in self.store.messages(self.channel)]
        candidates = [
            message
            for ts in threads
            for message in self.store.replies(self.channel, ts)
            if any(e.get("action_id") == action_id for b in message.blocks for e in b.get("elements", []))
        ]
        return max(candidates, key=lambda m: float(m.ts), default=None)

    def _card_shows(self, request: Request) -> bool:
        card = self.store.parent(self.channel, request.thread_ts) if request.thread_ts else None
        return card is not None and card.text == cards.request_card(request, self.command)[0]
