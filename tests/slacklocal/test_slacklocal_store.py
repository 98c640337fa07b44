"""The recorded conversation: threads, edits, ephemerals and waiting for asynchronous posts."""

from __future__ import annotations

import threading
import time

import pytest

from slacklocal import Conversation


def test_threads_edits_and_ephemerals_are_kept_apart() -> None:
    store = Conversation(epoch=1700000000)
    card = store.post("C1", "UBOT", "rollback requested")
    reply = store.post("C1", "UBOT", "plan ready", thread_ts=card.ts)
    store.post("C2", "UBOT", "elsewhere")
    store.post_ephemeral("C1", "U1", "nope", thread_ts=card.ts)
    store.update("C1", card.ts, text="approved")

    assert card.ts == "1700000000.000100" and reply.ts == "1700000000.000200"
    assert [m.text for m in store.messages("C1")] == ["approved"]
    assert store.replies("C1", card.ts) == [reply]
    assert [e.text for e in store.ephemerals("U1", channel="C1", thread_ts=card.ts)] == ["nope"]
    assert store.update("C1", "9.000100", text="x") is None
    edited = store.parent("C1", card.ts)
    assert edited is not None and (edited.edits, card.text) == (1, "rollback requested")  # snapshots


def test_wait_for_wakes_when_another_thread_posts() -> None:
    store = Conversation()
    card = store.post("C1", "UBOT", "plan staging")
    poster = threading.Timer(0.05, lambda: store.post("C1", "UBOT", "done", thread_ts=card.ts))
    poster.start()

    started = time.monotonic()
    replies = store.wait_for(lambda: store.replies("C1", card.ts), timeout=5)

    assert [m.text for m in replies] == ["done"]
    assert time.monotonic() - started < 1
    poster.join()


def test_wait_for_times_out() -> None:
    store = Conversation()
    with pytest.raises(TimeoutError):
        store.wait_for(lambda: store.messages("C1"), timeout=0.05)
