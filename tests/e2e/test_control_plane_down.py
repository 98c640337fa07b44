"""The bot's own database unreachable, with the real ``migrabot bot`` in HTTP mode (gunicorn).

The process starts with ``DATABASE_URL`` pointing at a closed port and talks to the local Slack
stand-in. A signed command gets the clear answer at once ("cannot reach its database"), nothing
is posted to Slack or sent to a queue, and the database password never shows in its output. A
refusal is still answered (its audit record can only be logged), and a forged request is still
rejected. This is also the test that HTTP mode serves real signed requests.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from e2e_stack import EXAMPLE_PROJECT
from services import free_port, wait_until

from slacklocal import SignedSender, SlackWebAPI

TOKEN, SECRET, DB_PASSWORD = "xoxb-down-token", "down-signing-secret", "cp-Passw0rd-down"
CONFIG = f"""
[environments.lite]
project = "{EXAMPLE_PROJECT}"
settings = "backend.settings"
[environments.lite.policy]
readers = ["*"]
requesters = ["*"]
approvers = ["U0BOB"]
"""


def accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def test_database_down_gets_a_clear_answer_and_nothing_half_done(tmp_path: Path) -> None:
    (tmp_path / "migrabot.toml").write_text(CONFIG)
    port, closed = free_port(), free_port()
    with SlackWebAPI(TOKEN, users={"U0ALICE": {"name": "alice"}}) as api:
        env = {k: v for k, v in os.environ.items() if k != "SLACK_APP_TOKEN"} | {
            "DATABASE_URL": f"postgresql://migrabot:{DB_PASSWORD}@127.0.0.1:{closed}/controlplane",
            "MIGRABOT_BROKER_URL": f"redis://127.0.0.1:{closed}/0",
            "MIGRABOT_CONFIG": str(tmp_path / "migrabot.toml"),
            "SLACK_API_URL": api.base_url,
            "SLACK_BOT_TOKEN": TOKEN,
            "SLACK_SIGNING_SECRET": SECRET,
        }
        bot = subprocess.Popen(
            [sys.executable, "-m", "migrabot.cli", "bot", "--bind", f"127.0.0.1:{port}"],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        try:
            wait_until(lambda: accepts(port) or bot.poll() is not None, "the bot's HTTP port")
            sender = SignedSender(f"http://127.0.0.1:{port}/slack/events", SECRET)
            down = sender.slash_command("/migrate", "showmigrations lite", "U0ALICE", "C0MIGRATIONS")
            refused = sender.slash_command("/migrate", "rollbak lite", "U0ALICE", "C0MIGRATIONS")
            forged = sender.slash_command(
                "/migrate", "showmigrations lite", "U0ALICE", "C0MIGRATIONS", signing_secret="guess"
            )
        finally:
            bot.terminate()
            output, _ = bot.communicate(timeout=30)
        posted = [call.method for call in api.calls if call.method != "auth.test"]
    assert down == (
        200,
        "The bot cannot reach its database right now, so nothing was recorded or queued. Try again shortly.",
    ), output
    assert refused.status == 200 and str(refused.body).startswith("Unknown command `rollbak`")
    assert forged.status == 401
    assert posted == [], "no card, no thread, no ephemeral"
    assert "command.control_plane_unreachable" in output and "audit.unavailable action=command.refused" in output
    assert "queue_unreachable" not in output, "nothing was sent towards a queue"
    assert DB_PASSWORD not in output
