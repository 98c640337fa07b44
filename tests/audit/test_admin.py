"""The audit trail on Django's admin, in process: sign-in, read-only for everyone, filters, search,
date drill-down and pages; a request's plan as the approver saw it, its approvals, backups and
events, readable and escaped; the events that belong to no request; export; hostile query
strings answered 4xx, never 500; no secret shown; ``/healthz``.
"""

from __future__ import annotations

import csv
import io
import json
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from audit_records import (
    CHANNEL,
    DENY_REASON,
    HOSTILE_REASON,
    accounts_plan,
    approved_rollback_that_ran,
    denied_rollback,
    environment,
    planned_rollback,
    read,
    unattached,
)
from django.contrib.auth.models import User
from django.db import OperationalError, connections
from django.http import HttpResponse
from django.test import Client
from django.utils import timezone

from audit.admin import AuditEventAdmin
from controlplane import services
from controlplane.approvals import request_decide
from controlplane.locks import lock_acquire
from controlplane.models import AuditEvent, Decision, EnvironmentLock, Request, SlackUser, State
from migrabot import cli, messages

REPO = Path(__file__).resolve().parents[2]
REQUESTS = "/controlplane/request/"
EVENTS = "/controlplane/auditevent/"
LOCKS = "/controlplane/environmentlock/"
APPROVALS = "/controlplane/approval/"


@pytest.fixture(autouse=True)
def unnamed() -> None:
    """The people of these records with no cached name, as the tests that show bare ids expect
    (a bot of another test module, in this process, may have cached theirs)."""
    SlackUser.objects.filter(pk__in=["U0ALICE", "U0BOB", "U0CAROL", "U0DAVE", "U0MALLORY"]).delete()


@pytest.fixture
def operator() -> Client:
    """A signed-in superuser: even they can only read."""
    user = User.objects.create_superuser(f"op-{uuid.uuid4().hex[:8]}", "op@example.test", None)
    client = Client(raise_request_exception=False)
    client.force_login(user)
    return client


@pytest.fixture
def env(tmp_path: Path) -> str:
    return f"au{uuid.uuid4().hex[:8]}"  # each test's records apart from the others' in the shared control plane


@pytest.fixture
def trail(env: str, tmp_path: Path) -> dict[str, Any]:
    """A rollback that ran, a denied one and a read on ``env``, and two events with no request."""
    configured = environment(env, tmp_path)
    ran = approved_rollback_that_ran(configured, tmp_path)
    denied = denied_rollback(configured)
    shown = read(configured)
    token = unattached(env)
    return {"ran": ran, "denied": denied, "read": shown, "lock_token": token}


def page(response: HttpResponse) -> str:
    assert response.status_code == 200, response.status_code
    return response.content.decode()


def rows(html: str) -> list[str]:
    """The ids of a changelist's rows, in order."""
    return re.findall(r'name="_selected_action" value="(\d+)"', html)


def downloaded(response: Any) -> str:
    assert response.status_code == 200, response.status_code
    return b"".join(response.streaming_content).decode()


# --- signing in ---------------------------------------------------------------------------------


def test_every_page_needs_a_signed_in_staff_account() -> None:
    anonymous = Client()
    for path in ("/", REQUESTS, f"{REQUESTS}1/change/", EVENTS, "/no/such/page/"):
        response = anonymous.get(path)
        assert response.status_code == 302 and response["Location"].startswith("/login/"), path
    name = f"dev-{uuid.uuid4().hex[:8]}"
    User.objects.create_user(name, password="not-staff-pw")  # a person who is not an operator
    refused = page(anonymous.post("/login/?next=/", {"username": name, "password": "not-staff-pw"}))
    assert "Please enter the correct username and password for a staff account" in refused
    assert anonymous.get("/").status_code == 302


def test_the_admin_user_made_with_the_cli_signs_in(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"ops-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("MIGRABOT_CONFIG", str(REPO / "migrabot.toml"))
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "correct horse battery staple")
    argv = ["admin", "createsuperuser", "--noinput", "--username", name, "--email", "ops@example.test"]
    assert cli.main(argv) == 0
    browser = Client()
    wrong = page(browser.post("/login/?next=/", {"username": name, "password": "wrong"}))
    assert "Please enter the correct username and password" in wrong
    signed_in = browser.post("/login/?next=/", {"username": name, "password": "correct horse battery staple"})
    assert signed_in.status_code == 302 and signed_in["Location"] == "/"
    assert "The audit trail" in page(browser.get("/"))


