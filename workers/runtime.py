"""What a worker process needs once: its configuration, its Slack notifier, its name in the audit."""

from __future__ import annotations

import os
import socket
from functools import cache

from bot.notify import Notifier
from migrabot.config import Config, config_path, load_config
from migrabot.slack import web_client


@cache
def config() -> Config:
    return load_config(config_path())


@cache
def notifier() -> Notifier:
    return Notifier(web_client(), config().slash_command)


def worker_name() -> str:
    return f"worker:{socket.gethostname()}:{os.getpid()}"
