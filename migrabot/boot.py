"""One entry point that makes the control plane's ORM usable from the bot, a worker or a script."""

import os

import django


def setup_django() -> None:
    """Configure Django for the control plane once per process (idempotent)."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "migrabot.settings")
    django.setup()