# --- read-only, for everyone --------------------------------------------------------------------


def test_nothing_can_be_added_changed_or_deleted_even_by_a_superuser(operator: Client, trail: dict[str, Any]) -> None:
    ran: Request = trail["ran"]
    events = AuditEvent.objects.count()
    assert operator.get(f"{REQUESTS}add/").status_code == 403
    assert operator.post(f"{REQUESTS}{ran.pk}/change/", {"state": "failed"}).status_code == 403
    assert operator.get(f"{REQUESTS}{ran.pk}/delete/").status_code == 403
    assert operator.post(f"{REQUESTS}{ran.pk}/delete/", {"post": "yes"}).status_code == 403
    ids = [str(e.pk) for e in AuditEvent.objects.filter(request=ran)]
    operator.post(EVENTS, {"action": "delete_selected", "_selected_action": ids, "post": "yes", "index": "0"})
    assert AuditEvent.objects.count() == events
    assert Request.objects.get(pk=ran.pk).state == State.SUCCEEDED
    change_page = page(operator.get(f"{REQUESTS}{ran.pk}/change/"))
    assert 'name="_save"' not in change_page and "Delete" not in change_page


# --- requests: filters, search, dates, pages ----------------------------------------------------


def test_requests_are_filtered_searched_and_drilled_down_by_date(
    operator: Client, env: str, trail: dict[str, Any]
) -> None:
    ran, denied, shown = (str(trail[key].pk) for key in ("ran", "denied", "read"))

    def listed(**query: str) -> list[str]:
        return rows(page(operator.get(REQUESTS, {"environment__exact": env, **query})))

    assert listed() == [shown, denied, ran]  # newest first
    assert listed(verb__exact="rollback") == [denied, ran]
    assert listed(state__exact="denied") == [denied]
    assert listed(requester__exact="U0CAROL") == [denied]
    assert listed(q="marketplace") == [ran]  # an app
    assert listed(q="0004_banner") == [ran]  # a migration its plan unapplies (Django's cascade)
    assert listed(q="accounts") == [denied]
    assert listed(q="U0BOB") == [denied, ran]  # the person who decided
    today = timezone.now()
    assert listed(created_at__year=str(today.year), created_at__month=str(today.month)) == [shown, denied, ran]
    assert listed(created_at__year=str(today.year - 1)) == []
    filters = page(operator.get(REQUESTS))
    for name in ("By environment", "By verb", "By state", "By requester", "By created at"):
        assert name in filters, name


def test_requests_are_paginated(operator: Client, env: str) -> None:
    for n in range(55):
        services.request_create(
            verb="status", environment=env, args=[], requester=f"U{n}", channel=CHANNEL, trigger_id=None
        )
    first = page(operator.get(REQUESTS, {"environment__exact": env}))
    second = page(operator.get(REQUESTS, {"environment__exact": env, "p": "2"}))
    assert (len(rows(first)), len(rows(second))) == (50, 5)
    assert "55 requests" in first
    # A page past the end is "wrong filter", never a 500. (One page of rows is shown whole, whatever the
    # page number: only a list of several pages can be asked for one it does not have.)
    assert operator.get(REQUESTS, {"environment__exact": env, "p": str(10**30)}).status_code == 302


# --- a request's page --------------------------------------------------------------------------


