"""The cards' permalinks, asked of Slack in the background and stored on their requests.

Once a request has settled (ended, or awaiting approval) and its thread shows all of it, a thread
of the bot's process asks ``chat.getPermalink`` for its card and stores the answer on the request
(``services.request_set_permalink``), for the audit site and the Home tab. It runs apart from the
notifier, whose passes it would otherwise slow, and asks without slack_sdk's retry handlers (which
sleep out a ``Retry-After``): a failure is tried again with backoff, counted in
``migrabot_slack_retries_total``, for as long as the card is recent (``WINDOW``); where Slack says
the message or channel is gone, or the window has passed, the link stays the redirect that
``slackui.links`` makes from the channel and ts. It never touches a request's progress. What it
remembers of failures lives in this process: a bot restarted meanwhile simply asks again.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from datetime import timedelta

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.chores import PokedChore
from controlplane import services
from controlplane.selectors import permalinks_wanted
from migrabot import metrics
from migrabot.config import Config

log = logging.getLogger(__name__)
WINDOW = timedelta(hours=1)  # a card's permalink is asked for while the card is this recent
GONE = ("channel_not_found", "message_not_found")  # asking again would get the same answer
BACKOFF_SECONDS = (1, 2, 5, 10, 20, 30)
POLL_SECONDS = 5.0  # a look even without a poke
MIN_SECONDS = 0.5  # between looks, however often it is poked
BATCH = 50  # asks a look: within chat.getPermalink's limit


class Permalinks(PokedChore):
    name = "permalinks"
    min_gap = MIN_SECONDS

    def __init__(self, client: WebClient, config: Config) -> None:
        super().__init__()
        self._client = copy.copy(client)
        self._client.retry_handlers = []  # our own backoff: a Retry-After would hold this thread
        self._config = config
        self._tries: dict[int, tuple[int, float]] = {}  # request -> (failed asks, next ask; inf: given up)

    def refresh(self) -> int:
        """Ask for the permalinks due; how many were stored."""
        wanted = permalinks_wanted(environments=list(self._config.environments), since=WINDOW)
        now = time.monotonic()
        self._tries = {pk: tries for pk, tries in self._tries.items() if pk in wanted}
        due = [pk for pk in sorted(wanted) if self._tries.get(pk, (0, now))[1] <= now][:BATCH]
        return sum(self._ask(pk, *wanted[pk]) for pk in due)

    def pause(self) -> float:
        soonest = min((retry for _, retry in self._tries.values()), default=math.inf)
        return max(0.05, min(POLL_SECONDS, soonest - time.monotonic()))

    def _ask(self, request_id: int, channel: str, ts: str) -> bool:
        try:
            response = self._client.chat_getPermalink(channel=channel, message_ts=ts)
        except SlackApiError as error:
            code = str(error.response.get("error", ""))
            self._failed(request_id, code, cause="rate_limited" if code == "ratelimited" else "slack_error")
            return False
        except Exception as error:  # the network: asked again later, like any post
            self._failed(request_id, repr(error)[:200], cause="no_answer")
            return False
        services.request_set_permalink(request_id=request_id, permalink=str(response["permalink"]))
        self._tries.pop(request_id, None)
        return True

    def _failed(self, request_id: int, error: str, *, cause: str) -> None:
        failures = self._tries.get(request_id, (0, 0.0))[0] + 1
        if error in GONE:
            self._tries[request_id] = (failures, math.inf)
            log.warning("permalinks.unavailable request=%s error=%s: the link redirects", request_id, error)
            return
        backoff = BACKOFF_SECONDS[min(failures, len(BACKOFF_SECONDS)) - 1]
        self._tries[request_id] = (failures, time.monotonic() + backoff)
        metrics.slack_retries.labels(cause=cause).inc()
        log.warning("permalinks.ask_failed request=%s error=%s attempt=%s", request_id, error, failures)
