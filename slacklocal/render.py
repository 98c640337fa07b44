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
from slackui.text import render_block
from slackui.text import render_blocks as render_blocks

from .store import Conversation, Ephemeral, File, Message, Modal

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


def render_modal(modal: Modal, names: Names | None = None) -> str:
    """A modal as its person sees it: the title, the blocks, under a block the error the bot
    answered for it, then the buttons (Slack labels the close button "Cancel" unless told)."""
    names = names or {}
    view = modal.view

    def label(name: str, default: str = "") -> str:
        text = view.get(name)
        return str(text.get("text", "")) if isinstance(text, Mapping) else default

    lines = [f"[{label('title')}]" + (" (closed)" if modal.closed else "")]
    for block in view.get("blocks", []):
        lines += render_block(block, names)
        if block.get("block_id") in modal.errors:
            lines.append(f"⚠️ {modal.errors[block['block_id']]}")
    buttons = [f"[{label('close', 'Cancel')}]"] + ([f"[{label('submit')}]"] if view.get("submit") else [])
    lines.append(" ".join(buttons))
    return "\n".join([lines[0], *(f"│ {line}" for line in lines[1:])])


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