def test_a_requests_page_shows_the_plan_as_the_approver_saw_it(
    operator: Client, env: str, trail: dict[str, Any]
) -> None:
    ran: Request = trail["ran"]
    html = page(operator.get(f"{REQUESTS}{ran.pk}/change/"))
    plan_message = [
        f"<strong>Plan for #{ran.pk}</strong> <code>rollback {env} marketplace 0005</code>",
        "2 steps · 🔥 drops 1 table (3 rows) · 0 ⛔ irreversible · 0 ⚪ no-op reverse",
        "↩️ unapply <code>media.0004_banner</code> — 🔥 destroys data in <code>media_banner</code>",
        "↩️ unapply <code>marketplace.0006_alter_listing_title</code>",
        "Tables: <code>media_banner</code> (3 rows), <code>marketplace_listing</code> (1,204 rows)",
        "Needs 1 approval from an approver other than @U0ALICE · expires ",
        "[Approve] [Deny]",
    ]
    position = [html.find(line) for line in plan_message]
    assert -1 not in position and position == sorted(position), list(zip(plan_message, position, strict=True))
    assert "DROP TABLE &quot;media_banner&quot; CASCADE;" in html  # the SQL the approver got as a file
    assert "<p>U0BOB</p>" in html and "<p>Approve</p>" in html  # the approval
    assert (
        ran.backups.get().sha256 in html
        and f"{ran.pk}.sqlite3" in html
        and "PRAGMA integrity_check: ok; sha256 matches" in html
    )  # its backup
    link = "https://slack.com/app_redirect?channel=C0OPS&amp;message_ts=1717000000.000100"
    assert f'<a href="{link}" class="audit-thread"' in html  # no permalink stored: Slack's redirect


def test_a_requests_thread_link_is_the_permalink_slack_gave(operator: Client, env: str) -> None:
    request, _ = services.request_create(
        verb="status", environment=env, args=[], requester="U0ALICE", channel=CHANNEL, trigger_id=None
    )
    services.request_attach_card(request_id=request.pk, thread_ts="1717000000.000200")
    permalink = "https://acme.slack.com/archives/C0OPS/p1717000000000200"
    assert services.request_set_permalink(request_id=request.pk, permalink=permalink)
    assert not services.request_set_permalink(request_id=request.pk, permalink="https://other.example/")  # once
    html = page(operator.get(f"{REQUESTS}{request.pk}/change/"))
    assert f'<a href="{permalink}" class="audit-thread"' in html and "app_redirect" not in html


def test_people_are_named_from_the_user_cache_else_shown_by_id(operator: Client, env: str, tmp_path: Path) -> None:
    alice, bob, dave, stranger = (f"U0{uuid.uuid4().hex[:8].upper()}" for _ in range(4))
    for user_id, name in ((alice, "Alice Example"), (bob, "Bob <b>Example</b>"), (dave, "Dave Example")):
        services.user_record(user_id=user_id, name=name)
    services.user_record(user_id=stranger, name="")  # Slack knew no such user
    configured = environment(env, tmp_path, approver=bob)
    plan = accounts_plan()
    request = planned_rollback(configured, args=["accounts", "0003"], requester=alice, thread_ts="1.2", plan=plan)
    request_decide(
        request_id=request.pk, person=bob, decision=Decision.DENY, plan_digest=request.plan_digest,
        environment=configured, members_of=lambda group: None, reason="not today",
    )  # fmt: skip
    token, _ = lock_acquire(environment=env, holder=f"user:{dave}", reason="freeze", ttl=None)
    services.audit_record(actor=stranger, action="command.refused", environment=env, reason="no")
    bob_shown = f"Bob &lt;b&gt;Example&lt;/b&gt; ({bob})"  # a name is text, never markup
    html = page(operator.get(f"{REQUESTS}{request.pk}/change/"))
    assert f'<div class="readonly">Alice Example ({alice})</div>' in html  # the requester
    assert "an approver other than @Alice Example" in html and f"@{alice}" not in html  # mentioned in the plan
    assert f'<div class="readonly">{bob_shown}: not today</div>' in html  # denied because
    assert re.search(rf'<td class="field-approver_shown">\s*<p>{re.escape(bob_shown)}</p>', html)  # the approval
    actors = re.findall(r'<td class="field-actor_shown">\s*<p>([^<]+)</p>', html)
    assert f"Alice Example ({alice})" in actors and bob_shown in actors  # the events'
    listed = page(operator.get(REQUESTS, {"environment__exact": env}))
    assert f'<td class="field-requester_shown">Alice Example ({alice})</td>' in listed
    assert rows(page(operator.get(REQUESTS, {"environment__exact": env, "q": "alice exam"}))) == [str(request.pk)]
    assert rows(page(operator.get(REQUESTS, {"environment__exact": env, "q": "bob <b>"}))) == [str(request.pk)]
    assert f"{bob_shown}</td>" in page(operator.get(APPROVALS, {"q": "not today"}))
    events = page(operator.get(EVENTS, {"environment__exact": env}))
    assert f'<td class="field-actor_shown">Dave Example ({dave})</td><td class="field-action">lock.acquired' in events
    assert f'<td class="field-actor_shown">{stranger}</td>' in events  # no name cached: the bare id
    assert f"Dave Example ({dave})</td>" in page(operator.get(LOCKS, {"q": env}))
    services.audit_record(actor=bob, action="request.approved", environment=env, approvers=[alice, stranger])
    approved = page(operator.get(EVENTS, {"environment__exact": env, "action__exact": "request.approved"}))
    assert f"<strong>approvers</strong>: <code>Alice Example ({alice}), {stranger}</code>" in approved  # details too
    assert token is not None
    # The filters name people too; their links still carry the id.
    sidebar = page(operator.get(REQUESTS, {"environment__exact": env})).split('id="changelist-filter"')[1]
    assert re.search(rf'href="\?[^"]*requester={alice}[^"]*">Alice Example \({alice}\)</a>', sidebar), sidebar
    events_sidebar = events.split('id="changelist-filter"')[1]
    assert f"Dave Example (user:{dave})" not in events_sidebar and f">user:{dave}<" not in events_sidebar
    assert re.search(rf'actor=user%3A{dave}[^"]*">Dave Example \({dave}\)</a>', events_sidebar), events_sidebar
    assert f">{stranger}</a>" in events_sidebar
    approver_sidebar = page(operator.get(APPROVALS, {"q": "not today"})).split('id="changelist-filter"')[1]
    assert f">{bob_shown}</a>" in approver_sidebar


