"""Security tests: see inprocess.py for the bot they talk to."""

from inprocess import inproc  # noqa: F401 - a fixture, found by name
