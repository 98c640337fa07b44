"""Every change to the control plane's records, each with its audit event in one transaction.

A state change is a conditional update (``UPDATE … WHERE state IN (…)``): whoever changes the row
first wins and everyone else gets ``None``, so a redelivered task or a double click does nothing.
"""

from __future__ import annotations

import secrets
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from django.db import IntegrityError, transaction
from django.db.models import F, Model
from django.utils import timezone

from controlplane import wake
from controlplane.errors import IllegalTransition
from controlplane.models import (
    TERMINAL_STATES,
    TRANSITIONS,
    AuditEvent,
    Backup,
    Catalog,
    HomeViewer,
    Post,
    Request,
    SlackUser,
    State,
)
from migrabot import metrics


def audit_record(
    *, actor: str, action: str, request: Request | None = None, environment: str = "", **detail: Any
) -> AuditEvent:
    return AuditEvent.objects.create(
        request=request,
        environment=environment or (request.environment if request else ""),
        actor=actor,
        action=action,
        detail=detail,
    )


@dataclass(frozen=True)
class NewRequest:
    """A command to record: what was asked, by whom, where (``trigger_id``: Slack's, one a command)."""

    verb: str
    environment: str
    args: list[str]
    requester: str
    channel: str
    trigger_id: str | None
    response_url: str = ""


def request_create(**asked: Any) -> tuple[Request, bool]:
    """Record a new request and its card; a second delivery of the same trigger returns the first (False)."""
    return requests_create([NewRequest(**asked)])[0]


def requests_create(batch: Sequence[NewRequest]) -> list[tuple[Request, bool]]:
    """Record new requests, each with its audit event and card, in one transaction (a batch is the
    intake's group commit: ``bot.intake``). A trigger recorded already (Slack delivered the command
    twice, to this bot or another) returns the request it made, with False; so does one recorded
    by another bot while this transaction ran, for a batch of one (a larger one raises)."""
    try:
        with transaction.atomic():
            return _requests_create(batch)
    except IntegrityError:
        # A trigger recorded meanwhile, by another bot. In a batch, the intake writes each alone then.
        first = None
        if len(batch) == 1 and batch[0].trigger_id:
            first = Request.objects.filter(trigger_id=batch[0].trigger_id).first()
        if first is None:
            raise
        return [(first, False)]


def _requests_create(batch: Sequence[NewRequest]) -> list[tuple[Request, bool]]:
    outcomes: list[tuple[Request, bool]] = []
    by_trigger: dict[str, Request] = {}  # twice in one batch: recorded once (one seen before: IntegrityError)
    for asked in batch:
        first = by_trigger.get(asked.trigger_id) if asked.trigger_id else None
        if first is not None:
            outcomes.append((first, False))
            continue
        request = Request(
            verb=asked.verb,
            environment=asked.environment,
            args=asked.args,
            requester=asked.requester,
            channel=asked.channel,
            trigger_id=asked.trigger_id or None,
            response_url=asked.response_url,
        )
        outcomes.append((request, True))
        if asked.trigger_id:
            by_trigger[asked.trigger_id] = request
    new = [request for request, created in outcomes if created]
    _insert(Request, new)
    _insert(AuditEvent, [
        AuditEvent(request=request, environment=request.environment, actor=request.requester,
                   action="request.created", detail={"args": request.args, "verb": request.verb})
        for request in new
    ])  # fmt: skip
    # The card, created outright: a new request has no posts to update (``post_record`` would try).
    _insert(Post, [Post(request=request, key="card", kind="card") for request in new])
    wake.after_commit()
    for request in new:
        _count_after_commit(request)
    return outcomes


def _insert(model: type[Model], rows: list[Any]) -> None:
    """Rows of one model in one statement (their keys come back: PostgreSQL, SQLite >= 3.35); one
    row by ``save``, which costs less than ``bulk_create`` for one (0.9 against 1.4 ms a request)."""
    if len(rows) == 1:
        rows[0].save(force_insert=True)
    elif rows:
        model._default_manager.bulk_create(rows)


def request_attach_card(*, request_id: int, thread_ts: str) -> None:
    """Remember the parent message: every later post goes into its thread."""
    Request.objects.filter(pk=request_id, thread_ts="").update(thread_ts=thread_ts)


def request_set_permalink(*, request_id: int, permalink: str) -> bool:
    """Remember the card's permalink, once: False if one was already stored (by another bot)."""
    return bool(Request.objects.filter(pk=request_id, permalink="").update(permalink=permalink))


def request_mark_enqueued(*, request_ids: Collection[int]) -> None:
    """The requests' tasks were handed to the broker (one update for a batch of them)."""
    if request_ids:
        Request.objects.filter(pk__in=request_ids).update(enqueued_at=timezone.now())