def test_every_event_of_a_request_is_readable(operator: Client, trail: dict[str, Any]) -> None:
    ran: Request = trail["ran"]
    html = page(operator.get(f"{REQUESTS}{ran.pk}/change/"))
    actions = [event.action for event in AuditEvent.objects.filter(request=ran).order_by("id")]
    assert actions[:3] == ["request.created", "request.planning", "request.awaiting_approval"]
    assert {"request.approve_clicked", "request.approved", "lock.acquired", "backup.recorded", "lock.released"} <= set(
        actions
    )
    shown = re.findall(r'<td class="field-action">\s*<p>([^<]+)</p>', html)
    assert shown == actions
    assert "<strong>args</strong>: <code>[&quot;marketplace&quot;, &quot;0005&quot;]</code>" in html
    assert "<strong>approvers</strong>: <code>U0BOB</code>" in html  # no name cached for U0BOB here
    # Readable: key: value lines, never a dict repr, nor raw JSON of a whole record.
    assert "{&#x27;" not in html and "&quot;steps&quot;" not in html
    # What the notifier stored to answer the requester is not for the audit to show.
    assert "response_url" not in html


def test_a_denials_reason_reads_as_it_was_typed(operator: Client, trail: dict[str, Any]) -> None:
    """On the request's page (its summary, its approval, its events) and in the approvals' list."""
    denied: Request = trail["denied"]
    typed = "&lt;!here&gt; not *now* &amp; &lt;i&gt;never&lt;/i&gt;"
    html = page(operator.get(f"{REQUESTS}{denied.pk}/change/"))
    assert f'<div class="readonly">U0BOB: {typed}</div>' in html  # denied because
    assert re.search(rf'<td class="field-reason">\s*<p>{re.escape(typed)}</p>', html)  # the approval
    assert html.count(f"<strong>reason</strong>: <code>{typed}</code>") == 2  # deny_clicked, denied
    assert "<!here>" not in html and "<i>never" not in html and "&amp;lt;" not in html
    listed = page(operator.get(APPROVALS, {"q": "never"}))  # found by its reason
    assert str(denied.approvals.get().pk) in rows(listed) and f"{typed}</td>" in listed
    assert str(trail["ran"].approvals.get().pk) not in rows(listed)
    assert DENY_REASON not in listed
    ran = page(operator.get(f"{REQUESTS}{trail['ran'].pk}/change/"))
    assert '<div class="readonly">—</div>' in ran.split("Denied because", 1)[1][:300]  # nobody denied it


