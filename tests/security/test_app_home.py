"""The App Home tab over real HTTP with real signatures: Slack's ``app_home_opened`` event reaches
the in-process bot, which publishes the viewer's home through the stand-in's ``views.publish``.

What the viewer sees is what they may act on: requests awaiting an approval they may give (by the
rules a click is checked against: an approver there, not their own, not decided already), each
with a link to its thread; and each environment they may read, with its lock, last change and
open requests. Slack's 100 blocks are never exceeded: what does not fit is counted.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from inprocess import OPS, PEOPLE, InProcessBot

from controlplane import services
from controlplane.locks import lock_acquire, lock_release
from controlplane.models import TERMINAL_STATES, AuditEvent, HomeViewer, Request, State
from slacklocal import SlackWebAPI
from slackui.home import OPEN_THREAD


def open_home(inproc: InProcessBot, user: str) -> dict[str, Any]:
    store = inproc.api.store
    before = store.home(user)
    reply = inproc.sender.event("app_home_opened", user)
    assert reply.status == 200, reply
    view: dict[str, Any] = store.wait_for(lambda: (h := store.home(user)) is not before and h)
    assert view["type"] == "home" and len(view["blocks"]) <= 100
    return view


def texts(view: dict[str, Any]) -> list[str]:
    found = []
    for block in view["blocks"]:
        if "text" in block:
            found.append(block["text"]["text"])
        found += [element["text"] for element in block.get("elements", []) if "text" in element]
    return found


def thread_buttons(view: dict[str, Any]) -> dict[str, str]:
    """The request number each "Open thread" button is for -> its URL."""
    return {
        block["accessory"]["value"]: block["accessory"]["url"]
        for block in view["blocks"]
        if block.get("accessory", {}).get("type") == "button"
    }


@pytest.fixture
def clean(inproc: InProcessBot) -> Iterator[None]:
    """Whatever is still awaiting approval is cancelled after each test, so each sees its own."""
    yield
    for request in Request.objects.filter(state=State.AWAITING_APPROVAL):
        services.request_transition(
            request_id=request.pk,
            from_states=[State.AWAITING_APPROVAL],
            to=State.CANCELLED,
            actor="test",
            action="request.cancelled",
        )


def test_an_approver_sees_someone_elses_pending_request_with_its_thread(inproc: InProcessBot, clean: None) -> None:
    pk = inproc.pending("sec-open", requester="U0ALICE").pk
    # the notifier posts the request's card (its thread's parent) and stores its permalink in the background
    request = inproc.api.store.wait_for(lambda: (r := Request.objects.get(pk=pk)).permalink and r)
    view = open_home(inproc, "U0BOB")
    url = thread_buttons(view)[str(request.pk)]
    assert url == request.permalink == f"https://local.slack.com/archives/{OPS}/p{request.thread_ts.replace('.', '')}"
    line = next(text for text in texts(view) if f"#{request.pk}*" in text)
    assert "`sec-open`" in line and "<@U0ALICE>" in line
    # carol approves through the group S0DBAS: she sees it too
    assert str(request.pk) in thread_buttons(open_home(inproc, "U0CAROL"))


def test_a_thread_with_no_permalink_is_linked_through_slacks_redirect(inproc: InProcessBot, clean: None) -> None:
    request = inproc.pending("sec-open", requester="U0ALICE")
    inproc.api.store.wait_for(lambda: Request.objects.get(pk=request.pk).permalink)
    # As a request left before permalinks were stored, whose only message known is its plan's.
    Request.objects.filter(pk=request.pk).update(thread_ts="", permalink="")
    parts = urlsplit(thread_buttons(open_home(inproc, "U0BOB"))[str(request.pk)])
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://slack.com/app_redirect"
    assert parse_qs(parts.query) == {"channel": [OPS], "message_ts": [request.plan_ts]}


def test_nobody_sees_their_own_request_nor_one_they_may_not_approve(inproc: InProcessBot, clean: None) -> None:
    alices = inproc.pending("sec-open", requester="U0ALICE")
    bobs = inproc.pending("sec-open", requester="U0BOB")
    assert str(alices.pk) not in thread_buttons(open_home(inproc, "U0ALICE"))  # not an approver either
    seen_by_bob = thread_buttons(open_home(inproc, "U0BOB"))
    assert str(bobs.pk) not in seen_by_bob and str(alices.pk) in seen_by_bob
    assert thread_buttons(open_home(inproc, "U0MALLORY")) == {}
    expired = inproc.pending("sec-open", requester="U0ALICE", expired=True)
    assert str(expired.pk) not in thread_buttons(open_home(inproc, "U0BOB"))


def test_a_locked_environment_shows_its_holder_reason_and_open_requests(inproc: InProcessBot, clean: None) -> None:
    token, _ = lock_acquire(environment="sec-open", holder="user:U0DAVE", reason="freeze <!here> & deploy", ttl=None)
    assert token is not None
    try:
        inproc.pending("sec-open")
        view = open_home(inproc, "U0BOB")
        line = next(text for text in texts(view) if text.startswith("`sec-open`"))
        assert "🔒 locked by <@U0DAVE> since" in line
        assert "freeze &lt;!here&gt; &amp; deploy" in line  # the reason as typed, never a ping
        open_count = Request.objects.filter(environment="sec-open").exclude(state__in=TERMINAL_STATES).count()
        assert f"{open_count} open request" in line
        guarded = next(text for text in texts(view) if text.startswith("`sec-guarded`"))
        assert "· production" in guarded and "not locked" in guarded
    finally:
        lock_release(environment="sec-open", token=token, actor="test")
    # mallory may read sec-open (everyone may), not sec-guarded: it is not shown to her
    shown_to_mallory = texts(open_home(inproc, "U0MALLORY"))
    assert any(text.startswith("`sec-open`") for text in shown_to_mallory)
    assert not any(text.startswith("`sec-guarded`") for text in shown_to_mallory)


def test_an_open_home_is_re_published_when_a_lock_is_taken_and_released(inproc: InProcessBot, clean: None) -> None:
    """Through the running bot: who opened the tab is recorded, and the notifier's loop has their
    Home re-published (no one opens it again) for the environments they may read."""
    open_home(inproc, "U0DAVE")
    assert HomeViewer.objects.filter(pk="U0DAVE").exists()
    store = inproc.api.store

    def dave_sees(locked: bool) -> bool:
        line = next(text for text in texts(store.home("U0DAVE") or {"blocks": []}) if text.startswith("`sec-guarded`"))
        return ("🔒 locked by <@U0CAROL>" in line) is locked

    token, _ = lock_acquire(environment="sec-guarded", holder="user:U0CAROL", reason="audit week", ttl=None)
    assert token is not None
    try:
        store.wait_for(lambda: dave_sees(locked=True), timeout=20)
    finally:
        lock_release(environment="sec-guarded", token=token, actor="U0CAROL")
    store.wait_for(lambda: dave_sees(locked=False), timeout=20)


def test_more_pending_requests_than_a_home_holds_are_counted(inproc: InProcessBot, clean: None) -> None:
    made = [inproc.pending("sec-open", requester="U0ALICE").pk for _ in range(110)]
    view = open_home(inproc, "U0BOB")
    assert len(view["blocks"]) == 100
    shown = thread_buttons(view)
    waiting = Request.objects.filter(state=State.AWAITING_APPROVAL).exclude(requester="U0BOB").count()
    assert waiting >= len(made) and len(shown) < waiting
    assert f"({waiting})" in texts(view)[0]
    assert f"… and {waiting - len(shown)} requests more that do not fit here." in texts(view)


def test_the_stand_ins_views_publish_answers_as_slack_does() -> None:
    block = {"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}
    with SlackWebAPI("xoxb-t", users={"U0BOB": {"name": "bob"}}) as api:
        call = api.methods.call
        assert call("views.publish", {"view": {"type": "home", "blocks": [block]}})["error"] == "invalid_arguments"
        missing = call("views.publish", {"user_id": "U0NOBODY", "view": {"type": "home", "blocks": [block]}})
        assert missing["error"] == "user_not_found"
        modal = call("views.publish", {"user_id": "U0BOB", "view": {"type": "modal", "blocks": [block]}})
        assert modal["error"] == "invalid_arguments"
        too_many = call("views.publish", {"user_id": "U0BOB", "view": {"type": "home", "blocks": [block] * 101}})
        assert too_many["error"] == "invalid_arguments"
        assert api.store.home("U0BOB") is None
        assert call("views.publish", {"user_id": "U0BOB", "view": {"type": "home", "blocks": [block] * 100}})["ok"]
        assert api.store.home("U0BOB") == {"type": "home", "blocks": [block] * 100}



def home_click(inproc: InProcessBot, action_id: str, user: str = "U0BOB") -> int:
    """A click on the Home tab as Slack posts it: a view container and no channel."""
    payload = {
        "type": "block_actions",
        "user": {"id": user, "username": "bob", "name": "bob", "team_id": "T0LOCAL"},
        "api_app_id": "A0MIGRABOT",
        "token": "local-verification-token",
        "container": {"type": "view", "view_id": "V0HOME"},
        "trigger_id": "1.2.abc",
        "team": {"id": "T0LOCAL", "domain": "local"},
        "view": {"id": "V0HOME", "type": "home", "blocks": []},
        "actions": [{"type": "button", "action_id": action_id, "block_id": "b", "value": "1", "action_ts": "1.0"}],
    }
    return inproc.sender.post(urlencode({"payload": json.dumps(payload)})).status


def test_a_thread_link_clicked_on_the_home_tab_is_acked_and_nothing_else_is(inproc: InProcessBot) -> None:
    _, newest_event = inproc.newest_ids()
    assert home_click(inproc, f"{OPEN_THREAD}:12") == 200
    assert not AuditEvent.objects.filter(pk__gt=newest_event, action="input.refused").exists()
    assert home_click(inproc, "approve") == 400  # a decision always comes from its plan message in its channel
    assert home_click(inproc, f"{OPEN_THREAD}:x") == 400
    assert AuditEvent.objects.filter(pk__gt=newest_event, action="input.refused").count() == 2


def test_the_local_modes_chat_opens_the_home_tab(inproc: InProcessBot, clean: None) -> None:
    from migrabot.conversation import Chat
    from migrabot.transcript import perform

    request = inproc.pending("sec-open", requester="U0ALICE")
    chat = Chat(sender=inproc.sender, store=inproc.api.store, command="/migrate", names=PEOPLE, settle_seconds=5)
    shown = perform(chat, "as bob: open home", people={"bob": "U0BOB"})
    assert shown.startswith("━━ bob: open home\n")
    assert f"#{request.pk}" in shown and "@alice" in shown and "Open thread" in shown
    assert "Environments" in shown and "sec-open" in shown
