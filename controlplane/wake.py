"""Waking the notifier when something is recorded, so Slack shows it within a moment.

A recorded post calls ``after_commit()``; the notifier waits on ``wait()``. In one process (local
mode, tests) that is an event; across processes (a worker beside the bot) it is a message on a
Redis channel of the broker. A lost wake-up only delays: the notifier also looks every
``POLL_SECONDS`` on its own.
"""

from __future__ import annotations

import logging
import os
import threading
from functools import cache
from typing import Any

from django.db import transaction

log = logging.getLogger(__name__)
CHANNEL = "migrabot.posts"
POLL_SECONDS = 1.0

_recorded = threading.Event()
_to_publish = threading.Event()  # a wake-up for the other processes, which ``_publish`` sends
_publisher: threading.Thread | None = None
_publisher_lock = threading.Lock()


def after_commit() -> None:
    """Call inside the transaction that recorded a post: the wake-up goes once it commits."""
    transaction.on_commit(_wake)


def _wake() -> None:
    _recorded.set()
    if _redis() is not None:
        # Sent from a thread of its own: the commit is often a slash command's, before its ack,
        # and Redis is a network call (~0.2 ms; seconds when it hangs). Wake-ups that come while
        # one is sent go out as one: a notifier woken reconciles all that is pending anyway.
        _to_publish.set()
        _start_publisher()


def _start_publisher() -> None:
    global _publisher
    with _publisher_lock:
        if _publisher is None:
            _publisher = threading.Thread(target=_publish, name="wake-publisher", daemon=True)
            _publisher.start()


def _publish() -> None:
    while True:
        _to_publish.wait()
        _to_publish.clear()
        try:
            _redis().publish(CHANNEL, b"1")
        except Exception as error:  # the broker is down: the notifier's own look catches up
            log.warning("wake.unpublished error=%r", error)


def _forget_publisher() -> None:
    """A forked child (a Celery pool process) has none of its parent's threads: it starts its own."""
    global _publisher, _publisher_lock, _to_publish
    _publisher, _publisher_lock, _to_publish = None, threading.Lock(), threading.Event()


os.register_at_fork(after_in_child=_forget_publisher)


def wait(timeout: float = POLL_SECONDS) -> None:
    """Until something was recorded (here or, through Redis, elsewhere), or ``timeout``."""
    _recorded.wait(timeout)
    _recorded.clear()


def listen(stopped: threading.Event) -> None:
    """Relay Redis wake-ups into this process until ``stopped``; reconnects with backoff."""
    pause = 1.0
    while not stopped.is_set():
        client = _redis()
        if client is None:
            return
        try:
            subscription = client.pubsub(ignore_subscribe_messages=True)
            subscription.subscribe(CHANNEL)
            pause = 1.0
            while not stopped.is_set():
                if subscription.get_message(timeout=1.0) is not None:
                    _recorded.set()
        except Exception as error:
            log.warning("wake.listen_failed error=%r", error)
            stopped.wait(pause)
            pause = min(pause * 2, 30.0)


def _redis() -> Any:
    """The broker's Redis, where there is one (local mode's in-memory broker has none)."""
    url = os.environ.get("MIGRABOT_BROKER_URL", "")
    return _client(url) if url.startswith(("redis://", "rediss://", "unix://")) else None


@cache
def _client(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=2)
