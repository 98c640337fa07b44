"""The audit pages: every request with who did what and when; a token guards them when set."""

from __future__ import annotations

import base64

import pytest
from django.test import Client

from controlplane.models import State
from controlplane.services import audit_record, request_create, request_transition


@pytest.fixture
def rollback() -> int:
    request, _ = request_create(
        verb="rollback", environment="audited", args=["media", "0003"], requester="U0ALICE", channel="C1", trigger_id=None
    )
    request_transition(request_id=request.pk, from_states=[State.RECEIVED], to=State.REFUSED, actor="worker:w1", action="request.refused")
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
