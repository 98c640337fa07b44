"""Reads from the control plane."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.db.models import Max, Q, QuerySet
from django.utils import timezone

from controlplane.models import (
    TERMINAL_STATES,
    Approval,
    AuditEvent,
    Catalog,
    EnvironmentLock,
    HomeViewer,
    Request,
    SlackUser,
    State,
)
from migrabot.config import WRITE_VERBS

#: A Slack user id, as an actor or lock holder names a person (``U…``, or ``user:U…`` for a manual lock).
PERSON = re.compile(r"(?:user:)?([UW][A-Z0-9]{1,31})")


def person_id(value: str) -> str | None:
    """The Slack user id ``value`` names, or None if it names no person ("system", "worker:…")."""
    match = PERSON.fullmatch(value)
    return match.group(1) if match else None


def request_get(*, request_id: int) -> Request | None:
    return Request.objects.filter(pk=request_id).first()


def request_state(*, request_id: int) -> str | None:
    state: str | None = Request.objects.filter(pk=request_id).values_list("state", flat=True).first()
    return state


def catalog_get(*, environment: str) -> dict[str, list[str]] | None:
    # By its key, with none of the ORDER BY that ``first()`` adds: every command reads it before its ack.
    try:
        apps: dict[str, list[str]] = Catalog.objects.get(pk=environment).apps
    except Catalog.DoesNotExist:
        return None
    return apps


def request_succeeded_with_steps(*, environment: str, steps_digest: str) -> Request | None:
    """The latest request that ran these exact steps to success on ``environment``."""
    return (
        Request.objects.filter(environment=environment, steps_digest=steps_digest, state=State.SUCCEEDED)
        .order_by("-updated_at")
        .first()
    )


def requests_awaiting_approval(*, environments: list[str]) -> list[Request]:
    """Requests still awaiting approval on these environments (not yet expired), oldest first."""
    live = Q(expires_at__isnull=True) | Q(expires_at__gt=timezone.now())
    return list(
        Request.objects.filter(live, state=State.AWAITING_APPROVAL, environment__in=environments).order_by("created_at")
    )


def approvers_so_far(*, request_ids: list[int]) -> dict[int, set[str]]:
    """Who has decided on each of these requests (approved or denied)."""
    decided: dict[int, set[str]] = {pk: set() for pk in request_ids}
    for request_id, approver in Approval.objects.filter(request_id__in=request_ids).values_list(
        "request_id", "approver"
    ):
        decided[request_id].add(approver)
    return decided


def last_change(*, environment: str) -> Request | None:
    """The newest write that changed ``environment``: it ran migrations or restored a backup (one
    that found nothing to do succeeded too, and changed nothing)."""
    changed = Q(result__has_key="run") | Q(result__has_key="restored")
    return (
        Request.objects.filter(changed, environment=environment, verb__in=WRITE_VERBS, state=State.SUCCEEDED)
        .order_by("-updated_at")
        .first()
    )


def open_requests_count(*, environment: str) -> int:
    """Requests on ``environment`` not yet in a final state."""
    return Request.objects.filter(environment=environment).exclude(state__in=TERMINAL_STATES).count()


#: How far behind the newest id read a pass reads again: an id is handed out at insert and a row
#: seen at commit, so a row may appear after a newer one was read.
PEOPLE_LOOKBACK_ROWS = 1000
PeopleMarks = dict[str, int]  # a table's label -> the newest id read of it


def people_named(*, after: PeopleMarks) -> tuple[set[str], PeopleMarks]:
    """People named in locks, and in the requests, approvals and audit events written since
    ``after`` (what this returned last; {} reads every row, once): a pass reads the rows since
    the last, not the audit trail whole. Also the marks to pass next time."""
    people = _people(EnvironmentLock.objects.order_by(), "holder")  # a row an environment at most
    marks: PeopleMarks = {}
    for model, field in ((Request, "requester"), (Approval, "approver"), (AuditEvent, "actor")):
        label = model._meta.label
        since = model._default_manager.filter(pk__gt=max(0, after.get(label, 0) - PEOPLE_LOOKBACK_ROWS))
        people |= _people(since.order_by(), field)
        newest = since.aggregate(newest=Max("pk"))["newest"]
        marks[label] = max(after.get(label, 0), newest or 0)
    return people, marks


def users_to_look_up(*, named: set[str], max_age: timedelta, limit: int) -> list[str]:
    """Of the people ``named``, those with no cached name younger than ``max_age``, at most ``limit``."""
    fresh = set(SlackUser.objects.filter(fetched_at__gte=timezone.now() - max_age).values_list("pk", flat=True))
    return sorted(named - fresh)[:limit]


def _people(rows: QuerySet[Any], field: str) -> set[str]:
    values: Iterable[str] = rows.values_list(field, flat=True).distinct()
    people = {person_id(value) for value in values}
    return {person for person in people if person is not None}


def user_name(*, user_id: str) -> str:
    """The cached name of a person; "" where none is cached."""
    name: str | None = SlackUser.objects.filter(pk=user_id).values_list("name", flat=True).first()
    return name or ""


def home_viewers(*, since: timedelta) -> list[str]:
    """Who opened the Home tab within ``since``."""
    return list(HomeViewer.objects.filter(opened_at__gte=timezone.now() - since).values_list("pk", flat=True))


#: What a Home shows changes when a request enters one of these states, or a lock is taken or released.
HOME_STATES = [State.AWAITING_APPROVAL, State.APPROVED, *TERMINAL_STATES]
HOME_ACTIONS = ["lock.acquired", "lock.released"]


def audit_newest_id() -> int:
    newest: int | None = AuditEvent.objects.aggregate(newest=Max("pk"))["newest"]
    return newest or 0


def home_changes(*, after: int) -> list[tuple[int, str]]:
    """The audit events after id ``after`` that change what a Home shows: (id, environment)."""
    changed = Q(action__in=HOME_ACTIONS) | Q(detail__state__in=[str(state) for state in HOME_STATES])
    return list(AuditEvent.objects.filter(changed, pk__gt=after).order_by().values_list("pk", "environment"))


#: A request whose thread waits for nobody but people: it has ended, or awaits approval.
SETTLED_STATES = [State.AWAITING_APPROVAL, *TERMINAL_STATES]


def permalinks_wanted(*, environments: list[str], since: timedelta) -> dict[int, tuple[str, str]]:
    """Requests settled within ``since`` whose card is posted, whose thread shows all of them and
    which have no permalink stored: request id -> (channel, the card's ts)."""
    rows = (
        Request.objects.filter(
            environment__in=environments, permalink="", state__in=SETTLED_STATES,
            created_at__gte=timezone.now() - since,
        )
        .exclude(thread_ts="")
        .exclude(posts__pending=True)
        .values_list("pk", "channel", "thread_ts")
    )  # fmt: skip
    return {pk: (channel, ts) for pk, channel, ts in rows}