def request_transition(
    *,
    request_id: int,
    from_states: Collection[State],
    to: State,
    actor: str,
    action: str,
    result: Any = None,
    error: str = "",
    fields: dict[str, Any] | None = None,
    note: str = "",
    **detail: Any,
) -> Request | None:
    """Move a request to ``to`` only if it is in one of ``from_states``; ``None`` if it was not.

    ``fields`` are set in the same update (a plan and its digest, say); ``detail`` goes to the
    audit; ``note`` is a message for the request's thread, recorded in the same transaction.
    """
    fields = {**(fields or {}), "state": to, "updated_at": timezone.now()}
    if result is not None:
        fields["result"] = result
    if error:
        fields["error"] = error
    with transaction.atomic():
        current = Request.objects.select_for_update().filter(pk=request_id).values_list("state", flat=True).first()
        if current is None or current not in from_states:
            return None  # someone else moved it first
        if to not in TRANSITIONS.get(current, frozenset()):
            raise IllegalTransition(f"request #{request_id}: {current} → {to} is not a move a request makes")
        Request.objects.filter(pk=request_id, state=current).update(**fields)
        request = Request.objects.get(pk=request_id)
        audit_record(actor=actor, action=action, request=request, state=str(to), **detail)
        post_record(request_id=request_id, key="card", kind="card")  # the card shows the new state
        if note:
            post_note(request_id=request_id, text=note)
        _count_after_commit(request)
    return request


def _count_after_commit(request: Request) -> None:
    """The request entered its state (``migrabot.metrics``): counted once that is committed."""
    labels = {"verb": request.verb, "state": str(request.state), "environment": request.environment}
    transaction.on_commit(lambda: metrics.request_entered(**labels))


#: How long a worker's claim on a request lives without a heartbeat before the sweep takes over.
LEASE_TTL = timedelta(seconds=90)


def lease_until() -> datetime:
    """The expiry a claim or heartbeat gives a request's lease (set in the claiming update)."""
    return timezone.now() + LEASE_TTL


def request_renew_lease(*, request_id: int) -> bool:
    """The worker carrying out a request is alive; False if the request is no longer open."""
    return bool(
        Request.objects.filter(pk=request_id)
        .exclude(state__in=TERMINAL_STATES)
        .update(lease_expires_at=lease_until())
    )


def post_record(*, request_id: int, key: str, kind: str, data: dict[str, Any] | None = None) -> None:
    """What one message of the request should say; the notifier makes Slack show it.

    Call it inside the transaction that makes it true: it is shown if and only if that commits.
    Recording the same key again replaces what the message says (an update in Slack).
    """
    data = data or {}
    with transaction.atomic():
        changed = Post.objects.filter(request_id=request_id, key=key).update(
            kind=kind, data=data, version=F("version") + 1, pending=True, retry_at=None, attempts=0
        )
        if not changed:
            try:
                with transaction.atomic():
                    Post.objects.create(request_id=request_id, key=key, kind=kind, data=data)
            except IntegrityError:  # recorded at the same moment by someone else: ours is newer
                Post.objects.filter(request_id=request_id, key=key).update(
                    kind=kind, data=data, version=F("version") + 1, pending=True
                )
        wake.after_commit()


def post_note(*, request_id: int, kind: str = "note", **data: Any) -> None:
    """A new message at the end of the request's thread."""
    post_record(request_id=request_id, key=f"{kind}-{secrets.token_hex(8)}", kind=kind, data=data)


def request_set_plan_message(*, request_id: int, ts: str) -> None:
    Request.objects.filter(pk=request_id).update(plan_ts=ts)


class BackupFile(Protocol):
    """A backup taken and verified by a worker (``workers.backup.Backup``), as the record needs it."""

    @property
    def path(self) -> Path: ...
    @property
    def size(self) -> int: ...
    @property
    def sha256(self) -> str: ...
    @property
    def duration_seconds(self) -> float: ...
    @property
    def tool(self) -> str: ...
    @property
    def tool_version(self) -> str: ...
    @property
    def server_version(self) -> str: ...
    @property
    def verified(self) -> bool: ...
    @property
    def verification(self) -> str: ...


def backup_record(*, request: Request, backup: BackupFile, migration_state: dict[str, Any], actor: str) -> Backup:
    """Record a verified backup with the migration state it captured."""
    with transaction.atomic():
        row = Backup.objects.create(
            environment=request.environment,
            request=request,
            path=str(backup.path),
            size=backup.size,
            sha256=backup.sha256,
            duration_seconds=backup.duration_seconds,
            tool=backup.tool,
            tool_version=backup.tool_version,
            server_version=backup.server_version,
            migration_state=migration_state,
            verified=backup.verified,
            verification=backup.verification,
        )
        audit_record(actor=actor, action="backup.recorded", request=request, backup=row.pk, sha256=backup.sha256)
    return row


def catalog_publish(*, environment: str, apps: dict[str, list[str]]) -> None:
    """Store the migrations on disk that an environment's worker reported."""
    Catalog.objects.update_or_create(environment=environment, defaults={"apps": apps})


def user_record(*, user_id: str, name: str) -> None:
    """Cache how Slack names a person now ("" where Slack knows no such user)."""
    SlackUser.objects.update_or_create(pk=user_id, defaults={"name": name, "fetched_at": timezone.now()})


def home_opened(*, user: str) -> None:
    """``user`` opened the Home tab now: theirs is kept current from now on (``bot.homes``)."""
    HomeViewer.objects.update_or_create(pk=user, defaults={"opened_at": timezone.now()})
