"""What happens right after the ack, off the request thread: post the card, then enqueue.

The ack path only parses, authorizes and writes the request row; Slack calls and the broker wait
until here, so ``ack()`` never waits on the network. The card is posted before the task is sent,
so a worker always has a thread to answer in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from django.db import close_old_connections
from kombu.exceptions import OperationalError as BrokerUnavailable

from bot import cards
from bot.notify import Notifier
from controlplane import selectors, services
from migrabot import messages
from migrabot.config import Config

log = logging.getLogger(__name__)

Enqueue = Callable[..., None]


class FollowUp:
    def __init__(self, *, config: Config, notifier: Notifier, enqueue: Enqueue, threads: int = 4) -> None:
        self._config = config
        self._notifier = notifier
        self._enqueue = enqueue
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="followup")

    def submit(self, request_id: int) -> Future[None]:
        return self._executor.submit(self._run, request_id)

    def shutdown(self) -> None:
        self._executor.shutdown(wait=True)

    def _run(self, request_id: int) -> None:
        try:
            self._post_and_enqueue(request_id)
        except Exception:
            log.exception("request.followup_failed request=%s", request_id)
        finally:
            close_old_connections()

    def _post_and_enqueue(self, request_id: int) -> None:
        request = selectors.request_get(request_id=request_id)
        if request is None:
            return
        if not request.thread_ts:
            services.request_attach_card(request_id=request_id, thread_ts=self._notifier.post_card(request))
            request.refresh_from_db()
        queue = self._config.environments[request.environment].celery_queue
        try:
            self._enqueue(request_id, queue=queue)
        except BrokerUnavailable:
            # The row stays ``received`` with no ``enqueued_at``; ``requeue_pending`` sends it later.
            log.warning("request.queue_unreachable request=%s queue=%s", request_id, queue)
            self._notifier.reply(request, cards.note(messages.queue_unreachable(request_id)))
            return
        services.request_mark_enqueued(request_id=request_id)
