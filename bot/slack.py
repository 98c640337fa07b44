"""The Slack Web API client, from the environment: the token is a secret and never in a file."""

import os

from slack_sdk import WebClient


def web_client() -> WebClient:
    """``SLACK_API_URL`` points at the local stand-in in local mode and in tests."""
    return WebClient(
        token=os.environ.get("SLACK_BOT_TOKEN"),
        base_url=os.environ.get("SLACK_API_URL", WebClient.BASE_URL),
    )
