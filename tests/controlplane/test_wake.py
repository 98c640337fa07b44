"""Waking other processes' notifiers through Redis never holds up the commit that recorded a post."""

from __future__ import annotations

import queue
import threading

import pytest

from controlplane import wake


def test_the_redis_wake_up_is_sent_from_a_thread_of_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    published: queue.SimpleQueue[int] = queue.SimpleQueue()
    redis_answers = threading.Event()

    class HangingRedis:
        def publish(self, channel: str, message: bytes) -> None:
            assert channel == wake.CHANNEL
            redis_answers.wait(10)  # a Redis that hangs, as one does when its host goes away
            published.put(threading.get_ident())

    monkeypatch.setattr(wake, "_redis", HangingRedis)
    wake._wake()  # what runs when the transaction commits: it returns with Redis still silent
    assert published.empty()
    redis_answers.set()
    assert published.get(timeout=10) != threading.get_ident()
