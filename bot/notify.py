"""Posting to Slack for a request: its card, replies in its thread, files. Used by bot and workers.

Everything goes through the bot token (``chat.postMessage`` / ``chat.update``), never the slash
command's ``response_url``, which Slack limits to five uses in thirty minutes.
"""

from __future__ import annotations

from slack_sdk import WebClient

from bot import cards
from controlplane.models import Request


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
        text, blocks = cards.request_card(request, self.command)
        self.client.chat_update(channel=request.channel, ts=request.thread_ts, text=text, blocks=blocks)

    def reply(self, request: Request, message: cards.Message) -> None:
        text, blocks = message
        self.client.chat_postMessage(
            channel=request.channel, thread_ts=request.thread_ts, text=text, blocks=blocks
        )

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

    def ephemeral(self, *, channel: str, user: str, text: str) -> None:
        self.client.chat_postEphemeral(channel=channel, user=user, text=text)
