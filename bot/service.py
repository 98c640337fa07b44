"""``migrabot bot``: Socket Mode when an app-level token is set (no public URL), HTTP otherwise."""

from __future__ import annotations

import os

from bot.app import build_app
from bot.server import serve_with_gunicorn, slack_wsgi
from bot.slack import web_client
from migrabot.broker import enqueue
from migrabot.config import Config, ConfigError


def run_bot(config: Config, *, bind: str) -> int:
    app_token = os.environ.get("SLACK_APP_TOKEN")
    signing_secret = os.environ.get("SLACK_SIGNING_SECRET")
    if not os.environ.get("SLACK_BOT_TOKEN"):
        raise ConfigError("SLACK_BOT_TOKEN is not set (the bot token, xoxb-…)")
    if not app_token and not signing_secret:
        raise ConfigError("set SLACK_SIGNING_SECRET for HTTP mode, or SLACK_APP_TOKEN for Socket Mode")
    bot = build_app(config=config, client=web_client(), signing_secret=signing_secret or "", enqueue=enqueue)
    if app_token:
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        bot.start()
        SocketModeHandler(bot.app, app_token).start()
    else:
        # Threads do not survive gunicorn's fork: the chores start in the worker that serves.
        serve_with_gunicorn(slack_wsgi(bot.app), bind=bind, post_fork=bot.start)
    return 0
