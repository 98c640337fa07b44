"""Messages and threads as plain text, the way a person reads them on a phone.

Used by local mode to show the conversation in a terminal and by tests to assert on what a
person would see rather than on JSON structure. Blocks and mrkdwn are read by ``slackui.text``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

# Re-exported: the stand-in's tests and callers read blocks and mrkdwn through this module too.
from slackui.text import Names as Names
from slackui.text import mrkdwn_to_text as mrkdwn_to_text
from slackui.text import render_blocks as render_blocks

from .store import Conversation, Ephemeral, File, Message

FILE_PREVIEW_LINES = 20
INDENT = "    "


def render_file(file: File) -> list[str]:
    lines = file.content.splitlines()
    shown = [f"📎 {file.title}"] + ["  " + line for line in lines[:FILE_PREVIEW_LINES]]
    if len(lines) > FILE_PREVIEW_LINES:
        shown.append(f"  … ({len(lines) - FILE_PREVIEW_LINES} more lines)")
    return shown


def _body(text: str, blocks: Iterable[Mapping[str, Any]], names: Names) -> list[str]:
    # With blocks present, Slack shows the blocks; `text` is only the notification fallback.
    blocks = list(blocks)
    return render_blocks(blocks, names) if blocks else mrkdwn_to_text(text, names).splitlines()


def render_message(message: Message, names: Names | None = None) -> str:
    names = names or {}
    author = names.get(message.user, message.user) if message.user else "app"
    lines = [f"{author}:"] + _body(message.text, message.blocks, names)
    lines += [line for file in message.files for line in render_file(file)]
    return "\n".join(lines)


def render_ephemeral(ephemeral: Ephemeral, names: Names | None = None) -> str:
    names = names or {}
    return "\n".join(["(only visible to you)"] + _body(ephemeral.text, ephemeral.blocks, names))


def _ts_key(ts: str) -> tuple[int, ...]:
    return tuple(int(part) for part in ts.split("."))


def render_thread(
    store: Conversation, channel: str, ts: str, names: Names | None = None, viewer: str | None = None
) -> str:
    """The parent card, then each reply indented, in order; ephemerals as `viewer` sees them.

    With no viewer every ephemeral in the thread is shown, each marked as its recipient sees it.
    """
    parent = store.parent(channel, ts)
    if parent is None:
        raise KeyError(f"no message {ts} in {channel}")
    ephemerals = [e for e in store.ephemerals(channel=channel, thread_ts=ts) if viewer in (None, e.user)]
    replies: list[tuple[str, str]] = [(m.ts, render_message(m, names)) for m in store.replies(channel, ts)]
    replies += [(e.ts, render_ephemeral(e, names)) for e in ephemerals]
    replies.sort(key=lambda item: _ts_key(item[0]))
    indented = ["\n".join(INDENT + line if line else line for line in text.splitlines()) for _, text in replies]
    return "\n\n".join([render_message(parent, names), *indented])
