"""Slack's limits: what one message may hold, and how often each method may be called.

Real Slack enforces both, so the stand-in does too: a test fails where Slack would refuse.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

# -- what a message may hold ------------------------------------------------------------------
# The Block Kit numbers are the ones slack_sdk's own models validate (slack_sdk.models.blocks,
# 3.48): SectionBlock.text_max_length 3000 and fields_max_length 10, HeaderBlock.text_max_length
# 150, ButtonElement.text_max_length 75, value_max_length 2000 and url_max_length 3000,
# ActionsBlock.elements_max_length 25, ContextBlock.elements_max_length 10,
# Block.block_id_max_length 255, InteractiveElement.action_id_max_length 255.
# slack_sdk checks none of the rest; those are from Slack's Block Kit and chat.postMessage reference:
# 50 blocks a message, 3000 characters in any text object (so in a context element), 2000 in a
# section field, 40,000 characters of message text (`msg_too_long`), and no empty text.
MAX_TEXT = 40_000
MAX_BLOCKS = 50
HOME_BLOCKS = 100  # a home tab's view (views.publish)
SECTION_TEXT = 3000
SECTION_FIELDS = 10
FIELD_TEXT = 2000
HEADER_TEXT = 150
CONTEXT_ELEMENTS = 10
CONTEXT_TEXT = 3000
ACTIONS_ELEMENTS = 25
BUTTON_TEXT = 75
BUTTON_VALUE = 2000
BUTTON_URL = 3000
ID_LENGTH = 255  # block_id, action_id
# A modal (views.open), as slack_sdk's View model checks it (title_max_length 24, blocks_max_length
# 100, close/submit 24, private_metadata 3000, callback_id 255) and Slack's view reference says
# (external_id 255, a whole view at most 250 kB: `view_too_large`). An input block: label and hint
# 2000 (InputBlock); a plain_text_input's placeholder 150, min/max_length at most 3000.
VIEW_BLOCKS = 100
VIEW_TEXT = 24  # title, submit, close
PRIVATE_METADATA = 3000
VIEW_BYTES = 250_000
INPUT_LABEL = 2000
PLACEHOLDER = 150
INPUT_LENGTH = 3000


class _Checker:
    """Collects problems the way Slack lists them: `<what> [json-pointer:<where>]`."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def fail(self, what: str, where: str) -> None:
        self.errors.append(f"{what} [json-pointer:{where}]")

    def length(self, value: Any, where: str, most: int, least: int = 1) -> None:
        if not isinstance(value, str):
            self.fail("expected string", where)
        elif len(value) < least:
            self.fail(f"must be more than {least - 1} characters", where)
        elif len(value) > most:
            self.fail(f"must be less than {most + 1} characters", where)

    def items(self, value: Any, where: str, most: int, least: int = 1) -> list[Any]:
        if not isinstance(value, list):
            self.fail("expected array", where)
            return []
        if len(value) < least:
            self.fail(f"must provide at least {least} items", where)
        elif len(value) > most:
            self.fail(f"no more than {most} items allowed", where)
        return value

    def text(self, obj: Any, where: str, most: int) -> None:
        if not isinstance(obj, Mapping):
            self.fail("expected object", where)
        else:
            self.length(obj.get("text"), f"{where}/text", most)

    def element(self, element: Any, where: str) -> None:
        if not isinstance(element, Mapping):
            self.fail("expected object", where)
            return
        if "action_id" in element:
            self.length(element["action_id"], f"{where}/action_id", ID_LENGTH)
        if element.get("type") == "button":
            self.text(element.get("text"), f"{where}/text", BUTTON_TEXT)
            if "value" in element:
                self.length(element["value"], f"{where}/value", BUTTON_VALUE)
            if "url" in element:
                self.length(element["url"], f"{where}/url", BUTTON_URL)

    def block(self, block: Any, where: str) -> None:
        if not isinstance(block, Mapping):
            self.fail("expected object", where)
            return
        if "block_id" in block:
            self.length(block["block_id"], f"{where}/block_id", ID_LENGTH)
        kind = block.get("type")
        if kind == "section":
            if "text" not in block and "fields" not in block:
                self.fail("must provide either text or fields", where)
            if "text" in block:
                self.text(block["text"], f"{where}/text", SECTION_TEXT)
            if "fields" in block:
                for i, field in enumerate(self.items(block["fields"], f"{where}/fields", SECTION_FIELDS)):
                    self.text(field, f"{where}/fields/{i}", FIELD_TEXT)
            if "accessory" in block:
                self.element(block["accessory"], f"{where}/accessory")
        elif kind == "header":
            self.text(block.get("text"), f"{where}/text", HEADER_TEXT)
        elif kind == "context":
            for i, element in enumerate(self.items(block.get("elements"), f"{where}/elements", CONTEXT_ELEMENTS)):
                if isinstance(element, Mapping) and element.get("type") in ("mrkdwn", "plain_text"):
                    self.text(element, f"{where}/elements/{i}", CONTEXT_TEXT)
        elif kind == "actions":
            for i, element in enumerate(self.items(block.get("elements"), f"{where}/elements", ACTIONS_ELEMENTS)):
                self.element(element, f"{where}/elements/{i}")
        elif kind == "input":
            self.plain_text(block.get("label"), f"{where}/label", INPUT_LABEL)
            if "hint" in block:
                self.plain_text(block["hint"], f"{where}/hint", INPUT_LABEL)
            self.input_element(block.get("element"), f"{where}/element")

    def plain_text(self, obj: Any, where: str, most: int) -> None:
        if isinstance(obj, Mapping) and obj.get("type") != "plain_text":
            self.fail("must be plain_text", f"{where}/type")
        self.text(obj, where, most)

    def input_element(self, element: Any, where: str) -> None:
        self.element(element, where)
        if not isinstance(element, Mapping) or element.get("type") != "plain_text_input":
            return  # the one input the bot uses; others pass unchecked
        if "placeholder" in element:
            self.plain_text(element["placeholder"], f"{where}/placeholder", PLACEHOLDER)
        for name in ("min_length", "max_length"):
            value = element.get(name)
            if value is not None and (type(value) is not int or not 0 <= value <= INPUT_LENGTH):
                self.fail(f"must be an integer from 0 to {INPUT_LENGTH}", f"{where}/{name}")


