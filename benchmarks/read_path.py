"""Benchmark of the read path; prints its figures (run: .venv/bin/python benchmarks/read_path.py).

1. The ack path in process: signed slash commands dispatched straight into the Bolt app (parse,
   resolve, authorize, write the request row, ack). Goal: p99 under 100 ms.
2. ``showmigrations`` end to end — the command sent over HTTP until the result is posted in the
   thread — against running ``manage.py showmigrations --list`` directly on the same project and
   database. Goal: within 1.5 times. Uses Redis at MIGRABOT_BROKER_URL when set (the local mode's
   in-memory broker otherwise) and the local stack's worker.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

from migrabot.config import config_path, load_config
from migrabot.local import SIGNING_SECRET, local_stack


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def ack_path(bolt_dispatch: object, count: int) -> list[float]:
    from slack_bolt.request import BoltRequest
    from slack_sdk.signature import SignatureVerifier

    verifier = SignatureVerifier(SIGNING_SECRET)
    timings = []
    for n in range(count):
        body = urlencode(
            {
                "command": "/migrate",
                "text": "showmigrations dev accounts",
                "user_id": "U0ALICE",
                "channel_id": "C0BENCH",
                "trigger_id": f"bench-{time.time_ns()}-{n}",
                "team_id": "T0LOCAL",
            }
        )
        stamp = str(int(time.time()))
        headers = {
            "content-type": ["application/x-www-form-urlencoded"],
            "x-slack-request-timestamp": [stamp],
            "x-slack-signature": [verifier.generate_signature(timestamp=stamp, body=body)],
        }
        started = time.perf_counter()
        response = bolt_dispatch(BoltRequest(body=body, headers=headers))  # type: ignore[operator]
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status == 200, response.body
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--acks", type=int, default=500)
    parser.add_argument("--runs", type=int, default=15)
    options = parser.parse_args()
    config = load_config(config_path())
    with tempfile.TemporaryDirectory() as folder, local_stack(Path(folder), config) as local:
        from slack_sdk import WebClient

        from bot.app import build_app
        from migrabot.local import BOT_TOKEN
        from workers.target import Target

        chat = local.chat
        # The ack path alone: the same app, but its requests go nowhere (not to the local worker).
        client = WebClient(token=BOT_TOKEN, base_url=local.api.base_url)
        bot = build_app(config=config, client=client, signing_secret=SIGNING_SECRET, enqueue=lambda *a, **k: None)
        timings = ack_path(bot.app.dispatch, options.acks)
        bot.close()
        print(f"ack path, in process, {options.acks} commands: p50 {percentile(timings, .5):.2f} ms, "
              f"p99 {percentile(timings, .99):.2f} ms, max {max(timings):.2f} ms (goal: p99 < 100 ms)")

        target = Target(config.environments["dev"])
        direct, through_slack = [], []
        for _ in range(options.runs):
            started = time.perf_counter()
            target.manage("showmigrations", "--list")
            direct.append(time.perf_counter() - started)
            started = time.perf_counter()
            exchange = chat.say("showmigrations dev", user="U0ALICE")
            through_slack.append(time.perf_counter() - started)
            assert exchange.request is not None and exchange.request.state == "succeeded"
        ratio = statistics.median(through_slack) / statistics.median(direct)
        print(
            f"showmigrations, {options.runs} runs: "
            f"manage.py directly median {statistics.median(direct) * 1000:.0f} ms; "
            f"from Slack to result posted median {statistics.median(through_slack) * 1000:.0f} ms; "
            f"ratio {ratio:.2f} (goal: <= 1.5)"
        )


if __name__ == "__main__":
    main()
