"""People's names: looked up in Slack (``users.info``) by the bot in the background, cached in the
control plane, refreshed after a day; Slack failing only delays them and never stops the thread;
a pass reads the rows written since the last, not the whole audit trail."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from django.db.models import Max
from django.utils import timezone
from slack_sdk import WebClient

from bot.people import People
from controlplane import services
from controlplane.locks import lock_acquire
from controlplane.models import AuditEvent, SlackUser
from controlplane.selectors import PEOPLE_LOOKBACK_ROWS, people_named
from slacklocal import SlackWebAPI

TOKEN = "xoxb-people"


def someone() -> str:
    return f"U0{uuid.uuid4().hex[:10].upper()}"


@pytest.fixture
def ids() -> dict[str, str]:
    return {role: someone() for role in ("requester", "approver", "holder", "actor", "nobody")}


@pytest.fixture
def api(ids: dict[str, str]) -> Iterator[SlackWebAPI]:
    users = {
        ids["requester"]: {"name": "alice", "real_name": "Alice Example", "display_name": "Ali"},
        ids["approver"]: {"name": "bob", "real_name": "Bob Example"},
        ids["holder"]: {"name": "dave"},
        ids["actor"]: {"name": "mallory", "real_name": "Mallory Example"},
    }
    with SlackWebAPI(TOKEN, users=users) as server:
        yield server


def named_in_the_control_plane(ids: dict[str, str]) -> None:
    """Each person where the control plane names people: a request, an approval, a lock, an event."""
    request, _ = services.request_create(
        verb="status", environment="people", args=[], requester=ids["requester"], channel="C0P", trigger_id=None
    )
    request.approvals.create(approver=ids["approver"], decision="approve", plan_digest="d")
    env = f"people-{uuid.uuid4().hex[:6]}"
    token, _ = lock_acquire(environment=env, holder=f"user:{ids['holder']}", reason="r", ttl=None)
    assert token is not None
    services.audit_record(actor=ids["actor"], action="command.refused", environment="people", reason="no")
    services.audit_record(actor=ids["nobody"], action="command.refused", environment="people", reason="no")


def until(done: Callable[[], bool], step: Callable[[], object], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        assert time.monotonic() < deadline, "not done in time"
        step()


def names(ids: dict[str, str]) -> dict[str, str]:
    cached = dict(SlackUser.objects.filter(pk__in=ids.values()).values_list("pk", "name"))
    return {role: cached[user] for role, user in ids.items() if user in cached}


def test_everyone_named_is_looked_up_and_cached_as_slack_shows_them(api: SlackWebAPI, ids: dict[str, str]) -> None:
    named_in_the_control_plane(ids)
    people = People(WebClient(token=TOKEN, base_url=api.base_url))
    until(lambda: len(names(ids)) == len(ids), people.refresh)
    assert names(ids) == {
        "requester": "Ali",  # the display name first
        "approver": "Bob Example",  # else the real name
        "holder": "dave",  # else the username (the stand-in's real name defaults to it, as Slack's does)
        "actor": "Mallory Example",
        "nobody": "",  # Slack knows no such user: cached as such, not asked again for a day
    }
    asked = len(api.calls_to("users.info"))
    people.refresh()
    assert all(c.params["user"] not in ids.values() for c in api.calls_to("users.info")[asked:])  # cached


def test_a_name_older_than_a_day_is_asked_again(api: SlackWebAPI, ids: dict[str, str]) -> None:
    named_in_the_control_plane(ids)
    services.user_record(user_id=ids["requester"], name="Alice (old name)")
    SlackUser.objects.filter(pk=ids["requester"]).update(fetched_at=timezone.now() - timedelta(days=1, minutes=1))
    people = People(WebClient(token=TOKEN, base_url=api.base_url))
    until(lambda: names(ids).get("requester") == "Ali", people.refresh)


def test_slack_failing_delays_the_names_and_never_stops_the_thread(api: SlackWebAPI, ids: dict[str, str]) -> None:
    named_in_the_control_plane(ids)
    people = People(WebClient(token=TOKEN, base_url=api.base_url, timeout=2), refresh_seconds=0.5)
    with api.outage(methods=["users.info"]):
        assert people.refresh() is False  # logged, nothing raised, nothing cached
        assert names(ids) == {}
        people.start()
        time.sleep(1.5)  # the thread tries, fails and backs off meanwhile
        assert names(ids) == {}
    try:
        until(lambda: len(names(ids)) == len(ids), lambda: time.sleep(0.2), timeout=40)
    finally:
        people.stop()
    assert names(ids)["requester"] == "Ali"


def test_a_later_pass_reads_the_rows_written_since_and_still_refreshes_everyone_it_saw(
    api: SlackWebAPI, ids: dict[str, str]
) -> None:
    named_in_the_control_plane(ids)
    early = ids["actor"]
    later_rows = (AuditEvent(actor="system", action="request.noted", environment="people") for _ in range(1005))
    AuditEvent.objects.bulk_create(later_rows)  # the audit trail grows past the lookback after the early row
    assert PEOPLE_LOOKBACK_ROWS < 1005
    people = People(WebClient(token=TOKEN, base_url=api.base_url))
    until(lambda: len(names(ids)) == len(ids), people.refresh)  # the first pass read every row

    late = someone()
    services.audit_record(actor=late, action="command.refused", environment="people", reason="no")
    named, marks = people_named(after=people._marks)
    assert late in named and early not in named  # the early row is not read again
    newest = AuditEvent.objects.aggregate(newest=Max("pk"))["newest"]
    assert marks[AuditEvent._meta.label] == newest

    # Still refreshed once its name is a day old: everyone a pass saw is remembered.
    SlackUser.objects.filter(pk=early).update(fetched_at=timezone.now() - timedelta(days=1, minutes=1))
    asked = len(api.calls_to("users.info"))
    people.refresh()
    assert {c.params["user"] for c in api.calls_to("users.info")[asked:]} >= {early, late}
