"""Lines of a local-mode script (``as alice: /migrate plan dev``, ``as bob: click approve``,
``as carol: deny not during the freeze``) performed and shown as a chat."""

from __future__ import annotations

import re
import textwrap

from migrabot.conversation import Chat
from slackui.text import mrkdwn_to_text

LINE = re.compile(r"^as\s+(?P<who>[A-Za-z0-9_]+)\s*:\s*(?P<said>.+)$")


def perform(chat: Chat, line: str, *, people: dict[str, str]) -> str:
    """Do what the line says and return the transcript of it, as the channel would show it."""
    match = LINE.match(line)
    if match is None:
        return f"?? expected 'as <person>: {chat.command} …', got: {line}"
    who, said = match["who"], match["said"].strip()
    user = people.get(who, who)
    if said == "open home":
        home = chat.home(user)
        return f"━━ {who}: {said}\n" + textwrap.indent(home, "   ▏ ", predicate=lambda _: True) + "\n"
    if said.startswith("click "):
        exchange = chat.click(said.removeprefix("click ").strip(), user=user)
    elif said.startswith("deny "):  # Deny, and the reason typed into its dialog
        exchange = chat.deny(user=user, reason=said.removeprefix("deny ").strip())
    elif said.startswith(chat.command):
        exchange = chat.say(said[len(chat.command) :].strip(), user=user)
    else:
        can = f"{chat.command} commands, 'click <button>', 'deny <reason>' or 'open home'"
        return f"?? {who} can type {can}, got: {said}"
    parts = [f"━━ {who}: {said}"]
    if exchange.ack:
        ack = mrkdwn_to_text(exchange.ack, chat.names)  # as Slack shows it: @names, not <@U…>
        parts.append(textwrap.indent(f"(only visible to you) {ack}", "   "))
    if exchange.thread:
        parts.append(textwrap.indent(exchange.thread, "   │ ", predicate=lambda _: True))
    return "\n".join(parts) + "\n"
