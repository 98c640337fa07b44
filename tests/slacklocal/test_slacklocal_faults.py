"""Slack having a bad day on demand: outages ("down", "error", "stall") and injected errors."""

from __future__ import annotations

import threading
import time

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from slacklocal import CLOSED, SlackWebAPI

CHANNEL = "C0MIGRATE"


def test_down_closes_the_connection_without_an_answer(api: SlackWebAPI, web: WebClient) -> None:
    with api.outage(mode="down"), pytest.raises(ConnectionError):  # http.client.RemoteDisconnected
        web.chat_postMessage(channel=CHANNEL, text="plan")

    # slack_sdk's default ConnectionErrorRetryHandler tried once more: two calls, both unanswered.
    assert [c.status for c in api.calls_to("chat.postMessage")] == [CLOSED, CLOSED]
    assert api.store.messages(CHANNEL) == []
    assert web.chat_postMessage(channel=CHANNEL, text="plan")["ok"]  # over when the block ends


def test_error_answers_500_internal_error(api: SlackWebAPI, web: WebClient) -> None:
    with api.outage(mode="error"), pytest.raises(SlackApiError) as err:
        web.chat_postMessage(channel=CHANNEL, text="plan")

    assert (err.value.response.status_code, err.value.response["error"]) == (500, "internal_error")
    assert [(c.status, c.answer["error"]) for c in api.calls] == [(500, "internal_error")]


def test_an_outage_ends_by_itself(api: SlackWebAPI, web: WebClient) -> None:
    outage = api.outage(seconds=0.3, mode="error")
    with pytest.raises(SlackApiError):
        web.auth_test()
    time.sleep(max(0.0, outage.ends_at - time.monotonic()))
    assert outage.over and web.auth_test()["ok"]


def test_an_outage_can_cover_some_methods_only(api: SlackWebAPI, web: WebClient) -> None:
    ts = web.chat_postMessage(channel=CHANNEL, text="card")["ts"]
    with api.outage(mode="error", methods={"chat.update"}):
        assert web.chat_postMessage(channel=CHANNEL, thread_ts=ts, text="reply")["ok"]
        with pytest.raises(SlackApiError):
            web.chat_update(channel=CHANNEL, ts=ts, text="new card")


def test_stall_holds_each_request_then_answers_it(api: SlackWebAPI) -> None:
    patient = WebClient(token=api.token, base_url=api.base_url, timeout=5)
    api.outage(seconds=0.5, mode="stall")
    started = time.monotonic()
    assert patient.chat_postMessage(channel=CHANNEL, text="slow")["ok"]
    assert time.monotonic() - started >= 0.4


def test_a_client_that_gave_up_on_a_stalled_post_may_still_have_posted(api: SlackWebAPI) -> None:
    impatient = WebClient(token=api.token, base_url=api.base_url, timeout=1)
    with api.outage(mode="stall") as outage:
        with pytest.raises(TimeoutError):
            impatient.chat_postMessage(channel=CHANNEL, text="did it post?")
        assert api.store.messages(CHANNEL) == []
        outage.end()  # Slack recovers and finishes the request nobody waits for any more
        (posted,) = api.store.wait_for(lambda: api.store.messages(CHANNEL), timeout=5)
    assert posted.text == "did it post?"


def test_fail_next_answers_the_next_calls_with_a_slack_error(api: SlackWebAPI, web: WebClient) -> None:
    api.fail_next("chat.postMessage", "channel_not_found", count=2)
    for _ in range(2):
        with pytest.raises(SlackApiError) as err:
            web.chat_postMessage(channel=CHANNEL, text="plan")
        assert err.value.response["error"] == "channel_not_found"
    assert web.chat_postMessage(channel=CHANNEL, text="plan")["ok"]
    assert web.auth_test()["ok"]  # other methods were never affected

    answers = [c.answer["ok"] for c in api.calls_to("chat.postMessage")]
    assert answers == [False, False, True]


def test_fail_next_ratelimited_is_a_429_with_retry_after(api: SlackWebAPI, web: WebClient) -> None:
    api.fail_next("chat.update", "ratelimited")
    with pytest.raises(SlackApiError) as err:
        web.chat_update(channel=CHANNEL, ts="1.000100", text="x")
    response = err.value.response
    assert (response.status_code, response.headers["Retry-After"], response["error"]) == (429, "1", "ratelimited")


def test_stop_releases_stalled_requests() -> None:
    api = SlackWebAPI("xoxb-t").start()
    api.outage(mode="stall")  # never ends by itself
    answers: list[bool] = []
    client = WebClient(token="xoxb-t", base_url=api.base_url, timeout=10)
    poster = threading.Thread(target=lambda: answers.append(client.chat_postMessage(channel=CHANNEL, text="x")["ok"]))
    poster.start()
    time.sleep(0.2)  # the request is being held
    started = time.monotonic()
    api.stop()
    poster.join(timeout=5)
    assert time.monotonic() - started < 2 and answers == [True]
