"""showmigrations and plan from Slack, end to end, against a SQLite and a PostgreSQL target.

What the thread shows must be what ``manage.py`` itself prints on the same project and database.
"""

from __future__ import annotations

import time

import pytest
from e2e_stack import Stack, manage

from controlplane.models import AuditEvent, Request
from migrabot.broker import enqueue


def attached_text(stack: Stack, request: Request) -> str:
    """The full listing the bot posted in the thread: inline code or the attached file."""
    for message in stack.api.store.replies(stack.chat.channel, request.thread_ts):
        if message.files:
            return message.files[0].content
        text = message.blocks[0]["text"]["text"] if message.blocks else ""
        if text.startswith("```"):
            return text.strip("`")
    raise AssertionError("no listing in the thread")


@pytest.mark.parametrize("env", ["lite", "pg"])
def test_showmigrations_matches_manage_py(stack: Stack, env: str) -> None:
    exchange = stack.chat.say(f"showmigrations {env}", user="U0ALICE")

    assert exchange.request is not None and exchange.request.state == "succeeded"
    assert f"Request #{exchange.request.pk} `showmigrations {env}` received" in exchange.ack
    assert "✅ done · requested by @alice" in exchange.thread
    assert attached_text(stack, exchange.request) == manage(stack, env, "showmigrations", "--list")


@pytest.mark.parametrize(
    ("env", "args"),
    [("lite", ["marketplace", "0006"]), ("lite", []), ("pg", ["accounts", "zero"]), ("pg", ["marketplace", "0002"])],
)
def test_plan_matches_manage_py(stack: Stack, env: str, args: list[str]) -> None:
    exchange = stack.chat.say(" ".join(["plan", env, *args]), user="U0ALICE")

    assert exchange.request is not None and exchange.request.state == "succeeded"
    expected = manage(stack, env, "migrate", "--plan", *exchange.request.args)
    assert attached_text(stack, exchange.request) == expected


def test_irreversible_step_is_flagged_in_the_plan(stack: Stack) -> None:
    exchange = stack.chat.say("plan pg marketplace 0004", user="U0ALICE")

    assert "↩️ unapply `marketplace.0005_backfill_order_totals` (1 operation) ⚠️ *irreversible*" in exchange.thread


def test_one_card_moves_forward_to_done(stack: Stack) -> None:
    """The card is posted once and updated in place, its state only ever moving forward. A warm
    read answers in milliseconds, so which states it shows on the way depends on how soon the
    notifier posts (once, then one update per card every MIGRABOT_MIN_UPDATE_SECONDS)."""
    exchange = stack.chat.say("showmigrations lite accounts", user="U0ALICE")
    assert exchange.request is not None

    card_calls = [
        call
        for call in stack.api.calls
        if call.method in ("chat.postMessage", "chat.update")
        and call.params.get("ts", call.answer.get("ts")) == exchange.request.thread_ts
    ]
    assert [call.method for call in card_calls][:1] == ["chat.postMessage"]
    assert all(call.method == "chat.update" for call in card_calls[1:])
    states = [call.params.get("text", "").split(" — ")[1].split(" ·")[0] for call in card_calls]
    order = ["⏳ queued", "🏃 running", "✅ done"]
    assert states[-1] == "✅ done"
    assert states == sorted(set(states), key=order.index), states


@pytest.mark.parametrize(
    ("text", "user", "expected"),
    [
        ("plan lite shop", "U0ALICE", "No app `shop` with migrations in `lite`. Valid apps:"),
        ("plan lite media 0001", "U0ALICE", "More than one migration matches `0001` in app `media`"),
        ("plan lite accounts 0009", "U0ALICE", "Cannot find a migration matching `0009` from app `accounts`"),
        ("plan nowhere", "U0ALICE", "Unknown environment `nowhere`. Valid environments: `lite`, `pg`."),
        ("showmigrations pg", "U0MALLORY", "<@U0MALLORY> is not allowed to run `showmigrations` on `pg`"),
        ("plan lite accounts 0001 extra", "U0ALICE", "Unexpected extra arguments `extra`"),
    ],
)
def test_bad_input_is_answered_privately_and_queues_nothing(stack: Stack, text: str, user: str, expected: str) -> None:
    requests_before = Request.objects.count()
    posts_before = len([c for c in stack.api.calls if c.method == "chat.postMessage"])

    exchange = stack.chat.say(text, user=user)

    assert expected in exchange.ack
    assert exchange.request is None
    assert Request.objects.count() == requests_before
    assert len([c for c in stack.api.calls if c.method == "chat.postMessage"]) == posts_before


def test_group_member_may_read(stack: Stack) -> None:
    exchange = stack.chat.say("showmigrations pg media", user="U0BOB")
    assert exchange.request is not None and exchange.request.state == "succeeded"


def test_a_task_delivered_twice_runs_once(stack: Stack) -> None:
    exchange = stack.chat.say("showmigrations lite", user="U0ALICE")
    assert exchange.request is not None
    replies_before = len(stack.api.store.replies(stack.chat.channel, exchange.request.thread_ts))

    enqueue(exchange.request.pk, queue="migrabot.lite")

    stack.wait_for_log(f"request.not_claimed request={exchange.request.pk}")  # the duplicate arrived
    runs = AuditEvent.objects.filter(request=exchange.request, action="request.running").count()
    assert runs == 1
    assert len(stack.api.store.replies(stack.chat.channel, exchange.request.thread_ts)) == replies_before


def test_forged_and_stale_requests_are_rejected(stack: Stack) -> None:
    requests_before = Request.objects.count()
    forged = stack.sender.slash_command("/migrate", "plan lite", "U0ALICE", "C0MIGRATIONS", signing_secret="wrong")
    stale = stack.sender.slash_command(
        "/migrate", "plan lite", "U0ALICE", "C0MIGRATIONS", timestamp=int(time.time()) - 301
    )
    assert (forged.status, stale.status) == (401, 401)
    assert Request.objects.count() == requests_before
