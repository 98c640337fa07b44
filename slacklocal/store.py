"""The recorded conversation: what the bot posted, as Slack would hold it.

Records are frozen snapshots; an update replaces the record, so a reader never sees a
half-applied change. One Condition guards everything, which lets `wait_for` wake callers
the moment an asynchronous post lands instead of polling with sleeps.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from typing import Any, TypeVar

T = TypeVar("T")
Blocks = tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class File:
    id: str
    name: str
    title: str
    content: str  # decoded as UTF-8 (undecodable bytes replaced): we only ever display it


@dataclass(frozen=True)
class Message:
    channel: str
    ts: str
    user: str | None
    text: str = ""
    blocks: Blocks = ()
    thread_ts: str | None = None
    files: tuple[File, ...] = ()
    edits: int = 0  # how many chat.update calls replaced it

    def as_api(self) -> dict[str, Any]:
        """The message as Slack's APIs and interactive payloads show it."""
        out: dict[str, Any] = {"type": "message", "user": self.user, "ts": self.ts, "text": self.text}
        if self.blocks:
            out["blocks"] = list(self.blocks)
        if self.thread_ts:
            out["thread_ts"] = self.thread_ts
        return out


@dataclass(frozen=True)
class Ephemeral:
    channel: str
    user: str  # the only person who sees it
    ts: str
    text: str = ""
    blocks: Blocks = ()
    thread_ts: str | None = None


class Conversation:
    """Messages per channel plus ephemerals, safe to share between server and test threads."""

    def __init__(self, epoch: int | None = None) -> None:
        self.epoch = int(time.time()) if epoch is None else epoch
        self._cond = threading.Condition()  # wraps an RLock: predicates may call the queries
        self._messages: dict[tuple[str, str], Message] = {}  # insertion order == ts order
        self._ephemerals: list[Ephemeral] = []
        self._homes: dict[str, dict[str, Any]] = {}  # user id -> the home view last published for them
        self._seq: Iterator[int] = itertools.count(1)

    def _next_ts(self) -> str:
        # Slack's ts is "seconds.micro"; a counter keeps it unique and increasing per workspace.
        micros = self.epoch * 1_000_000 + 100 * next(self._seq)
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    # -- writes (the Web API stand-in calls these) --------------------------------------

    def post(
        self,
        channel: str,
        user: str | None,
        text: str = "",
        blocks: Iterable[dict[str, Any]] = (),
        thread_ts: str | None = None,
        files: Iterable[File] = (),
    ) -> Message:
        with self._cond:
            msg = Message(channel, self._next_ts(), user, text, tuple(blocks), thread_ts, tuple(files))
            self._messages[(channel, msg.ts)] = msg
            self._cond.notify_all()
            return msg

    def update(
        self, channel: str, ts: str, text: str | None = None, blocks: Iterable[dict[str, Any]] | None = None
    ) -> Message | None:
        """Replace text and/or blocks of an existing message; None if there is no such message."""
        with self._cond:
            old = self._messages.get((channel, ts))
            if old is None:
                return None
            new = replace(
                old,
                text=old.text if text is None else text,
                blocks=old.blocks if blocks is None else tuple(blocks),
                edits=old.edits + 1,
            )
            self._messages[(channel, ts)] = new
            self._cond.notify_all()
            return new

    def post_ephemeral(
        self,
        channel: str,
        user: str,
        text: str = "",
        blocks: Iterable[dict[str, Any]] = (),
        thread_ts: str | None = None,
    ) -> Ephemeral:
        with self._cond:
            eph = Ephemeral(channel, user, self._next_ts(), text, tuple(blocks), thread_ts)
            self._ephemerals.append(eph)
            self._cond.notify_all()
            return eph

    def replace_ephemeral(self, ts: str, text: str, blocks: Iterable[dict[str, Any]] = ()) -> Ephemeral | None:
        """Replace an ephemeral's content in place (a response_url's replace_original); None if unknown."""
        with self._cond:
            for i, old in enumerate(self._ephemerals):
                if old.ts == ts:
                    self._ephemerals[i] = replace(old, text=text, blocks=tuple(blocks))
                    self._cond.notify_all()
                    return self._ephemerals[i]
            return None

    # -- queries ---------------------------------------------------------------------------

    def publish_home(self, user: str, view: dict[str, Any]) -> None:
        with self._cond:
            self._homes[user] = view
            self._cond.notify_all()

    def home(self, user: str) -> dict[str, Any] | None:
        """The home view last published for `user` (views.publish), if any."""
        with self._cond:
            return self._homes.get(user)

    def message(self, channel: str, ts: str) -> Message | None:
        with self._cond:
            return self._messages.get((channel, ts))

    def parent(self, channel: str, ts: str) -> Message | None:
        """The thread's parent message (the card), as currently shown."""
        return self.message(channel, ts)

    def messages(self, channel: str) -> list[Message]:
        """Top-level messages of a channel, oldest first."""
        with self._cond:
            return [m for (c, _), m in self._messages.items() if c == channel and m.thread_ts is None]

    def replies(self, channel: str, thread_ts: str) -> list[Message]:
        """Messages in a thread (excluding the parent), oldest first."""
        with self._cond:
            return [m for (c, _), m in self._messages.items() if c == channel and m.thread_ts == thread_ts]

    def ephemerals(
        self, user: str | None = None, channel: str | None = None, thread_ts: str | None = None
    ) -> list[Ephemeral]:
        """Ephemerals, oldest first, filtered by whichever of user/channel/thread_ts is given."""
        with self._cond:
            return [
                e
                for e in self._ephemerals
                if (user is None or e.user == user)
                and (channel is None or e.channel == channel)
                and (thread_ts is None or e.thread_ts == thread_ts)
            ]

    def wait_for(self, predicate: Callable[[], T], timeout: float = 5.0) -> T:
        """Block until `predicate()` is truthy and return its value; TimeoutError otherwise.

        The predicate runs under the store's (re-entrant) lock, so it may call the query helpers.
        """
        with self._cond:
            result = self._cond.wait_for(predicate, timeout)
        if not result:
            raise TimeoutError(f"condition not met within {timeout}s")
        return result
