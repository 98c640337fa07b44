"""What happens after the ack, off Slack's request thread: posting, updating and enqueueing.

The ack path only parses, checks and writes rows; Slack calls and the broker wait until here, so
``ack()`` never waits on the network. The card is posted before the task is sent, so a worker
always has a thread to answer in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from django.db import close_old_connections
from django.utils import timezone

from bot import cards
from bot.notify import Notifier
from controlplane import selectors, services
from controlplane.models import Request, State
from migrabot import messages
from migrabot.config import Config

log = logging.getLogger(__name__)

Enqueue = Callable[..., None]


class FollowUp:
    def __init__(self, *, config: Config, notifier: Notifier, enqueue: Enqueue, threads: int = 4) -> None:
        self._config = config
        self.notifier = notifier
        self._enqueue = enqueue
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="followup")

    @property
    def environments(self) -> list[str]:
        """The environments this bot serves (several bots may share one control plane)."""
        return list(self._config.environments)

    def submit(self, job: Callable[..., None], *args: Any, **kwargs: Any) -> Future[None]:
        return self._executor.submit(self._guarded, job, *args, **kwargs)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True)

    # --- jobs ----------------------------------------------------------------------------------

    def start(self, request_id: int) -> None:
        """A new request: its card, then its first task."""
        request = selectors.request_get(request_id=request_id)
        if request is None:
            return
        if not request.thread_ts:
            services.request_attach_card(request_id=request_id, thread_ts=self.notifier.post_card(request))
            request.refresh_from_db()
        self.enqueue(request)

    def enqueue(self, request: Request) -> None:
        queue = self._config.environments[request.environment].celery_queue
        try:
            self._enqueue(request.pk, queue=queue)
        except Exception as error:  # kombu raises more than OperationalError when Redis goes away
            # The row keeps its state with no ``enqueued_at``; the sweep sends it once the broker is back.
            log.warning("request.queue_unreachable request=%s queue=%s error=%r", request.pk, queue, error)
            self.notifier.reply(request, cards.note(messages.queue_unreachable(request.pk)))
            return
        services.request_mark_enqueued(request_id=request.pk)

    def decided(self, request_id: int, person: str, approvers: list[str], final: bool) -> None:
        """After a click: show it in the thread; once approved, send the run to the worker."""
        request = Request.objects.get(pk=request_id)
        if final:
            self.show_outcome(request, person)
        else:
            self.notifier.reply(request, cards.note(messages.approved_by(approvers, request.approvals_required)))
        if request.state == State.APPROVED:
            self.enqueue(request)

    def show_outcome(self, request: Request, person: str = "") -> None:
        """Replace the buttons with who decided what and when, and update the card."""
        if request.plan_ts:
            self.notifier.update(request, request.plan_ts, cards.plan_decided(request, person, timezone.now()))
        self.notifier.update_card(request)

    def tell(self, *, channel: str, user: str, text: str, thread_ts: str | None = None) -> None:
        self.notifier.ephemeral(channel=channel, user=user, text=text, thread_ts=thread_ts)

    def announce(self, *, channel: str, text: str) -> None:
        self.notifier.client.chat_postMessage(channel=channel, text=text)

    @staticmethod
    def _guarded(job: Callable[..., None], *args: Any, **kwargs: Any) -> None:
        try:
            job(*args, **kwargs)
        except Exception:
            log.exception("followup.failed job=%s", getattr(job, "__name__", job))
        finally:
            close_old_connections()
