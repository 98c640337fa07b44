"""What a worker process needs once: its configuration and its name in the audit (never Slack)."""

from __future__ import annotations

import os
import socket
from functools import cache

from migrabot.config import Config, config_path, load_config


@cache
def config() -> Config:
    return load_config(config_path())


def worker_name() -> str:
    return f"worker:{socket.gethostname()}:{os.getpid()}"
