"""A local stand-in for Slack: the Web API the bot calls, and the person who types and clicks.

- `SlackWebAPI` serves the Web API methods migrabot uses over real HTTP and records every call,
  with Slack's message limits, and on request its rate limits (`Limit`), channels the bot is not
  in, response URLs, outages (`Outage`) and injected errors;
- `Conversation` holds what was posted (messages, threads, files, ephemerals) and what is open in
  front of each person (modals, with the triggers that opened them), and lets callers wait;
- `SignedSender` sends signed slash commands, button clicks and modal submissions to the bot, as Slack does;
- `render_thread` shows a thread as plain text, as a person would read it on a phone.
"""

from .client import Reply, SignedSender
from .faults import Outage
from .limits import SLACK_RATE_LIMITS, Limit
from .render import render_blocks, render_message, render_modal, render_thread
from .store import Conversation, Ephemeral, File, Message, Modal
from .webapi import CLOSED, Call, SlackWebAPI

__all__ = [
    "CLOSED",
    "SLACK_RATE_LIMITS",
    "Call",
    "Conversation",
    "Ephemeral",
    "File",
    "Limit",
    "Message",
    "Modal",
    "Outage",
    "Reply",
    "SignedSender",
    "SlackWebAPI",
    "render_blocks",
    "render_message",
    "render_modal",
    "render_thread",
]
