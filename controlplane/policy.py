"""Who may do what: an environment's policy, checked the same way everywhere, failing closed.

A principal is ``*`` (everyone), a Slack user id, or a user group id. Group membership comes from
a cache (``bot.directory``); a group whose members are unknown grants nothing, so a Slack outage
can only ever refuse, never allow.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from controlplane.errors import Refusal
from migrabot import messages
from migrabot.config import Environment

GroupMembers = Callable[[str], "frozenset[str] | None"]


def is_included(user: str, principals: Iterable[str], members_of: GroupMembers) -> bool:
    for principal in principals:
        if principal in ("*", user):
            return True
        if principal.startswith("S") and user in (members_of(principal) or ()):
            return True
    return False


def authorize(
    *, environment: Environment, user: str, channel: str, members_of: GroupMembers, verb: str, audience: str
) -> None:
    """Raise ``Refusal`` unless ``user`` is in the policy list named by ``audience``, here, in this channel."""
    policy = environment.policy
    if policy.channels and channel not in policy.channels:
        raise Refusal(messages.wrong_channel(environment.name, policy.channels))
    principals = {"readers": policy.readers, "requesters": policy.requesters}.get(audience, ["*"])
    if not is_included(user, principals, members_of):
        raise Refusal(messages.not_allowed(user, verb, environment.name))
