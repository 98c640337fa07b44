"""Altered Approve / Deny clicks: a value naming another request (in another environment, or one
that does not exist), a changed digest, garbage, a click on another message or from another
channel, a person who may not decide — each properly signed, so Bolt lets it through and our
checks must refuse it. A click forged on behalf of someone (signed without the secret) is
rejected by the signature check. Nothing changes: no request moves, no approval is recorded, no
run is sent; the refusal is audited and told to the clicker only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from inprocess import ELSEWHERE, OPS, InProcessBot

from controlplane.models import Approval, AuditEvent, Request

MUTATIONS = {
    "names another environment's request": {"request": "other"},
    "names no request": {"request": 10**9},
    "names garbage": {"request": "1 OR 1=1"},
    "digest changed": {"digest": "0" * 64},
    "value is not the button's": {"raw": "approve everything"},
    "clicked on the other request's message": {"message": "other"},
    "clicked on an unrelated message": {"message": "unrelated"},
    "from another channel": {"channel": ELSEWHERE},
    "by a reader who is not an approver": {"user": "U0DAVE"},
    "by nobody in particular": {"user": "U0MALLORY"},
    "by the requester": {"user": "U0ALICE"},
    "forged for an approver (no secret)": {"forged": True},
    "the request expired": {"base": "expired"},
}


@dataclass(frozen=True)
class Click:
    """The genuine click of an approver on ``base``'s Approve (or Deny), then altered."""

    base: str  # "open", "guarded" or "expired"
    action: str = "approve"
    message: str = "own"  # "own", "other" or "unrelated"
    channel: str = OPS
    user: str = "U0BOB"
    request: object = "own"  # "own", "other", or literally what the value names
    digest: str = "own"
    raw: str | None = None
    forged: bool = False


@st.composite
def tampered_clicks(draw: st.DrawFn) -> tuple[Click, list[str]]:
    changes = draw(st.lists(st.sampled_from(sorted(MUTATIONS)), min_size=1, max_size=4, unique=True))
    fields = {"base": draw(st.sampled_from(["open", "guarded"])), "action": draw(st.sampled_from(["approve", "deny"]))}
    for change in changes:
        fields |= MUTATIONS[change]
    return Click(**fields), changes


def test_tampered_clicks_change_nothing(inproc: InProcessBot, fault_report) -> None:
    pool = {
        "open": inproc.pending("sec-open"),
        "guarded": inproc.pending("sec-guarded"),
        "expired": inproc.pending("sec-open", expired=True),
    }
    other_ts = inproc.api.methods.call("chat.postMessage", {"channel": OPS, "text": "something else"})["ts"]
    before = {key: (r.state, r.updated_at) for key, r in pool.items()}
    enqueued_before = len(inproc.enqueued)
    tried = crashed = 0

    @settings(max_examples=200, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
    @given(tampered_clicks())
    def check(tampered: tuple[Click, list[str]]) -> None:
        nonlocal tried, crashed
        click, _ = tampered
        tried += 1
        base = pool[click.base]
        other = pool["guarded" if click.base == "open" else "open"]
        named = {"own": base.pk, "other": other.pk}.get(click.request, click.request)  # type: ignore[call-overload]
        digest = base.plan_digest if click.digest == "own" else click.digest
        value = click.raw if click.raw is not None else json.dumps({"request": named, "digest": digest})
        ts = {"own": base.plan_ts, "other": other.plan_ts, "unrelated": other_ts}[click.message]
        newest_request, newest_event = inproc.newest_ids()
        with inproc.watch():
            reply = inproc.sender.click(
                click.action, value, click.user, click.channel, ts, signing_secret="forged" if click.forged else None
            )
        crashed += reply.status >= 500
        events = AuditEvent.objects.filter(id__gt=newest_event)
        if click.forged:
            assert reply.status == 401 and not events.exists()
        else:
            assert reply.status == 200
            assert [(e.action, e.actor) for e in events] == [("decision.refused", click.user)]
        assert {
            key: (r.state, r.updated_at) for key, r in ((k, Request.objects.get(pk=p.pk)) for k, p in pool.items())
        } == before
        assert not Approval.objects.filter(request__in=pool.values()).exists()
        assert not Request.objects.filter(id__gt=newest_request).exists() and not inproc.spawned
        assert len(inproc.enqueued) == enqueued_before

    try:
        check()
    finally:
        fault_report.tally(hostile=tried, crashes=crashed)
