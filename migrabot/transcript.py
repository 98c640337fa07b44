"""Lines of a local-mode script (``as alice: /migrate plan dev``) performed and shown as a chat."""

from __future__ import annotations

import re
import textwrap

from migrabot.conversation import Chat

LINE = re.compile(r"^as\s+(?P<who>[A-Za-z0-9_]+)\s*:\s*(?P<said>.+)$")


def perform(chat: Chat, line: str, *, people: dict[str, str]) -> str:
    """Do what the line says and return the transcript of it, as the channel would show it."""
    match = LINE.match(line)
    if match is None:
        return f"?? expected 'as <person>: {chat.command} …', got: {line}"
    who, said = match["who"], match["said"].strip()
    user = people.get(who, who)
    if not said.startswith(chat.command):
        return f"?? {who} can only type {chat.command} commands here, got: {said}"
    exchange = chat.say(said[len(chat.command) :].strip(), user=user)
    parts = [f"━━ {who}: {said}", textwrap.indent(f"(only visible to you) {exchange.ack}", "   ")]
    if exchange.thread:
        parts.append(textwrap.indent(exchange.thread, "   │ ", predicate=lambda _: True))
    return "\n".join(parts) + "\n"
