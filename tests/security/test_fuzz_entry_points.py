"""Hostile input at every entry point gets a clear 4xx (or the bot's refusal) and an audit row, never a 500.

Entry points: slash command bodies, interactive payloads (``block_actions`` with hostile values,
ids and containers, and payloads that are not one), the headers Slack signs with, and the audit
site (Django's admin: its pages, searches, filters and sign-in form, signed in and not). First
the inputs found answering 500 (each over real HTTP), then a seeded generator sends
``FUZZ_INPUTS`` more through the bot's WSGI app in process (the socket adds nothing but time),
every Slack one with a real signature (slack_sdk's ``SignatureVerifier``, as Slack signs), and
the audit site's through Django's test client.

Decision — what is audited: a request rejected at the door, before or by the signature check (a
bad or missing signature, a stale timestamp, headers not in Slack's form, an oversized or
undecodable body), is answered 4xx and logged but not audited: unauthenticated traffic must not
be able to fill the system of record. Everything that passes the signature check is audited,
exactly once: a refused command (``command.refused``), a refused click (``decision.refused``), or
a body the bot does not take — malformed, or no listener for it (``input.refused``). (Slack's
``ssl_check`` ping, answered by Bolt, is not hostile input and not generated here.) Nothing
reaches a worker or a database: no request row, nothing enqueued, no program started.
"""

from __future__ import annotations

import io
import json
import os
import random
import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client
from inprocess import OPS, PEOPLE, SIGNING_SECRET, InProcessBot
from slack_sdk.signature import SignatureVerifier
from test_hostile_input import KNOWN_HOSTILE, TEMPLATES, raw_post, signed_headers

from bot.server import EVENTS_PATH, MAX_BODY_BYTES, slack_wsgi
from controlplane.models import AuditEvent, Request

FUZZ_INPUTS = int(os.environ.get("FUZZ_INPUTS", "10000"))  # fewer while working on the generator
SEED = int(os.environ.get("FUZZ_SEED", "20240601"))
SIGNER = SignatureVerifier(SIGNING_SECRET)


# --- the inputs found answering 500 ----------------------------------------------------------


def click_payload(value: str, **changes: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": {"id": "U0BOB", "username": "bob", "name": "bob", "team_id": "T0LOCAL"},
        "team": {"id": "T0LOCAL", "domain": "local"},
        "api_app_id": "A0MIGRABOT",
        "token": "local-verification-token",
        "container": {"type": "message", "message_ts": "1.000001", "channel_id": OPS, "is_ephemeral": False},
        "trigger_id": "1.2.abc",
        "channel": {"id": OPS, "name": "migrations"},
        "response_url": "https://hooks.slack.invalid/actions/T0LOCAL/1/x",
        "actions": [
            {"type": "button", "action_id": "approve", "block_id": "decision-1", "value": value, "action_ts": "1.2"}
        ],
    }
    return {key: field for key, field in (payload | changes).items() if field is not OMIT}


OMIT = object()
FOUND_CLICKS = {
    "request 1e309 (inf)": click_payload('{"request": 1e309, "digest": "x"}'),
    "request NaN": click_payload('{"request": NaN}'),
    "request beyond any database id": click_payload('{"request": 100000000000000000000000000000}'),
    "request true": click_payload('{"request": true}'),
    "value nested 100,000 deep": click_payload("[" * 100_000 + "]" * 100_000),
    "value not a string": click_payload(12),  # type: ignore[arg-type]
    "channel a string": click_payload('{"request": 1}', channel="C0OPS"),
    "container null": click_payload('{"request": 1}', container=None),
    "no user": click_payload('{"request": 1}', user=OMIT),
    "actions empty": click_payload('{"request": 1}', actions=[]),
    "actions a string": click_payload('{"request": 1}', actions="approve"),
    "enterprise a number": click_payload('{"request": 1}', enterprise=5),
    "authorizations a string": click_payload('{"request": 1}', authorizations="x"),
}


