"""The notifier: makes Slack show what the control plane recorded, whatever Slack does meanwhile.

Each request's posts (``controlplane.models.Post``) are reconciled in reading order: the card
first (it makes the thread), then the thread's messages in the order they were recorded. A post
with no ``ts`` is posted; one whose ``version`` moved past ``shown_version`` is updated, at most
once every ``MIN_UPDATE_SECONDS`` (so a run's progress costs Slack calls by its duration, not by
its number of migrations). It is idempotent and resumable: whatever crashed, the rows say what is
left to do. Several bots may run it against one control plane: a post is claimed with a
conditional update before its Slack call, so only one of them makes it.

Requests are reconciled side by side (``MIGRABOT_NOTIFIER_THREADS``, default 4): each request's
posts by one thread at a time, in order, so one slow thread holds up only its own request (and,
for ``TURN_SECONDS`` at most, the posts that count against the same Slack limit: one call at a
time against a limit, and a post whose turn does not come by then is left to a later pass).
Slack failures are logged and retried with backoff (slack_sdk's retry handlers for server and
connection errors first; then per post, honouring ``Retry-After``; each one counted in
``migrabot_slack_retries_total``). A rate limit is Slack's for a method (in a channel, for new
messages): once one post meets it, every pending post it covers waits out the same
``Retry-After`` (one update), and no pool thread sleeps it out to call again — a burst of
commands in one channel cost two refused calls a card a pass before. Slack failures never touch a
request: workers record and go on, and the thread catches up when Slack answers again. The one
exception is a channel the bot cannot post in (``not_in_channel``, ``channel_not_found``): the
request is ended there, and the requester told privately through the command's ``response_url``.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import DatabaseError, close_old_connections, transaction
from django.db.models import Case, F, Q, QuerySet, When
from django.utils import timezone
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler, ServerErrorRetryHandler
from slack_sdk.webhook import WebhookClient

from controlplane import services, wake
from controlplane.models import TERMINAL_STATES, Post, Request, State
from migrabot import messages, metrics
from migrabot.config import Config
from migrabot.logs import log_bind, log_context
from slackui import thread

log = logging.getLogger(__name__)
MIN_UPDATE_SECONDS = 2.0  # per message; MIGRABOT_MIN_UPDATE_SECONDS changes it (tests)
# A claim outlives any one Slack call; a bot killed mid-call leaves its claim to lapse.
CLAIM = timedelta(seconds=float(os.environ.get("MIGRABOT_POST_CLAIM_SECONDS") or 60))
BACKOFF_SECONDS = (1, 2, 5, 10, 20, 30)  # a thread catches up within 30 s of Slack coming back
UNREACHABLE_CHANNEL = ("not_in_channel", "channel_not_found", "is_archived")
BATCH = 200
THREADS = int(os.environ.get("MIGRABOT_NOTIFIER_THREADS") or 4)
RECORD_TRIES = 10
FILES = "files.upload"  # uploads: a limit of their own, which holds no message
TURN_SECONDS = 0.5  # the longest a post waits for another's call against the same limit
FILE_KINDS = ("file", "plan_listing")  # posts that go to Slack as files (a listing only when long)


def with_retries(client: WebClient) -> WebClient:
    """The client with slack_sdk's handlers for rate limits (Retry-After) and server errors."""
    client.retry_handlers.extend(
        [RateLimitErrorRetryHandler(max_retry_count=1), ServerErrorRetryHandler(max_retry_count=2)]
    )
    return client


