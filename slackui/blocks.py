"""Slack's limits on a message, held in one place so that no card can break them, whatever its input.

Real Slack answers ``invalid_blocks`` past 3,000 characters in a text object (a section's text, a
context's element) or past 50 blocks, and ``msg_too_long`` past a message text of 40,000 (DESIGN.md,
"Facts that bite"). Blocks are built with slack_sdk's models, whose ``to_dict`` checks what they know
— a section's text length, ten context elements, 25 actions, a button's text and value, a block id.
They do not check a context element's text, the block count or the message text: those are capped
here. Lengths are counted in UTF-16 code units, never fewer than Python's characters, so an emoji
counted as two by Slack cannot tip a full section over.

Nothing is cut silently: text that has to be shortened says how long it was, and listings are folded
(``fold``) by the cards, which say how many lines are left out and where they are.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    MarkdownTextObject,
    SectionBlock,
)

from migrabot import messages

Block = dict[str, Any]
Blocks = list[Block]
Message = tuple[str, Blocks]

TEXT = 3000  # one text object: a section's text, a context element
BLOCKS = 50
MESSAGE_TEXT = 40_000

# How much of a long listing a message shows before folding: readable on a phone, and far inside
# Slack's limits (6,000 characters pack into at most five sections).
LINES = 40
CHARS = 6000

FOLDED = "folded"  # block id of the line saying a listing was folded: its caller attaches the full text


def size(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def cut(text: str, limit: int) -> str:
    """``text`` within ``limit``; when it is longer it ends saying so, never a silent cut."""
    if size(text) <= limit:
        return text
    note = messages.cut_short(len(text))
    head = text.encode("utf-16-le")[: 2 * (limit - size(note))].decode("utf-16-le", errors="ignore")
    return head + note


def _mrkdwn(text: str) -> MarkdownTextObject:
    # Slack refuses an empty text object; an empty one here is a card's bug, shown rather than refused.
    return MarkdownTextObject(text=cut(text, TEXT) if text.strip() else "…")


def section(text: str) -> Block:
    return SectionBlock(text=_mrkdwn(text)).to_dict()


def context(text: str, *, block_id: str | None = None) -> Block:
    return ContextBlock(elements=[_mrkdwn(text)], block_id=block_id).to_dict()


def sections(lines: Iterable[str], *, fence: str = "") -> Blocks:
    """Lines packed into as few sections as hold them, split only between lines (each section
    wrapped in ``fence``, e.g. a code block's backticks); only a single line longer than a whole
    section is cut, and says so."""
    budget = TEXT - 2 * size(fence)
    chunks: list[list[str]] = []
    used = 0
    for line in lines:
        line = cut(line, budget)
        if chunks and used + 1 + size(line) <= budget:
            chunks[-1].append(line)
            used += 1 + size(line)
        else:
            chunks.append([line])
            used = size(line)
    texts = ("\n".join(chunk) for chunk in chunks)
    return [section(f"{fence}{text}{fence}") for text in texts if text.strip()]


def actions(
    block_id: str, buttons: Sequence[tuple[str, str, str, str]], confirm: Mapping[str, ConfirmObject] | None = None
) -> Block:
    """Buttons as (action id, label, style, value); ``confirm`` maps an action id to the dialog
    Slack shows before that button's click is sent."""
    elements = [
        ButtonElement(action_id=a, text=label, style=style, value=value, confirm=(confirm or {}).get(a))
        for a, label, style, value in buttons
    ]
    return ActionsBlock(block_id=block_id, elements=elements).to_dict()


CONFIRM_TEXT = 300  # Slack's limit for a confirmation dialog's text


def confirmation(title: str, text: str, yes: str) -> ConfirmObject:
    return ConfirmObject(title=title, text=cut(text, CONFIRM_TEXT), confirm=yes, deny="Cancel", style="danger")


@dataclass(frozen=True)
class Fold:
    shown: list[int]  # indexes of the lines shown: the must-show lines first, each group in order
    hidden: int
    hidden_must: int  # how many of the hidden lines were must-show lines

    @property
    def folded(self) -> bool:
        return self.hidden > 0


def fold(lines: Sequence[str], must: Collection[int] = (), *, max_lines: int = LINES, max_chars: int = CHARS) -> Fold:
    """Which lines of a listing a message shows: all when they fit in ``max_lines`` and
    ``max_chars``; otherwise every ``must`` line that fits (in order), then the first other lines
    that fit. Once the must-show lines overflow, no other line takes their room."""
    costs = [min(size(line), TEXT) + 1 for line in lines]
    if len(lines) <= max_lines and sum(costs) <= max_chars:
        return Fold(list(range(len(lines))), 0, 0)
    first = sorted(set(must))
    firsts = set(first)
    shown: list[int] = []
    budget = max_chars
    for group in (first, [i for i in range(len(lines)) if i not in firsts]):
        for i in group:
            if len(shown) == max_lines or costs[i] > budget:
                break
            shown.append(i)
            budget -= costs[i]
        if len(shown) < len(first):
            break
    hidden_must = len(first) - sum(1 for i in shown if i in firsts)
    return Fold(shown, len(lines) - len(shown), hidden_must)


def in_order(lines: Sequence[str], shown: Iterable[int]) -> list[str]:
    """The shown lines in their own order, with a ``⋮`` wherever lines were left out between them."""
    out: list[str] = []
    last = -1
    for i in sorted(shown):
        if i != last + 1:
            out.append("⋮")
        out.append(lines[i])
        last = i
    return out


def message(text: str, blocks: Blocks, *, keep_last: int = 0) -> Message:
    """The one way out of the cards: the message text and the block count within Slack's limits.

    Cards budget their blocks so this drops none; if one ever did, a line says so (marked folded,
    so the caller attaches the full text) and the last ``keep_last`` blocks — the buttons — stay last.
    """
    if len(blocks) > BLOCKS:
        tail = blocks[len(blocks) - keep_last :] if keep_last else []
        head = blocks[: BLOCKS - 1 - len(tail)]
        marked = any(block.get("block_id") == FOLDED for block in [*head, *tail])
        left_out = len(blocks) - len(head) - len(tail)
        note = context(messages.blocks_left_out(left_out), block_id=None if marked else FOLDED)
        blocks = [*head, note, *tail]
    return cut(text if text.strip() else "…", MESSAGE_TEXT), blocks or [section(text)]


def folded(message: Message) -> bool:
    """Whether a message shows only part of its listing: then its caller attaches the whole."""
    return any(block.get("block_id") == FOLDED for block in message[1])
