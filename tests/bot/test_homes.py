"""Homes kept current: when a request awaits approval, is decided or ends, or a lock is taken or
released, the Home of each recent viewer it concerns is re-published — coalesced, at most once per
interval per viewer, and a failed publish tried again without touching any request."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from slack_sdk import WebClient

from bot.directory import Directory
from bot.homes import HomeRefresher
from controlplane import services
from controlplane.locks import lock_acquire, lock_release
from controlplane.models import HomeViewer, Request, State
from migrabot.config import load_config
from slacklocal import SlackWebAPI

EXAMPLE_PROJECT = Path(__file__).resolve().parents[2] / "example" / "backend"
TOKEN = "xoxb-homes"


def someone() -> str:
    return f"U0{uuid.uuid4().hex[:10].upper()}"


@dataclass
class Setting:
    api: SlackWebAPI
    homes: HomeRefresher
    env: str
    reader: str
    approver: str
    outsider: str  # opened the tab, but may neither read nor approve ``env``
    gone: str  # may read ``env``, but opened the tab long ago

    def published(self, viewer: str) -> int:
        return sum(1 for call in self.api.calls_to("views.publish") if call.params.get("user_id") == viewer)


@pytest.fixture
def setting(tmp_path: Path) -> Iterator[Setting]:
    env, reader, approver, outsider, gone = f"hm{uuid.uuid4().hex[:8]}", someone(), someone(), someone(), someone()
    (tmp_path / "migrabot.toml").write_text(
        f'[environments.{env}]\nproject = "{EXAMPLE_PROJECT}"\nsettings = "backend.settings"\n'
        f'[environments.{env}.policy]\nreaders = ["{reader}", "{gone}"]\nrequesters = ["*"]\n'
        f'approvers = ["{approver}"]\n'
    )
    config = load_config(tmp_path / "migrabot.toml")
    users = {user: {"name": user.lower()} for user in (reader, approver, outsider, gone)}
    with SlackWebAPI(TOKEN, users=users) as api:
        client = WebClient(token=TOKEN, base_url=api.base_url)
        homes = HomeRefresher(client, config=config, directory=Directory(client, groups=set()))
        homes.min_seconds = 0.5
        for viewer in (reader, approver, outsider, gone):
            services.home_opened(user=viewer)
        HomeViewer.objects.filter(pk=gone).update(opened_at=timezone.now() - timedelta(days=8))
        homes.refresh()  # the first look: what came before is not news
        yield Setting(api, homes, env, reader, approver, outsider, gone)


def awaiting_approval(env: str) -> Request:
    request, _ = services.request_create(
        verb="rollback", environment=env, args=["media", "0002"], requester=someone(), channel="C0H", trigger_id=None
    )
    for frm, to in ((State.RECEIVED, State.PLANNING), (State.PLANNING, State.AWAITING_APPROVAL)):
        fields = {"plan": {"steps": []}, "plan_digest": "d", "approvals_required": 1,
                  "expires_at": timezone.now() + timedelta(hours=1)}  # fmt: skip
        services.request_transition(request_id=request.pk, from_states=[frm], to=to, actor="test",
                                    action=f"request.{to}", fields=fields)  # fmt: skip
    return Request.objects.get(pk=request.pk)


def test_a_lock_re_publishes_the_homes_of_the_recent_viewers_it_concerns(setting: Setting) -> None:
    token, _ = lock_acquire(environment=setting.env, holder="user:U0DAVE", reason="freeze", ttl=None)
    assert token is not None
    assert setting.homes.refresh() == 2
    assert (setting.published(setting.reader), setting.published(setting.approver)) == (1, 1)
    assert setting.published(setting.outsider) == setting.published(setting.gone) == 0
    home = setting.api.store.home(setting.reader)
    assert home is not None and "🔒 locked by <@U0DAVE>" in str(home["blocks"])
    assert setting.homes.refresh() == 0  # nothing new
    lock_release(environment=setting.env, token=token, actor="U0DAVE")
    time.sleep(0.6)
    assert setting.homes.refresh() == 2  # released


def test_a_burst_of_changes_is_one_publish_per_viewer_within_the_interval(setting: Setting) -> None:
    pending = awaiting_approval(setting.env)
    setting.homes.refresh()
    assert setting.published(setting.approver) == 1
    assert f"#{pending.pk}" in str(setting.api.store.home(setting.approver))
    burst = [awaiting_approval(setting.env) for _ in range(5)]
    assert setting.homes.refresh() == 0  # within the interval: due, not yet published
    time.sleep(0.6)
    assert setting.homes.refresh() == 2  # reader and approver, once each, for all five
    assert setting.published(setting.approver) == 2
    assert all(f"#{request.pk}" in str(setting.api.store.home(setting.approver)) for request in burst)


def test_a_failed_publish_is_tried_again_and_touches_no_request(setting: Setting) -> None:
    setting.api.fail_next("views.publish", "internal_error", count=2)
    request = awaiting_approval(setting.env)
    assert setting.homes.refresh() == 0  # both failed
    assert Request.objects.get(pk=request.pk).state == State.AWAITING_APPROVAL
    deadline = time.monotonic() + 10
    while setting.published(setting.reader) + setting.published(setting.approver) < 4:  # 2 failed, 2 shown
        assert time.monotonic() < deadline, "not tried again in time"
        setting.homes.refresh()
        time.sleep(0.1)
    assert f"#{request.pk}" in str(setting.api.store.home(setting.approver))
    assert Request.objects.get(pk=request.pk).state == State.AWAITING_APPROVAL


def test_a_publish_slack_refuses_for_good_is_not_asked_again_until_the_next_change(setting: Setting) -> None:
    """``not_enabled`` (the app has no Home tab) does not pass with time: retrying it forever would
    spend the rate limit for nothing."""
    setting.api.fail_next("views.publish", "not_enabled", count=2)
    awaiting_approval(setting.env)
    assert setting.homes.refresh() == 0  # both refused
    calls = setting.published(setting.reader) + setting.published(setting.approver)
    time.sleep(1.2)  # past the first backoff
    assert setting.homes.refresh() == 0
    assert setting.published(setting.reader) + setting.published(setting.approver) == calls, "asked again"
    time.sleep(0.6)
    awaiting_approval(setting.env)  # a change: asked again, and shown
    assert setting.homes.refresh() == 2


def test_an_event_that_commits_after_a_newer_one_was_read_is_not_missed(setting: Setting) -> None:
    """On PostgreSQL an id is handed out at insert, not at commit: a lock taken in a transaction that
    commits late shows up below an id already read. Made here by giving the late one the lower id."""
    from controlplane.models import AuditEvent

    newest = AuditEvent.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
    def recorded(pk: int, action: str) -> None:  # with its id given: save() takes only new rows
        AuditEvent.objects.bulk_create([AuditEvent(pk=pk, environment=setting.env, actor="U0DAVE", action=action)])

    recorded(newest + 10, "lock.acquired")
    assert setting.homes.refresh() == 2
    time.sleep(0.6)
    assert setting.homes.refresh() == 0  # seen: not news twice
    recorded(newest + 5, "lock.released")
    assert setting.homes.refresh() == 2, "the late event was missed"