def test_a_refusal_reads_as_the_requester_read_it(operator: Client, env: str) -> None:
    request, _ = services.request_create(
        verb="plan", environment=env, args=["<x>"], requester="U0ALICE", channel=CHANNEL, trigger_id=None
    )
    refusal = messages.unknown_app("<!here>&", env, ["accounts", "media"])
    services.request_transition(
        request_id=request.pk,
        from_states=[State.RECEIVED],
        to=State.REFUSED,
        actor="worker:w1",
        action="request.refused",
        error=refusal,
    )
    html = page(operator.get(f"{REQUESTS}{request.pk}/change/"))
    assert "<code>&lt;!here&gt;&amp;</code>" in html  # typed text as itself, escaped once
    assert "&amp;lt;" not in html and "<!here>" not in html


# --- events that belong to no request -----------------------------------------------------------


def test_events_without_a_request_newest_first_readable_and_escaped(
    operator: Client, env: str, trail: dict[str, Any]
) -> None:
    assert f'href="{EVENTS}?request=none"' in page(operator.get("/"))
    html = page(operator.get(EVENTS, {"request": "none", "environment__exact": env}))
    found = re.findall(r'<td class="field-actor_shown">([^<]*)</td><td class="field-action">([^<]*)</td>', html)
    assert found == [("U0MALLORY", "command.refused"), ("user:U0ALICE", "lock.acquired")]
    # A reason someone typed, as itself; a refusal's reason as the person read it in Slack.
    assert "<strong>reason</strong>: <code>&lt;!channel&gt; freeze &amp; &lt;b&gt;hold&lt;/b&gt;</code>" in html
    assert "<strong>reason</strong>: Unknown command <code>&lt;!channel&gt;</code>. Valid commands:" in html
    assert "<!channel>" not in html and "<b>hold" not in html and "&amp;lt;" not in html
    of_requests = page(operator.get(EVENTS, {"request": "any", "environment__exact": env}))
    actions = re.findall(r'<td class="field-action">([^<]*)</td>', of_requests)
    assert "request.created" in actions and "command.refused" not in actions


def test_events_are_paginated(operator: Client, env: str) -> None:
    per_page = AuditEventAdmin.list_per_page
    for n in range(per_page + 5):
        services.audit_record(actor=f"U{n}", action="command.refused", environment=env, reason=f"refusal {n}")
    first = page(operator.get(EVENTS, {"environment__exact": env}))
    second = page(operator.get(EVENTS, {"environment__exact": env, "p": "2"}))
    assert (len(rows(first)), len(rows(second))) == (per_page, 5)
    assert f"refusal {per_page + 4}" in first and "refusal 0<" in second
    assert operator.get(EVENTS, {"environment__exact": env, "p": "1e309"}).status_code == 200


# --- locks: the reason escaped, the token never shown ------------------------------------------------


def test_a_locks_token_is_never_shown_exported_or_filtered_on(
    operator: Client, env: str, trail: dict[str, Any]
) -> None:
    token = trail["lock_token"]
    html = page(operator.get(LOCKS, {"q": env}))
    assert "&lt;!channel&gt; freeze &amp; &lt;b&gt;hold&lt;/b&gt;" in html and token not in html
    lock = EnvironmentLock.objects.get(environment=env)
    assert token not in page(operator.get(f"{LOCKS}{env}/change/"))
    exported = downloaded(operator.post(LOCKS, {"action": "export_json", "_selected_action": [lock.pk], "index": "0"}))
    assert token not in exported and json.loads(exported)[0]["reason"] == HOSTILE_REASON
    assert operator.get(LOCKS, {"token__startswith": token[:4]}).status_code == 400


# --- export -----------------------------------------------------------------------------------------


def test_selected_events_export_as_json_and_csv(operator: Client, env: str, trail: dict[str, Any]) -> None:
    services.audit_record(actor="U0EVE", action="command.refused", environment=env, reason='=HYPERLINK("http://x")')
    events = list(AuditEvent.objects.filter(environment=env).order_by("id"))
    chosen = [events[0].pk, events[-1].pk]
    as_json = json.loads(
        downloaded(operator.post(EVENTS, {"action": "export_json", "_selected_action": chosen, "index": "0"}))
    )
    assert [row["id"] for row in as_json] == chosen
    assert as_json[0]["request_id"] == trail["ran"].pk and as_json[0]["detail"]["args"] == ["marketplace", "0005"]
    as_csv = list(
        csv.DictReader(
            io.StringIO(
                downloaded(operator.post(EVENTS, {"action": "export_csv", "_selected_action": chosen, "index": "0"}))
            )
        )
    )
    assert [int(row["id"]) for row in as_csv] == chosen
    assert json.loads(as_csv[-1]["detail"]) == {"reason": '=HYPERLINK("http://x")'}  # JSON: starts with {, not =
    assert as_csv[-1]["actor"] == "U0EVE"