class Notifier:
    def __init__(
        self, client: WebClient, config: Config, *, after_pass: Iterable[Callable[[], None]] = ()
    ) -> None:
        self.client = client  # the bot's own words to one person or a channel (``tell``, ``announce``)
        self._posting = _scheduled_on_rate_limits(client)  # the threads' posts
        self.config = config
        self._after_pass = list(after_pass)  # told after each pass (``bot.homes``, ``bot.permalinks``: look again)
        self.min_update = timedelta(seconds=float(os.environ.get("MIGRABOT_MIN_UPDATE_SECONDS") or MIN_UPDATE_SECONDS))
        self._stopped = threading.Event()
        self._threads: list[threading.Thread] = []
        self._pool = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="notifier-request")
        self._holds: dict[tuple[str, str], datetime] = {}  # a rate limit met (``_limit_of``): until when
        self._turns: dict[tuple[str, str], threading.Lock] = {}  # one call at a time against a limit
        self._holds_lock = threading.Lock()

    # --- the loop -----------------------------------------------------------------------------

    def start(self) -> None:
        if self._threads:
            return
        for target, name in ((self._loop, "notifier"), (self._listen, "notifier-wake")):
            worker = threading.Thread(target=target, name=name, daemon=True)
            worker.start()
            self._threads.append(worker)

    def stop(self) -> None:
        self._stopped.set()
        for worker in self._threads:
            worker.join(5)
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _listen(self) -> None:
        try:
            wake.listen(self._stopped)
        finally:
            close_old_connections()

    def _loop(self) -> None:
        while not self._stopped.is_set():
            try:
                self.reconcile()
            except Exception:
                log.exception("notifier.failed")
            finally:
                close_old_connections()
            for told in self._after_pass:
                told()
            wake.wait(self._next_pause())

    def _next_pause(self) -> float:
        soonest = (
            Post.objects.filter(pending=True, request__environment__in=list(self.config.environments))
            .exclude(retry_at__isnull=True)
            .order_by("retry_at")
            .values_list("retry_at", flat=True)
            .first()
        )
        if soonest is None:
            return wake.POLL_SECONDS
        return max(0.05, min(wake.POLL_SECONDS, (soonest - timezone.now()).total_seconds()))

    # --- one pass -----------------------------------------------------------------------------

    def reconcile(self) -> int:
        """One pass over every pending post of this bot's environments; the number shown."""
        now = timezone.now()
        due = Q(retry_at__isnull=True) | Q(retry_at__lte=now)
        pending = Post.objects.filter(due, pending=True, request__environment__in=list(self.config.environments))
        pending = self._not_held(pending, now)
        requests: dict[int, _Due] = {}
        posts = pending.order_by("request_id").values_list("request_id", "request__channel", "ts")
        for request_id, channel, ts in posts[: BATCH * 10]:  # a request has a few posts pending at most
            if request_id not in requests and len(requests) == BATCH:
                break
            known = requests.setdefault(request_id, _Due(request_id, channel))
            known.updates = known.updates or bool(ts)
        return sum(self._pool.map(self._reconcile_one, requests.values()))

    def _held(self, limit: tuple[str, str], now: datetime) -> datetime | None:
        """Until when a rate limit met holds the posts it covers; None if it holds none now."""
        with self._holds_lock:
            until = self._holds.get(limit)
        return until if until is not None and until > now else None

    def _not_held(self, posts: QuerySet[Post], now: datetime) -> QuerySet[Post]:
        """Without the posts a rate limit met holds: those recorded since it was met have no
        ``retry_at`` yet, and a burst of commands in a held channel would cost each card its reads
        every pass."""
        with self._holds_lock:
            held = [limit for limit, until in self._holds.items() if until > now]
        channels = [channel for method, channel in held if method == "chat.postMessage"]
        if channels:
            posts = posts.exclude(Q(ts="", request__channel__in=channels) & ~Q(kind__in=FILE_KINDS))
        if ("chat.update", "") in held:
            posts = posts.filter(ts="")
        return posts

    def _reconcile_one(self, due: _Due) -> int:
        """One request's pass, on a pool thread: its failure is logged and holds up no other.
        Nothing is read for a request with only new messages due in a channel a rate limit holds
        since the pass began (a burst's cards, once a hold ends: one of them is posted, and the
        next meets the limit again)."""
        request_id = due.request_id
        if not due.updates and self._held(("chat.postMessage", due.channel), timezone.now()):
            return 0
        try:
            with log_context(request_id=request_id):
                return self._reconcile_request(request_id)
        except Exception:
            log.exception("notifier.request_failed", extra={"request": request_id})
            return 0
        finally:
            close_old_connections()

    def _reconcile_request(self, request_id: int) -> int:
        request = Request.objects.get(pk=request_id)
        log_bind(environment=request.environment, verb=request.verb)
        shown = 0
        posts = sorted(Post.objects.filter(request_id=request_id), key=lambda post: (post.key != "card", post.id))
        for post in posts:
            if not post.pending:
                continue
            if post.key != "card" and not request.thread_ts:
                break  # the card makes the thread: nothing goes in it before
            if not post.ts and self._earlier_unposted(posts, post):
                break  # reading order: a message is posted only after those recorded before it
            if post.ts and post.shown_at and timezone.now() - post.shown_at < self.min_update:
                # Throttled: updated again once the interval is over, with whatever it says then.
                Post.objects.filter(pk=post.pk).update(retry_at=post.shown_at + self.min_update)
                continue
            if self._show(request, post):
                shown += 1
                request.refresh_from_db()
            elif not post.ts:
                break
        return shown

    @staticmethod
    def _earlier_unposted(posts: Iterable[Post], post: Post) -> bool:
        return any(other.id < post.id and other.key != "card" and not other.ts for other in posts)

    def _show(self, request: Request, post: Post) -> bool:
        """Claim the post, make one Slack call, record what Slack now shows; False if not shown.
        One call at a time against each of Slack's limits (``_limit_of``): when it is met, one call
        finds out and the posts waiting behind it are held with it (``_hold_alike``)."""
        limit = _limit_of(request, post)
        if limit is None:
            return self._show_in_turn(request, post, limit)
        with self._holds_lock:
            turn = self._turns.setdefault(limit, threading.Lock())
        if not turn.acquire(timeout=TURN_SECONDS):
            return False  # another post's call against this limit is slow: this one goes in a later pass
        try:
            return self._show_in_turn(request, post, limit)
        finally:
            turn.release()

    def _show_in_turn(self, request: Request, post: Post, limit: tuple[str, str] | None) -> bool:
        now = timezone.now()
        held_until = self._held(limit, now) if limit is not None else None
        if held_until is not None:  # met since this pass began
            Post.objects.filter(pk=post.pk).update(retry_at=held_until)
            return False
        unclaimed = Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
        claimed = Post.objects.filter(unclaimed, pk=post.pk, pending=True).update(claimed_until=now + CLAIM)
        if not claimed:
            return False
        post.refresh_from_db()
        seen = post.version
        # Read after the version: a state change bumps the version in the transaction that makes
        # it, so this request is at least as new as version ``seen`` (never render a stale card).
        request.refresh_from_db()
        try:
            ts = self._call(request, post)
        except SlackApiError as error:
            code, retry_after = str(error.response.get("error", "")), error.response.headers.get("Retry-After")
            cause = "rate_limited" if retry_after else "slack_error"
            retry_at = self._failed(request, post, code, retry_after, cause=cause)
            if retry_after and retry_at is not None and limit is not None:
                self._hold_alike(request, post, limit, retry_at)
            return False
        except Exception as error:  # the network, or a broken render: retried, never fatal
            self._failed(request, post, repr(error)[:200], None, cause="no_answer")
            return False
        self._record_shown(request, post, ts, seen)
        post.ts = ts or post.ts  # what later posts of this pass check their reading order against
        return True

    def _record_shown(self, request: Request, post: Post, ts: str, seen: int) -> None:
        """What Slack shows now. Tried again on a database error: Slack already has the message,
        and a post whose ts is lost would be posted a second time once its claim lapses."""
        for attempt in range(RECORD_TRIES):
            try:
                # The request row before the post row, as every service locks them: no deadlock.
                with transaction.atomic():
                    if post.key == "card" and ts:
                        services.request_attach_card(request_id=request.pk, thread_ts=ts)
                    if post.key == "plan" and ts:
                        services.request_set_plan_message(request_id=request.pk, ts=ts)
                    Post.objects.filter(pk=post.pk).update(
                        ts=ts or post.ts,
                        shown_version=seen,
                        pending=Case(When(version__gt=seen, then=True), default=False),
                        shown_at=timezone.now(),
                        claimed_until=None,
                        retry_at=None,
                        attempts=0,
                        last_error="",
                    )
                return
            except DatabaseError:
                if attempt == RECORD_TRIES - 1:
                    raise
                log.warning("notifier.record_retry request=%s post=%s attempt=%s", request.pk, post.key, attempt + 1)
                close_old_connections()
                time.sleep(0.2 * (attempt + 1))

    def _call(self, request: Request, post: Post) -> str:
        upload = thread.as_file(post, request)
        if upload is not None:
            if post.ts or upload == thread.SKIP:
                return post.ts or "skipped"  # a file is never changed once shared
            filename, title, content = upload
            response = self._posting.files_upload_v2(
                channel=request.channel, thread_ts=request.thread_ts, filename=filename, title=title, content=content
            )
            shared: dict[str, Any] = response.get("file", {})
            return str(shared.get("id", "file"))
        text, blocks = thread.render(post, request, self.config)
        if post.ts:
            self._posting.chat_update(channel=request.channel, ts=post.ts, text=text, blocks=blocks)
            return post.ts
        thread_ts = None if post.key == "card" else request.thread_ts
        response = self._posting.chat_postMessage(
            channel=request.channel, thread_ts=thread_ts, text=text, blocks=blocks
        )
        return str(response["ts"])

    def _failed(
        self, request: Request, post: Post, error: str, retry_after: str | None, *, cause: str
    ) -> datetime | None:
        """Put the post back on the schedule; when it is tried again (None: the request was ended)."""
        log.warning("notifier.slack_failed request=%s post=%s error=%s", request.pk, post.key, error)
        if post.key == "card" and not post.ts and error in UNREACHABLE_CHANNEL:
            self._unreachable_channel(request, error)
            return None
        metrics.slack_retries.labels(cause=cause).inc()
        backoff = BACKOFF_SECONDS[min(post.attempts, len(BACKOFF_SECONDS) - 1)]
        delay = float(retry_after) if retry_after and retry_after.isdigit() else backoff
        retry_at = timezone.now() + timedelta(seconds=delay)
        Post.objects.filter(pk=post.pk).update(
            claimed_until=None, retry_at=retry_at, attempts=F("attempts") + 1, last_error=error[:255]
        )
        return retry_at

    def _hold_alike(self, request: Request, post: Post, limit: tuple[str, str], retry_at: datetime) -> None:
        """Every other pending post that the limit the post met covers waits as long as it does:
        new messages in the same channel (chat.postMessage is limited per channel), or every update
        (chat.update, per workspace); in one update, and here for the posts this pass still holds."""
        with self._holds_lock:
            self._holds[limit] = retry_at
        if limit[0] == FILES:
            return
        alike = Post.objects.filter(pending=True, request__environment__in=list(self.config.environments))
        if limit[0] == "chat.update":
            alike = alike.exclude(ts="")
        else:
            alike = alike.filter(ts="", request__channel=request.channel).exclude(kind__in=FILE_KINDS)
        waiting_less = Q(retry_at__isnull=True) | Q(retry_at__lt=retry_at)
        alike.filter(waiting_less).exclude(pk=post.pk).update(retry_at=retry_at)

    def _unreachable_channel(self, request: Request, error: str) -> None:
        """The bot cannot post where the command was typed: end the request, tell the requester."""
        text = messages.not_in_channel(request.pk, self.config.slash_command)
        with transaction.atomic():
            open_states = [state for state in State if state not in TERMINAL_STATES]
            services.request_transition(
                request_id=request.pk, from_states=open_states, to=State.REFUSED, actor="system",
                action="request.refused", error=f"the bot cannot post in {request.channel} ({error})",
            )
            Post.objects.filter(request=request).update(pending=False, claimed_until=None, last_error=error)
        if request.response_url:
            try:
                WebhookClient(request.response_url).send(text=text, response_type="ephemeral")
            except Exception as failure:
                log.warning("notifier.response_url_failed request=%s error=%r", request.pk, failure)

    # --- the bot's own words to one person (after an ack, never on a request's path) ----------

    def tell(self, *, channel: str, user: str, text: str, thread_ts: str | None = None) -> None:
        self.client.chat_postEphemeral(channel=channel, user=user, text=text, thread_ts=thread_ts)

    def announce(self, *, channel: str, text: str) -> None:
        self.client.chat_postMessage(channel=channel, text=text)


@dataclass
class _Due:
    """A request with posts due, as a pass found it: its channel, and whether an update is among them."""

    request_id: int
    channel: str
    updates: bool = False


def _limit_of(request: Request, post: Post) -> tuple[str, str] | None:
    """Which of Slack's rate limits a post's call counts against: a file's upload, a message's
    update (per workspace), or a new message (per channel); None for a post that makes no call."""
    upload = thread.as_file(post, request)
    if upload == thread.SKIP:
        return None
    if upload is not None:
        return FILES, ""
    return ("chat.update", "") if post.ts else ("chat.postMessage", request.channel)


def _scheduled_on_rate_limits(client: WebClient) -> WebClient:
    """The client without slack_sdk's rate-limit handler: a refused post is put back on the
    schedule with those its limit covers (``Notifier._hold_alike``), not slept out in a pool thread."""
    handlers = [handler for handler in client.retry_handlers if not isinstance(handler, RateLimitErrorRetryHandler)]
    return WebClient(
        token=client.token, base_url=client.base_url, timeout=client.timeout, headers=dict(client.headers),
        proxy=client.proxy, ssl=client.ssl, logger=client.logger, retry_handlers=handlers,
    )  # fmt: skip
