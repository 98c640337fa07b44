"""The recorded conversation: what the bot posted, as Slack would hold it.

Records are frozen snapshots; an update replaces the record, so a reader never sees a
half-applied change. One Condition guards everything, which lets `wait_for` wake callers
the moment an asynchronous post lands instead of polling with sleeps.

Besides messages, Slack holds what a person has open in front of them: the triggers it handed out
with each command or click (a bot exchanges one, within 3 seconds, to open a modal) and the modals
open for each person, with the errors the bot last answered a submission with.
"""

from __future__ import annotations

import itertools
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
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


@dataclass(frozen=True)
class Trigger:
    """A trigger_id Slack handed out with someone's command or click."""

    id: str
    user: str
    issued: float  # time.monotonic() when it was handed out
    exchanged: bool = False  # a bot opened a view with it (a trigger opens one view)


@dataclass(frozen=True)
class Modal:
    """A modal open (or once open) in front of one person, as the bot last gave it."""

    id: str  # Slack's view id, "V…"
    user: str
    view: dict[str, Any]  # as views.open took it (or a submission's "update" replaced it)
    hash: str
    errors: Mapping[str, str] = field(default_factory=dict)  # block_id -> the bot's error, shown under it
    closed: bool = False


class Conversation:
    """Messages per channel plus ephemerals, safe to share between server and test threads."""

    def __init__(self, epoch: int | None = None) -> None:
        self.epoch = int(time.time()) if epoch is None else epoch
        self._cond = threading.Condition()  # wraps an RLock: predicates may call the queries
        self._messages: dict[tuple[str, str], Message] = {}  # insertion order == ts order
        self._ephemerals: list[Ephemeral] = []
        self._homes: dict[str, dict[str, Any]] = {}  # user id -> the home view last published for them
        self._triggers: dict[str, Trigger] = {}
        self._modals: dict[str, Modal] = {}  # view id -> modal, in the order they were opened
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

    # -- triggers and modals -------------------------------------------------------------

    def issue_trigger(self, user: str, *, age: float = 0.0) -> str:
        """A new trigger_id for something `user` just did (`age` seconds ago), in Slack's form."""
        n = next(self._seq)
        trigger = Trigger(f"{n}.{int(time.time())}.{uuid.uuid4().hex}", user, time.monotonic() - age)
        with self._cond:
            self._triggers[trigger.id] = trigger
        return trigger.id

    def trigger(self, trigger_id: str) -> Trigger | None:
        with self._cond:
            return self._triggers.get(trigger_id)

    def open_modal(self, trigger_id: str, view: Mapping[str, Any]) -> Modal | None:
        """Exchange an unused trigger for a modal in front of its person; None if it was used."""
        with self._cond:
            trigger = self._triggers.get(trigger_id)
            if trigger is None or trigger.exchanged:
                return None
            self._triggers[trigger_id] = replace(trigger, exchanged=True)
            n = next(self._seq)
            modal = Modal(f"V{n:010d}", trigger.user, dict(view), f"{self.epoch}.{n:08d}")
            self._modals[modal.id] = modal
            self._cond.notify_all()
            return modal

    def modal(self, view_id: str) -> Modal | None:
        with self._cond:
            return self._modals.get(view_id)

    def modals(self, user: str | None = None, *, open_only: bool = False) -> list[Modal]:
        """Modals opened (for `user`), oldest first; `open_only`: those still in front of them."""
        with self._cond:
            return [
                m for m in self._modals.values() if user in (None, m.user) and not (open_only and m.closed)
            ]

    def close_modal(self, view_id: str) -> Modal | None:
        """The person closed the modal (its close button, Cancel): Slack tells the bot nothing
        unless the view asked for ``notify_on_close``."""
        with self._cond:
            modal = self._modals.get(view_id)
            if modal is not None:
                modal = self._modals[view_id] = replace(modal, closed=True)
                self._cond.notify_all()
            return modal

    def answer_submission(self, view_id: str, answer: Any) -> Modal | None:
        """What Slack does with a bot's answer to a submission: an empty answer (or "clear")
        closes the modal, "errors" shows them under their blocks and keeps it open, "update"
        replaces the view. Anything else closes it too, as Slack does when it cannot read it."""
        action = answer.get("response_action") if isinstance(answer, dict) else None
        with self._cond:
            modal = self._modals.get(view_id)
            if modal is None:
                return None
            if action == "errors" and isinstance(answer.get("errors"), dict):
                modal = replace(modal, errors=dict(answer["errors"]))
            elif action == "update" and isinstance(answer.get("view"), dict):
                modal = replace(modal, view=dict(answer["view"]), errors={})
            else:
                modal = replace(modal, closed=True)
            self._modals[view_id] = modal
            self._cond.notify_all()
            return modal

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