@pytest.mark.parametrize("name", FOUND_CLICKS)
def test_found_hostile_clicks_are_refused_and_audited(inproc: InProcessBot, name: str) -> None:
    body = urlencode({"payload": json.dumps(FOUND_CLICKS[name])})
    newest_request, newest_event = inproc.newest_ids()
    status, answer = raw_post(inproc.sender.bot_url, body.encode(), signed_headers(body))
    assert 200 <= status < 500, (status, answer)
    events = list(AuditEvent.objects.filter(id__gt=newest_event).values_list("action", flat=True))
    assert events == (["decision.refused"] if status == 200 else ["input.refused"])
    assert not Request.objects.filter(id__gt=newest_request).exists()


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("X-Slack-Request-Timestamp", "²"),  # str.isdigit() says yes, int() says no
        ("X-Slack-Request-Timestamp", "9" * 5000),  # more digits than int() converts
        ("X-Slack-Signature", "v0=" + "é" * 64),  # compare_digest refuses non-ASCII str
    ],
)
def test_headers_not_in_slacks_form_are_401_unaudited(inproc: InProcessBot, header: str, value: str) -> None:
    body = "command=%2Fmigrate&text=help&user_id=U0ALICE&channel_id=C0OPS"
    headers = signed_headers(body)
    headers[header] = value if header != "X-Slack-Request-Timestamp" else value + headers[header][len(value) :]
    since = inproc.newest_ids()
    assert raw_post(inproc.sender.bot_url, body.encode(), headers)[0] == 401
    assert inproc.newest_ids() == since


# --- the generator -----------------------------------------------------------------------------

RANGES = [
    (0x20, 0x7E),
    (0x00, 0x1F),
    (0x7F, 0xFF),
    (0x0600, 0x06FF),
    (0x2000, 0x206F),
    (0x2070, 0x209F),
    (0x4E00, 0x4E80),
    (0xFF00, 0xFFEF),
    (0x1F600, 0x1F64F),
]
MARKUP = ["<!channel>", "<!here>", "<@U0BOB>", "<http://evil|Approve here>", "&amp;", "<script>alert(1)</script>"]
NUMBERS = [
    "1e309",
    "-1e309",
    "NaN",
    "Infinity",
    "-Infinity",
    "0",
    "-1",
    "1.5",
    "1.0",
    "true",
    "false",
    "null",
    str(2**63),
    str(2**64),
    "9" * 5000,
    "-0",
    '"12"',
    '""',
    "[]",
    "{}",
    "[12]",
]
DIGITS = ["²", "¹²³", "١٢٣", "１２３", "߁", "৩", "1_000", "+12", " 12", "12 ", "1e3", "0x1f", ""]


