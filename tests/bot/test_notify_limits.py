"""Slack's rate limits as the notifier meets them: one call at a time against a limit, and once a
post is refused, the other posts it covers wait out the same Retry-After instead of each being
refused by a call of its own; every card is still posted, in its turn."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from slack_sdk import WebClient

from bot.notify import Notifier, with_retries
from controlplane import services
from controlplane.models import Post
from migrabot.config import Config, load_config
from slacklocal import Limit, SlackWebAPI

EXAMPLE_PROJECT = Path(__file__).resolve().parents[2] / "example" / "backend"
TOKEN = "xoxb-limits"


@pytest.fixture
def config(tmp_path: Path) -> Config:
    env = f"rl{uuid.uuid4().hex[:8]}"
    (tmp_path / "migrabot.toml").write_text(
        f'[environments.{env}]\nproject = "{EXAMPLE_PROJECT}"\nsettings = "backend.settings"\n'
    )
    return load_config(tmp_path / "migrabot.toml")


@pytest.fixture
def api() -> Iterator[SlackWebAPI]:
    # Slack's "1 message per second per channel", with a burst of 2.
    with SlackWebAPI(TOKEN, rate_limits={"chat.postMessage": Limit(1, 1.0, burst=2, per_channel=True)}) as server:
        yield server


def _cards(config: Config, channel: str, count: int) -> list[int]:
    (env,) = config.environments
    return [
        services.request_create(
            verb="showmigrations", environment=env, args=[], requester="U0ALICE", channel=channel, trigger_id=None
        )[0].pk
        for _ in range(count)
    ]


def _passes(notifier: Notifier, seconds: float) -> None:
    """The notifier's passes as its loop makes them when woken again and again (a burst of commands)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        notifier.reconcile()
        time.sleep(0.05)


def test_a_burst_in_one_channel_costs_few_refused_calls_and_posts_every_card(api: SlackWebAPI, config: Config) -> None:
    notifier = Notifier(with_retries(WebClient(token=TOKEN, base_url=api.base_url)), config)
    burst = _cards(config, "C0BURST", 20)
    _passes(notifier, 3.0)
    posts = api.calls_to("chat.postMessage")
    refused = [call for call in posts if call.status == 429]
    shown = [call for call in posts if call.status == 200]
    assert len(shown) >= 4  # the burst, then one a second
    # Each refusal holds the channel: about one refused call for each one posted, not one per card a pass.
    # One call at a time meets the limit and holds the rest: one refusal for each post after the burst
    # (before: two refused calls a card a pass, 29 refused for 9 shown).
    assert len(refused) <= len(shown), (len(refused), len(shown))

    api.set_rate_limits(False)
    _passes(notifier, 0.5)
    assert not Post.objects.filter(request_id__in=burst, ts="").exists()  # every card, once the limit lifts
    assert len({call.answer["ts"] for call in api.calls_to("chat.postMessage") if call.status == 200}) == 20


def test_a_limit_met_in_one_channel_holds_no_other(api: SlackWebAPI, config: Config) -> None:
    notifier = Notifier(with_retries(WebClient(token=TOKEN, base_url=api.base_url)), config)
    _cards(config, "C0BUSY", 8)
    _passes(notifier, 0.3)  # C0BUSY is over its limit now
    quiet = _cards(config, "C0QUIET", 2)
    _passes(notifier, 0.3)
    assert not Post.objects.filter(request_id__in=quiet, ts="").exists()


def test_cards_recorded_while_their_channel_is_held_are_not_even_read_until_it_ends(
    api: SlackWebAPI, config: Config
) -> None:
    notifier = Notifier(with_retries(WebClient(token=TOKEN, base_url=api.base_url)), config)
    _cards(config, "C0HELD", 4)
    notifier.reconcile()  # two posted, then one refused: C0HELD is held for a second
    assert [call.status for call in api.calls_to("chat.postMessage")].count(429) == 1
    later = _cards(config, "C0HELD", 10)
    calls = len(api.calls)
    notifier.reconcile()
    assert len(api.calls) == calls
    # Not read: a pass that read them would have put them on the hold's schedule (``retry_at``).
    assert not Post.objects.filter(request_id__in=later, retry_at__isnull=False).exists()
    api.set_rate_limits(False)
    time.sleep(1.2)  # the hold is over
    _passes(notifier, 0.5)
    assert not Post.objects.filter(request_id__in=later, ts="").exists()  # read and posted in their turn