def test_the_whole_filtered_list_exports_and_a_formula_stays_text(
    operator: Client, env: str, trail: dict[str, Any]
) -> None:
    services.audit_record(actor="=cmd|' /C calc'!A0", action="command.refused", environment=env, reason="-1+1")
    # "Select all N": the page sends its own ticked rows too, and the action takes the whole list.
    one = AuditEvent.objects.filter(environment=env).first()
    assert one is not None
    everything = {"action": "export_csv", "select_across": "1", "_selected_action": [one.pk], "index": "0"}
    exported = downloaded(operator.post(f"{EVENTS}?environment__exact={env}&request=none", everything))
    table = list(csv.DictReader(io.StringIO(exported)))
    assert [row["action"] for row in table] == ["lock.acquired", "command.refused", "command.refused"]
    assert table[-1]["actor"] == "'=cmd|' /C calc'!A0"
    requests = downloaded(operator.post(f"{REQUESTS}?environment__exact={env}", everything | {"action": "export_json"}))
    assert sorted(row["id"] for row in json.loads(requests)) == sorted(trail[k].pk for k in ("ran", "denied", "read"))
    assert "response_url" not in requests


# --- hostile input: 4xx, never 500 ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "query", "status"),
    [
        (REQUESTS, {"q": "a\x00b"}, 400),  # PostgreSQL refuses a NUL: a 500 if it reached the query
        (REQUESTS, {"environment__exact": "\x00"}, 400),
        (REQUESTS, {"q": "x" * 201}, 400),
        (REQUESTS, {"q\x00": "x"}, 400),
        (REQUESTS, {"created_at__year": "9999"}, 302),  # Django's date drill-down overflows: "wrong filter"
        (REQUESTS, {"created_at__year": "9999", "created_at__month": "12"}, 302),
        (REQUESTS, {"created_at__year": "2024", "created_at__month": "13"}, 302),
        (REQUESTS, {"created_at__year": "1e309"}, 302),
        (REQUESTS, {"created_at__gte": "yesterday"}, 302),
        (REQUESTS, {"args__contains": "x"}, 400),  # not a filter on the page (SQLite cannot run it)
        (REQUESTS, {"response_url__startswith": "https"}, 400),
        (EVENTS, {"request__exact": str(2**70)}, 400),
        (EVENTS, {"request": "maybe"}, 200),
        (EVENTS, {"_to_field": "detail"}, 400),
        (REQUESTS, {"o": "99.-x.1"}, 200),
        (f"{REQUESTS}{2**64}/change/", {}, 302),  # "does not exist", back to the index
        (f"{REQUESTS}1e309/change/", {}, 302),
        (f"{EVENTS}%00/change/", {}, 302),
    ],
)
def test_hostile_queries_are_answered_4xx_never_500(
    operator: Client, path: str, query: dict[str, str], status: int
) -> None:
    assert operator.get(path, query).status_code == status


def test_hostile_sign_ins_are_refused_never_500() -> None:
    client = Client(raise_request_exception=False)
    for username, password in [("a\x00b", "x"), ("é" * 5000, "ü"), ("admin", "\x00"), ("<script>", "<!here>")]:
        response = client.post("/login/?next=/", {"username": username, "password": password})
        assert response.status_code == 200, (username[:10], response.status_code)
        assert "<script>" not in response.content.decode()


# --- health -----------------------------------------------------------------------------------------


def test_healthz_says_whether_the_control_plane_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    response = Client().get("/healthz")
    assert (response.status_code, response.json()) == (200, {"controlplane": "ok"})

    def unreachable() -> Iterator[None]:
        raise OperationalError('connection to server at "db" failed: password for postgres://u:hunter2@db/x')

    monkeypatch.setattr(connections["default"], "cursor", unreachable)
    response = Client().get("/healthz")
    assert (response.status_code, response.json()) == (503, {"controlplane": "unreachable"})
    assert Client().post("/healthz").status_code == 405