def hostile_string(rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.3:
        return rng.choice(KNOWN_HOSTILE + MARKUP + NUMBERS + DIGITS)
    if roll < 0.4:
        return rng.choice("a¹٣<&\x00") * rng.choice([33, 101, 256, 501, 2001])
    low, high = rng.choice(RANGES)
    return "".join(chr(rng.randint(low, high)) for _ in range(rng.randint(1, 24)))


def hostile_word(rng: random.Random) -> str:
    """A word the grammar refuses wherever it stands: it holds a character no argument may hold."""
    bad = hostile_string(rng)
    while True:
        ch = chr(rng.randint(*rng.choice(RANGES)))
        if not ch.isspace() and not (ch.isascii() and (ch.isalnum() or ch in "_#-")):
            break
    word = "".join(c for c in bad if not c.isspace())[:40]
    position = rng.randint(0, len(word))
    return word[:position] + ch + word[position:]


def hostile_text(rng: random.Random) -> str:
    words = list(rng.choice(TEMPLATES))
    position = rng.randint(0, len(words))
    words[position:position + 1] = [hostile_word(rng)]  # fmt: skip
    return rng.choice([" ", "  ", "\t", "\n"]).join(words)


def hostile_json(rng: random.Random) -> str:
    """JSON text, most of it not what a button carries."""
    roll = rng.random()
    if roll < 0.5:
        digest = rng.choice(['"x"', "null", "5", "[]", json.dumps(hostile_string(rng))])
        number = rng.choice([*NUMBERS, json.dumps(hostile_string(rng)), str(10**12 + rng.randint(0, 10**6))])
        return f'{{"request": {number}, "digest": {digest}}}'
    if roll < 0.6:
        depth = rng.choice([100, 1000, 5000])  # Python's recursion limit is 1000
        return "[" * depth + "]" * depth
    if roll < 0.8:
        return rng.choice(NUMBERS)
    return hostile_string(rng)


def command_form(rng: random.Random) -> dict[str, str]:
    n = rng.randint(1, 10**9)
    return {
        "token": "local-verification-token",
        "team_id": "T0LOCAL",
        "team_domain": "local",
        "channel_id": rng.choice([OPS, "C0ELSEWHERE"]),
        "channel_name": "migrations",
        "user_id": rng.choice(list(PEOPLE)),
        "user_name": "someone",
        "command": "/migrate",
        "text": hostile_text(rng),
        "api_app_id": "A0MIGRABOT",
        "is_enterprise_install": "false",
        "response_url": f"https://hooks.slack.invalid/commands/T0LOCAL/{n}/x",
        "trigger_id": f"{n}.{int(time.time())}.{rng.getrandbits(64):x}",
    }


FORM_FIELDS = [
    "user_id",
    "channel_id",
    "command",
    "trigger_id",
    "team_id",
    "enterprise_id",
    "is_enterprise_install",
    "response_url",
    "api_app_id",
]
EXTRA_FIELDS = [
    "authorizations",
    "enterprise",
    "team",
    "event",
    "user",
    "channel",
    "container",
    "actions",
    "type",
    "function_data",
    "bot_access_token",
    "response_urls",
]


def mutated_form(rng: random.Random) -> str:
    """A command with hostile text, and its form changed: fields hostile, missing, added, repeated."""
    form = command_form(rng)
    tail = ""
    for _ in range(rng.randint(1, 3)):
        roll = rng.random()
        if roll < 0.4:
            form[rng.choice(FORM_FIELDS)] = rng.choice(
                [hostile_string(rng), "/other", "U" + "A" * 40, "W0X", "D0DM", "G0OLD"]
            )
        elif roll < 0.55:
            form.pop(rng.choice(["user_id", "channel_id", "command", "trigger_id", "team_id"]), None)
        elif roll < 0.8:
            form[rng.choice(EXTRA_FIELDS)] = rng.choice([hostile_string(rng), "[1]", "{}", "5"])
        elif roll < 0.9:
            field = rng.choice(["user_id", "command", "text"])  # a repeated field: the last one counts
            tail += "&" + urlencode({field: hostile_text(rng) if field == "text" else hostile_string(rng)})
        else:
            form["payload"] = hostile_json(rng)
    return urlencode(form) + tail


def hostile_click(rng: random.Random) -> str:
    payload = click_payload(
        hostile_json(rng)
        if rng.random() < 0.7
        else json.dumps({"request": 10**12 + rng.randint(0, 10**6), "digest": "x"})
    )
    action = payload["actions"][0]
    action["action_id"] = rng.choice(
        ["approve", "deny", "approve", "deny", "APPROVE", "approve ", "approve\x00", "other", hostile_string(rng)]
    )
    payload["user"]["id"] = rng.choice(list(PEOPLE))  # (the stand-in refuses ephemerals to strangers)
    payload["container"]["message_ts"] = rng.choice(["", "1.1", "0000000000.000000", "9" * 40, hostile_string(rng)])
    raw: dict[str, str] = {}  # placeholders replaced by JSON text json.dumps cannot write (1e309, deep nesting)
    for _ in range(rng.randint(0, 3)):
        roll = rng.random()
        target = rng.choice(
            [
                "container",
                "channel",
                "user",
                "team",
                "actions",
                "type",
                "enterprise",
                "authorizations",
                "is_enterprise_install",
                "message",
                "state",
                "response_url",
                "trigger_id",
                "event",
                "function_data",
            ]
        )
        if roll < 0.3:
            payload[target] = rng.choice(
                [None, 5, "x", [], {}, [1], [{}], [{"action_id": 5}], True, hostile_string(rng)]
            )
        elif roll < 0.45:
            payload.pop(target, None)
        elif roll < 0.6:
            key = f"__raw{len(raw)}__"
            payload[target], raw[key] = key, hostile_json(rng)
        elif roll < 0.75:
            field = rng.choice(["value", "block_id", "type", "action_ts"])
            action[field] = rng.choice([None, 5, [], {"a": 1}, hostile_string(rng)])
        elif roll < 0.85:
            payload["actions"] = [action, dict(action, action_id=hostile_string(rng))]
        else:
            for inner in (payload.get("container"), payload.get("channel"), payload.get("user")):
                if isinstance(inner, dict):
                    inner[rng.choice(["id", "thread_ts", "message_ts", "channel_id", "name"])] = rng.choice(
                        [None, 5, [], hostile_string(rng)]
                    )
    text = json.dumps(payload)
    for key, value in raw.items():
        text = text.replace(json.dumps(key), value)
    roll = rng.random()
    if roll < 0.05:
        text = rng.choice(["{nope", "[1, 2]", "5", '"x"', "null", text[: len(text) // 2]])
    return urlencode({"payload": text})


def broken_door(rng: random.Random) -> tuple[bytes, dict[str, str]]:
    """A body from Slack's shapes that fails the door: authentication, headers or envelope."""
    body = (urlencode(command_form(rng)) if rng.random() < 0.5 else hostile_click(rng)).encode()
    now = int(time.time())
    ts = str(now)
    secret = SIGNING_SECRET
    roll = rng.random()
    if roll < 0.15:
        secret = "not-the-secret"
    elif roll < 0.3:
        ts = str(now + rng.choice([-1, 1]) * rng.randint(301, 10**9))
    headers = {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Request-Timestamp": ts}
    headers["X-Slack-Signature"] = SignatureVerifier(secret).generate_signature(timestamp=ts, body=body.decode()) or ""
    if roll >= 0.3:
        broken = rng.choice(["timestamp", "signature", "missing", "tampered"])
        if broken == "timestamp":
            headers["X-Slack-Request-Timestamp"] = rng.choice(
                [*DIGITS, "9" * 5000, "-5", ts + ".5", ts[:-1] + rng.choice("²١１"), hostile_string(rng)]
            )
        elif broken == "signature":
            signature = headers["X-Slack-Signature"]
            headers["X-Slack-Signature"] = rng.choice(
                [
                    signature.upper(),
                    signature[:-1],
                    signature + "0",
                    "v1=" + signature[3:],
                    signature[:-1] + "é",
                    "",
                    hostile_string(rng),
                ]
            )
        elif broken == "missing":
            headers.pop(rng.choice(["X-Slack-Signature", "X-Slack-Request-Timestamp"]))
        else:
            body = body.replace(b"U0", b"U9", 1) if b"U0" in body else body + b"&x=1"
    if rng.random() < 0.3:  # and something wrong with the envelope as well
        envelope = rng.choice(["length", "bytes", "json"])
        if envelope == "length":
            headers["Content-Length"] = rng.choice(
                ["+5", "٥", "-1", "1e3", " 5", str(10**13), str(MAX_BODY_BYTES + 1), "", str(len(body) // 2)]
            )
        elif envelope == "bytes":
            body += b"&text=\xff\xfe"
        else:
            headers["Content-Type"] = "application/json"
    return body, headers


def over_the_wire(value: str) -> str:
    """A header value as a WSGI server hands it on: the bytes sent, decoded as latin-1."""
    return value.encode("utf-8", "surrogatepass").decode("latin-1")


def signed(body: str) -> tuple[bytes, dict[str, str]]:
    ts = str(int(time.time()))
    signature = SIGNER.generate_signature(timestamp=ts, body=body) or ""
    return body.encode(), {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": ts,
        "X-Slack-Signature": signature,
    }


def call_wsgi(application: Callable[..., Iterable[bytes]], body: bytes, headers: dict[str, str]) -> int:
    """POST to the bot's WSGI app as a server would: an exception escaping it is a 500."""
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST",
        "PATH_INFO": EVENTS_PATH,
        "QUERY_STRING": "",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.input": io.BytesIO(body),
        "CONTENT_LENGTH": str(len(body)),
    }
    for name, value in headers.items():
        key = name.upper().replace("-", "_")
        environ[key if key in ("CONTENT_LENGTH", "CONTENT_TYPE") else f"HTTP_{key}"] = over_the_wire(value)
    statuses: list[str] = []
    try:
        b"".join(application(environ, lambda status, headers, exc_info=None: statuses.append(status)))
    except Exception:  # noqa: BLE001 - what a WSGI server does with it
        return 500
    return int(statuses[-1].split()[0])


AUDIT_PAGES = [
    "/",
    "/controlplane/request/",
    "/controlplane/auditevent/",
    "/controlplane/backup/",
    "/controlplane/environmentlock/",
    "/controlplane/approval/",
    "/controlplane/migrationfingerprint/",
]
# The admin's own parameters, the page's filters, and lookups that are not on the page.
AUDIT_QUERY = [
    "q", "p", "o", "e", "_to_field", "environment__exact", "state__exact", "requester__exact",
    "action__exact", "request", "created_at__year", "created_at__month", "created_at__day", "created_at__gte",
    "token__startswith", "detail__contains", "request__exact",
]  # fmt: skip


def audit_page_request(rng: random.Random) -> tuple[str, dict[str, str], bool]:
    """(path, query, whether the operator is signed in)."""
    number = rng.choice(["0", "1", str(2**63), "9" * 30, str(rng.randint(1, 10**6))])
    path = rng.choice(
        [
            *AUDIT_PAGES,
            f"/controlplane/request/{number}/change/",
            f"/controlplane/auditevent/{quote(hostile_string(rng), safe='')}/change/",
            f"/controlplane/{quote(hostile_string(rng), safe='')}/",
            f"/{quote(hostile_string(rng), safe='')}",
        ]
    )
    values = [*NUMBERS, "9999", "13", "none", "any", "2024-13-01"]
    query = {
        name: hostile_string(rng) if rng.random() < 0.7 else rng.choice(values)
        for name in rng.sample(AUDIT_QUERY, rng.randint(0, 3))
    }
    return path, query, rng.random() < 0.6


def audit_answer_is_wrong(path: str, query: dict[str, str], signed_in: bool, response: Any) -> object:
    """Why an answer of the audit site is wrong, or None. Signed in: a page, a redirect (Django's
    "wrong filter" or "no such record"), 400 or 404 — never 5xx. Signed out: the sign-in page,
    a redirect to it, or 400 for a query that is not plain text — never a page of records."""
    status = response.status_code
    if status not in ({200, 302, 400, 403, 404} if signed_in else {302, 400}):
        return (path, query, signed_in, status)
    if status == 302 and not signed_in and not response["Location"].startswith("/login/"):
        return ("not sent to sign in", path, response["Location"])
    if status == 200 and any("<" in value and value in response.content.decode() for value in query.values()):
        return ("unescaped", path, query)
    return None


def sign_in_request(rng: random.Random) -> dict[str, str]:
    return {"username": hostile_string(rng), "password": hostile_string(rng)}


# --- the fuzz ----------------------------------------------------------------------------------


@contextmanager
def another_connection() -> Iterator[None]:
    """The bot closes its database connection after each request (as it must, serving each on
    some thread). In process that is this thread's only connection, and the last connection to a
    SQLite WAL database to close checkpoints it: ~1 ms a request. A production control plane
    always has other connections open; so does this test, with one of its own."""
    if connection.vendor != "sqlite":
        yield
        return
    other = sqlite3.connect(connection.settings_dict["NAME"])
    try:
        other.execute("SELECT count(*) FROM sqlite_master").fetchone()  # opens the WAL index
        yield
    finally:
        other.close()


def audit_rows(kind: str, status: int) -> list[str] | None:
    """The audit rows an answer must come with (None: no right answer has this status)."""
    if kind == "door":
        return [] if 400 <= status < 500 else None
    if status == 200:
        return ["decision.refused" if kind == "click" else "command.refused"]
    return ["input.refused"] if kind != "command text" and status in (400, 404) else None


def test_fuzz_every_entry_point(
    inproc: InProcessBot, fault_report, capsys: pytest.CaptureFixture[str]
) -> None:
    rng = random.Random(SEED)
    application = slack_wsgi(inproc.bot.app)
    signed_out, operator = Client(raise_request_exception=False), Client(raise_request_exception=False)
    operator.force_login(User.objects.create_superuser(f"fuzz-{SEED}-{time.time_ns()}", None, None))
    kinds = {"command text": 0.3, "command form": 0.2, "click": 0.3, "door": 0.1, "audit page": 0.098, "sign-in": 0.002}
    tried: Counter[str] = Counter()
    crashed: Counter[str] = Counter()
    audited: Counter[str] = Counter()
    escaped: list[str] = []
    wrong: list[tuple[str, object]] = []
    first_request, last_event = inproc.newest_ids()

    def enqueued() -> int:
        """Tasks sent for requests made during the fuzz (the sweep may resend older tests' ones)."""
        return sum(1 for request_id, _ in inproc.enqueued if request_id > first_request)

    reached = 0
    started = time.monotonic()

    with inproc.watch() as spawned, another_connection():
        for kind in rng.choices(list(kinds), weights=list(kinds.values()), k=FUZZ_INPUTS):
            tried[kind] += 1
            if kind == "audit page":
                path, query, signed_in = audit_page_request(rng)
                response = (operator if signed_in else signed_out).get(path, query)
                crashed[kind] += response.status_code >= 500
                problem = audit_answer_is_wrong(path, query, signed_in, response)
                if problem is not None:
                    wrong.append((kind, problem))
                continue
            if kind == "sign-in":
                answer = signed_out.post("/login/?next=/", sign_in_request(rng))
                crashed[kind] += answer.status_code >= 500
                if answer.status_code != 200 or "_auth_user_id" in signed_out.session:
                    wrong.append((kind, answer.status_code))
                continue
            if kind == "door":
                body, headers = broken_door(rng)
            else:
                body, headers = signed(
                    {
                        "command text": lambda: urlencode(command_form(rng)),
                        "command form": lambda: mutated_form(rng),
                        "click": lambda: hostile_click(rng),
                    }[kind]()
                )
            status = call_wsgi(application, body, headers)
            crashed[kind] += status >= 500
            # (The housekeeper, acting as "system", may expire other tests' requests meanwhile.)
            events = list(
                AuditEvent.objects.filter(id__gt=last_event).exclude(actor="system").values_list("id", "action")
            )
            last_event = max([last_event, *(pk for pk, _ in events)])
            actions = [action for _, action in events]
            audited[kind] += bool(actions)
            if len(spawned) + enqueued() > reached:
                escaped.append(kind)
                reached = len(spawned) + enqueued()
            if actions != audit_rows(kind, status):
                wrong.append((kind, (status, actions, body[:300])))
    seconds = time.monotonic() - started
    escaped += ["request row"] * Request.objects.filter(id__gt=first_request).count()
    signed_inputs = sum(count for kind, count in tried.items() if kind in ("command text", "command form", "click"))
    with capsys.disabled():
        print(
            f"\nfuzz: {sum(tried.values())} hostile inputs in {seconds:.1f} s ({dict(tried)}); "
            f"5xx: {sum(crashed.values())}; "
            f"signed and audited: {sum(audited[k] for k in ('command text', 'command form', 'click'))} "
            f"of {signed_inputs}; "
            f"door rejections audited: {audited['door']} of {tried['door']}; "
            f"reached a request, queue or program: {len(escaped)}"
        )
    fault_report.tally(hostile=sum(tried.values()), crashes=sum(crashed.values()), escapes=len(escaped))
    assert sum(tried.values()) >= FUZZ_INPUTS
    assert wrong == [], "\n".join(map(repr, wrong[:10]))
    assert (sum(crashed.values()), escaped, enqueued()) == (0, [], 0)
