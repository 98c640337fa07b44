"""Posting to Slack for a request: its card, replies in its thread, files. Used by bot and workers.

Everything goes through the bot token (``chat.postMessage`` / ``chat.update``), never the slash
command's ``response_url``, which Slack limits to five uses in thirty minutes.
"""

from __future__ import annotations

from typing import Any

from slack_sdk import WebClient

from bot import cards
from controlplane.models import Request
from migrabot import messages

INLINE_LIMIT = 2500
INLINE_LINES = 25


class Notifier:
    def __init__(self, client: WebClient, command: str) -> None:
        self.client = client
        self.command = command

    def post_card(self, request: Request) -> str:
        text, blocks = cards.request_card(request, self.command)
        response = self.client.chat_postMessage(channel=request.channel, text=text, blocks=blocks)
        return str(response["ts"])

    def update_card(self, request: Request) -> None:
        if request.thread_ts:
            self.update(request, request.thread_ts, cards.request_card(request, self.command))

    def post(self, request: Request, message: cards.Message) -> str:
        """A reply in the request's thread; returns its ts so it can be updated later."""
        text, blocks = message
        response = self.client.chat_postMessage(
            channel=request.channel, thread_ts=request.thread_ts, text=text, blocks=blocks
        )
        return str(response["ts"])

    def reply(self, request: Request, message: cards.Message) -> None:
        self.post(request, message)

    def update(self, request: Request, ts: str, message: cards.Message) -> None:
        text, blocks = message
        self.client.chat_update(channel=request.channel, ts=ts, text=text, blocks=blocks)

    def attach(self, request: Request, *, filename: str, title: str, content: str) -> None:
        self.client.files_upload_v2(
            channel=request.channel,
            thread_ts=request.thread_ts,
            filename=filename,
            title=title,
            content=content,
        )

    def listing(self, request: Request, *, filename: str, text: str) -> None:
        """Short listings go inline; long ones as a file, so the thread stays readable."""
        if len(text) <= INLINE_LIMIT and text.count("\n") < INLINE_LINES:
            self.reply(request, cards.code(text))
        else:
            self.attach(request, filename=filename, title=filename, content=text)

    def ephemeral(self, *, channel: str, user: str, text: str, thread_ts: str | None = None) -> None:
        self.client.chat_postEphemeral(channel=channel, user=user, text=text, thread_ts=thread_ts)

    def progress(self, request: Request) -> Progress:
        return Progress(self, request)


class Progress:
    """One message in the thread, updated in place as each migration starts and finishes."""

    def __init__(self, notifier: Notifier, request: Request) -> None:
        self._notifier = notifier
        self._request = request
        self._lines: list[str] = []
        self._ts = notifier.post(request, cards.note("⏳ Starting…"))

    def add(self, event: dict[str, Any]) -> None:
        line = messages.progress_line(event)
        if event["event"].endswith("_success") and self._lines:
            self._lines[-1] = line  # the finished step replaces its "started" line
        else:
            self._lines.append(line)
        self._show()

    def fail(self, app: str, name: str) -> None:
        self._lines.append(f"❌ `{app}.{name}` failed")
        self._show()

    def _show(self) -> None:
        self._notifier.update(self._request, self._ts, cards.note("\n".join(self._lines)[-2900:]))
