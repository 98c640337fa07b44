"""The audit pages: every request with who did what and when, and the events that belong to no
request; a token guards them when set."""

from __future__ import annotations

import base64
import re
import uuid

import pytest
from django.test import Client

from controlplane.models import AuditEvent, State
from controlplane.services import audit_record, request_create, request_transition
from controlplane.views import PAGE


@pytest.fixture
def rollback() -> int:
    request, _ = request_create(
        verb="rollback",
        environment="audited",
        args=["media", "0003"],
        requester="U0ALICE",
        channel="C1",
        trigger_id=None,
    )
    request_transition(
        request_id=request.pk,
        from_states=[State.RECEIVED],
        to=State.REFUSED,
        actor="worker:w1",
        action="request.refused",
    )
    audit_record(actor="U0BOB", action="decision.refused", reason="not waiting for approval")
    return request.pk


def test_list_and_detail_show_who_did_what(rollback: int) -> None:
    client = Client()
    listing = client.get("/", {"environment": "audited"}).content.decode()
    assert f'href="/requests/{rollback}/"' in listing and "rollback audited media 0003" in listing
    detail = client.get(f"/requests/{rollback}/").content.decode()
    for text in ("U0ALICE", "request.created", "worker:w1", "request.refused", "refused"):
        assert text in detail


def test_a_token_guards_the_pages_when_set(rollback: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIGRABOT_AUDIT_TOKEN", "s3cret-token")
    client = Client()
    assert client.get("/").status_code == 401
    assert client.get("/", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert client.get("/", HTTP_AUTHORIZATION="Bearer s3cret-token").status_code == 200
    basic = base64.b64encode(b"operator:s3cret-token").decode()
    assert client.get(f"/requests/{rollback}/", HTTP_AUTHORIZATION=f"Basic {basic}").status_code == 200


# --- events that belong to no request ----------------------------------------------------------

TOKEN = "events-token"


@pytest.fixture
def operator(monkeypatch: pytest.MonkeyPatch) -> Client:
    monkeypatch.setenv("MIGRABOT_AUDIT_TOKEN", TOKEN)
    return Client(HTTP_AUTHORIZATION=f"Bearer {TOKEN}")


def unattached(environment: str) -> list[AuditEvent]:
    """What the bot records with no request: a manual lock and unlock, refusals, a run's lock release."""
    return [
        audit_record(
            actor="user:U0ALICE",
            action="lock.acquired",
            environment=environment,
            reason="<!channel> freeze & <b>hold</b>",
        ),
        audit_record(
            actor="U0MALLORY", action="command.refused", environment=environment, reason="not allowed", channel="C1"
        ),
        audit_record(
            actor="U0BOB",
            action="decision.refused",
            environment=environment,
            reason="no such request",
            value='{"request": 1e309}',
        ),
        audit_record(
            actor="request:7", action="lock.released", environment=environment, holder="request:7", steps=["a", "b"]
        ),
        audit_record(actor="U0ALICE", action="lock.released", environment=environment, holder="user:U0ALICE"),
    ]


def test_the_index_links_to_the_events_without_a_request(operator: Client) -> None:
    index = operator.get("/").content.decode()
    assert 'href="/events/"' in index


def test_events_without_a_request_newest_first_readable_and_escaped(operator: Client) -> None:
    environment = f"ev{uuid.uuid4().hex[:8]}"
    events = unattached(environment)
    page = operator.get("/events/", {"environment": environment}).content.decode()
    rows = re.findall(r"<tr><td>[^<]*</td><td>[^<]*</td><td>([^<]*)</td><td>([^<]*)</td>", page)
    assert rows == [(e.actor, e.action) for e in reversed(events)]
    assert "<strong>reason</strong>: <code>&lt;!channel&gt; freeze &amp; &lt;b&gt;hold&lt;/b&gt;</code>" in page
    assert "<strong>steps</strong>: <code>[&quot;a&quot;, &quot;b&quot;]</code>" in page
    assert "<!channel>" not in page and "<b>hold" not in page and "{&#x27;reason&#x27;" not in page
    assert (
        operator.get("/events/", {"environment": environment, "action": "lock.released"})
        .content.decode()
        .count("lock.released</td>")
        == 2
    )


def test_events_without_a_request_are_paginated(operator: Client) -> None:
    environment = f"ev{uuid.uuid4().hex[:8]}"
    for n in range(PAGE + 5):
        audit_record(actor=f"U{n}", action="command.refused", environment=environment, reason=f"refusal {n}")
    first = operator.get("/events/", {"environment": environment}).content.decode()
    second = operator.get("/events/", {"environment": environment, "page": "2"}).content.decode()
    assert first.count("command.refused</td>") == PAGE and second.count("command.refused</td>") == 5
    assert f"refusal {PAGE + 4}</code>" in first and "refusal 0</code>" in second
    assert f"environment={environment}&amp;action=&amp;page=2" in first
    assert operator.get("/events/", {"environment": environment, "page": "1e309"}).status_code == 200


def test_events_of_a_request_are_not_among_them_and_its_page_is_readable(operator: Client, rollback: int) -> None:
    page = operator.get("/events/", {"action": "request.created"}).content.decode()
    assert "request.created</td>" not in page
    detail = operator.get(f"/requests/{rollback}/").content.decode()
    assert "<strong>args</strong>: <code>[&quot;media&quot;, &quot;0003&quot;]</code>" in detail


def test_the_events_page_needs_the_token_and_refuses_bad_filters(operator: Client) -> None:
    assert Client().get("/events/").status_code == 401
    assert operator.get("/events/", {"environment": "a\x00b"}).status_code == 400
    assert operator.get(f"/requests/{2**64}/").status_code == 404
