"""Block Kit and Slack mrkdwn as plain text, the way a person reads them on a phone.

The local stand-in shows threads with it (``slacklocal.render``), local mode shows acks with it,
the audit site shows a plan as the approver saw it, and tests assert on what a person would see
rather than on JSON structure.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

DIVIDER = "─" * 24

Names = Mapping[str, str]  # user id -> display name
_SPECIAL = re.compile(r"<([^<>]+)>")  # Slack's <@U1>, <#C1|name>, <!here>, <url|label>


def mrkdwn_to_text(text: str, names: Names | None = None) -> str:
    """Resolve mentions and links, then undo Slack's three escapes (&lt; &gt; &amp;)."""
    names = names or {}

    def special(match: re.Match[str]) -> str:
        target, _, label = match.group(1).partition("|")
        if target.startswith("@"):
            return "@" + (label or names.get(target[1:], target[1:]))
        if target.startswith("#"):
            return "#" + (label or target[1:])
        if target.startswith("!"):  # <!here>, <!subteam^S1|@dbas>, <!date^…|fallback>
            return label or "@" + target[1:].split("^")[-1]
        return label or target

    text = _SPECIAL.sub(special, text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _text(obj: Mapping[str, Any] | None, names: Names) -> str:
    if not obj:
        return ""
    text = obj.get("text", "")
    return mrkdwn_to_text(text, names) if obj.get("type") == "mrkdwn" else text


def _element(element: Mapping[str, Any], names: Names) -> str:
    """One inline element: a button, an image, a text object, or another input."""
    kind = element.get("type")
    if kind == "button":
        return f"[{_text(element.get('text'), names)}]"
    if kind == "image":
        return f"[image: {element.get('alt_text', '')}]"
    if kind in ("mrkdwn", "plain_text"):
        return _text(element, names)
    if kind == "plain_text_input":  # a field to type in
        return f"[✎ {_text(element.get('placeholder'), names)}]" if element.get("placeholder") else "[✎]"
    if "placeholder" in element:  # selects, pickers
        return f"[{_text(element['placeholder'], names)} ▾]"
    return f"[{kind}]"


def _rich_inline(elements: Iterable[Mapping[str, Any]], names: Names) -> str:
    parts = []
    for el in elements:
        kind = el.get("type")
        if kind == "user":
            parts.append("@" + names.get(el.get("user_id", ""), el.get("user_id", "")))
        elif kind == "emoji":
            parts.append(f":{el.get('name', '')}:")
        else:  # text, link, channel, usergroup
            parts.append(el.get("text") or el.get("url") or el.get("channel_id") or "")
    return "".join(parts)


def _rich_text(block: Mapping[str, Any], names: Names) -> list[str]:
    """A paragraph per section, quote or preformatted part; a bullet per list item."""
    lines = []
    for part in block.get("elements", []):
        if part.get("type") == "rich_text_list":
            lines += ["• " + _rich_inline(item.get("elements", []), names) for item in part.get("elements", [])]
        else:
            lines.append(_rich_inline(part.get("elements", []), names))
    return lines


def render_block(block: Mapping[str, Any], names: Names | None = None) -> list[str]:
    names = names or {}
    kind = block.get("type")
    if kind == "header":
        lines = [_text(block.get("text"), names)]
    elif kind == "section":
        lines = [_text(block.get("text"), names)] if block.get("text") else []
        lines += [_text(field, names) for field in block.get("fields", [])]
        if "accessory" in block:
            lines.append(_element(block["accessory"], names))
    elif kind == "context":
        lines = ["  ".join(_element(el, names) for el in block.get("elements", []))]
    elif kind == "actions":
        lines = [" ".join(_element(el, names) for el in block.get("elements", []))]
    elif kind == "divider":
        lines = [DIVIDER]
    elif kind == "image":
        lines = [f"[image: {block.get('alt_text', '')}]"]
    elif kind == "rich_text":
        lines = _rich_text(block, names)
    elif kind == "input":
        lines = [_text(block.get("label"), names) + ": " + _element(block.get("element", {}), names)]
    else:
        lines = [f"[{kind}]"]
    return [line for text in lines for line in text.splitlines()]


def render_blocks(blocks: Iterable[Mapping[str, Any]], names: Names | None = None) -> list[str]:
    return [line for block in blocks for line in render_block(block, names)]