def view_errors(view: Mapping[str, Any]) -> list[str]:
    """What Slack's `invalid_arguments` answer to views.open would list for a modal; [] if none."""
    checker = _Checker()
    if view.get("type") != "modal":
        checker.fail("must be modal", "/view/type")
    checker.plain_text(view.get("title"), "/view/title", VIEW_TEXT)
    for name in ("submit", "close"):
        if view.get(name) is not None:
            checker.plain_text(view[name], f"/view/{name}", VIEW_TEXT)
    for name, most in (("callback_id", ID_LENGTH), ("external_id", ID_LENGTH), ("private_metadata", PRIVATE_METADATA)):
        if view.get(name) is not None:
            checker.length(view[name], f"/view/{name}", most, least=0)
    blocks = view.get("blocks")
    checker.errors += block_errors(blocks, most=VIEW_BLOCKS, where="/view/blocks")
    for i, block in enumerate(blocks if isinstance(blocks, list) else []):
        # Slack's own words: a modal whose inputs could never be submitted is refused.
        if isinstance(block, Mapping) and block.get("type") == "input" and view.get("submit") is None:
            checker.fail("must define `submit` to use `input` block", f"/view/blocks/{i}/input")
    return checker.errors


def block_errors(blocks: Any, *, most: int = MAX_BLOCKS, where: str = "/blocks") -> list[str]:
    """What Slack's `invalid_blocks` answer would list for `blocks`; [] when Slack accepts them.
    `most` is 50 for a message, 100 for a home view (`HOME_BLOCKS`)."""
    checker = _Checker()
    for i, block in enumerate(checker.items(blocks, where, most, least=0)):
        checker.block(block, f"{where}/{i}")
    return checker.errors


# -- how often each method may be called --------------------------------------------------------


@dataclass(frozen=True)
class Limit:
    """`calls` per `per` seconds, earned back steadily; up to `burst` (default `calls`) at once."""

    calls: int
    per: float
    burst: int | None = None
    per_channel: bool = False  # counted per channel (chat.postMessage), else per method for the workspace


# Slack's tiers (docs.slack.dev/apis/web-api/rate-limits): Tier 2 20+, Tier 3 50+, Tier 4 100+ a minute.
TIER_2, TIER_3, TIER_4 = Limit(20, 60), Limit(50, 60), Limit(100, 60)
SLACK_RATE_LIMITS: Mapping[str, Limit] = {
    # "1 message per second per channel", with "generous burst behavior". Slack gives no burst
    # size: 5 lets one request's card and first replies through, not a loop posting every line.
    "chat.postMessage": Limit(1, 1.0, burst=5, per_channel=True),
    "chat.update": TIER_3,
    "chat.postEphemeral": TIER_4,
    # "Special": "hundreds of requests per minute", its reference says; held to Tier 4's 100 here.
    "chat.getPermalink": TIER_4,
    "users.info": TIER_4,
    "usergroups.users.list": TIER_2,
    # Both are Tier 4 on their reference pages (the old files.upload was Tier 2).
    "files.getUploadURLExternal": TIER_4,
    "files.completeUploadExternal": TIER_4,
    "views.publish": TIER_4,
    "views.open": TIER_4,
}


class RateLimiter:
    """A token bucket per method (per method and channel where the limit says so)."""

    def __init__(self, limits: Mapping[str, Limit], clock: Callable[[], float] = time.monotonic) -> None:
        self.limits = dict(limits)
        self._clock = clock
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}  # key -> (tokens, as of when)
        self._lock = threading.Lock()

    def retry_after(self, method: str, channel: str = "") -> int:
        """0 if the call may go ahead (it is counted), else whole seconds to wait, as Slack's Retry-After."""
        limit = self.limits.get(method)
        if limit is None:
            return 0
        key = (method, channel if limit.per_channel else "")
        capacity, rate = limit.burst or limit.calls, limit.calls / limit.per
        with self._lock:
            now = self._clock()
            tokens, then = self._buckets.get(key, (float(capacity), now))
            tokens = min(capacity, tokens + (now - then) * rate)
            if tokens >= 1:
                self._buckets[key] = (tokens - 1, now)
                return 0
            self._buckets[key] = (tokens, now)
        # slack_sdk's RateLimitErrorRetryHandler reads the header with int(): whole seconds, at least 1.
        return max(1, math.ceil((1 - tokens) / rate - 1e-9))
