"""Where a request's thread is in Slack: the permalink Slack gave for its card, else Slack's redirect.

The notifier asks Slack for the card's permalink (``chat.getPermalink``) once it is posted and
stores it on the request; until then, or where Slack never gave one, ``slack.com/app_redirect``
with the channel and the message's ts opens it in the workspace the viewer is signed in to (no
Slack call, so the audit site and the Home tab never need one).
"""

from __future__ import annotations

from urllib.parse import urlencode

from controlplane.models import Request

SLACK_REDIRECT = "https://slack.com/app_redirect"


def redirect_url(channel: str, ts: str) -> str:
    return f"{SLACK_REDIRECT}?{urlencode({'channel': channel, 'message_ts': ts})}"


def thread_url(request: Request) -> str | None:
    """The request's thread (else its plan message); None while nothing of it is posted."""
    if request.permalink:
        return request.permalink
    ts = request.thread_ts or request.plan_ts
    if not (request.channel and ts):
        return None
    return redirect_url(request.channel, ts)
