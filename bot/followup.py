"""What happens after the ack, off Slack's request thread: enqueueing, and recording decisions.

The ack path only parses, checks and writes rows; the broker waits until here, so ``ack()`` never
waits on the network. New requests go out from one job at a time, in the order they came, each
batch marked enqueued in one update: under load that is one write for many requests instead of a
read and a write each, so the ack path's own transactions wait less (SQLite has one writer).

Nothing here waits on Slack either: what the thread should say is recorded
(``services.post_record``) and the notifier shows it. Only the bot's private answers to one person
(a refused click) and channel announcements are direct Slack calls, still after the ack.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from django.db import close_old_connections
from django.utils import timezone

from bot.notify import Notifier
from controlplane import services
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
        self._new: list[Request] = []  # committed, not yet handed to the broker
        self._sending = False  # a job is sending ``_new``
        self._lock = threading.Lock()

    @property
    def environments(self) -> list[str]:
        """The environments this bot serves (several bots may share one control plane)."""
        return list(self._config.environments)

    def submit(self, job: Callable[..., None], *args: Any, **kwargs: Any) -> Future[None]:
        """Run ``job`` after the ack, its log lines tagged as the submitter's were (``migrabot.logs``)."""
        return self._executor.submit(contextvars.copy_context().run, self._guarded, job, *args, **kwargs)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True)

    # --- jobs ----------------------------------------------------------------------------------

    def start(self, request: Request) -> None:
        """A new request, committed (its card is already recorded for the notifier): its first
        task goes out after the ack, from the one job that sends what came in meanwhile too."""
        with self._lock:
            self._new.append(request)
            idle, self._sending = not self._sending, True
        if idle:
            self.submit(self._send_new)

    def _send_new(self) -> None:
        while True:
            with self._lock:
                batch, self._new = self._new, []
                self._sending = bool(batch)
            if not batch:
                return
            try:
                self.enqueue(*batch)
            except Exception:  # the control plane: rows with no ``enqueued_at`` are the sweep's
                log.exception("request.enqueue_failed requests=%s", [request.pk for request in batch])

    def enqueue(self, *requests: Request) -> None:
        """Send each request's task, then record the ones sent (a resend is harmless: the worker claims the row)."""
        sent = []
        for request in requests:
            queue = self._config.environments[request.environment].celery_queue
            try:
                self._enqueue(request.pk, queue=queue)
            except Exception as error:  # kombu raises more than OperationalError when Redis goes away
                # The row keeps its state with no ``enqueued_at``; the sweep sends it once the broker is back.
                log.warning("request.queue_unreachable request=%s queue=%s error=%r", request.pk, queue, error)
                services.post_note(request_id=request.pk, text=messages.queue_unreachable(request.pk))
                continue
            sent.append(request.pk)
        services.request_mark_enqueued(request_ids=sent)

    def decided(self, request_id: int, person: str, approvers: list[str], final: bool) -> None:
        """After a click: show it in the thread; once approved, send the run to the worker."""
        request = Request.objects.get(pk=request_id)
        if final:
            self.show_outcome(request, person)
        else:
            services.post_note(request_id=request.pk, text=messages.approved_by(approvers, request.approvals_required))
        if request.state == State.APPROVED:
            self.enqueue(request)

    def show_outcome(self, request: Request, person: str = "") -> None:
        """Replace the plan's buttons with who decided what and when (the card follows its state)."""
        if request.plan:
            services.post_record(
                request_id=request.pk,
                key="plan",
                kind="plan",
                data={"decided_by": person, "at": timezone.now().isoformat(), "state": request.state},
            )

    def tell(self, *, channel: str, user: str, text: str, thread_ts: str | None = None) -> None:
        self.notifier.tell(channel=channel, user=user, text=text, thread_ts=thread_ts)

    def announce(self, *, channel: str, text: str) -> None:
        self.notifier.announce(channel=channel, text=text)

    @staticmethod
    def _guarded(job: Callable[..., None], *args: Any, **kwargs: Any) -> None:
        try:
            job(*args, **kwargs)
        except Exception:
            log.exception("followup.failed job=%s", getattr(job, "__name__", job))
        finally:
            close_old_connections()
