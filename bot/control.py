"""The verbs the bot answers from the control plane, without a worker: status, history, backups,
cancel, lock and unlock. Each returns what the requester sees; changes are audited by services."""

from __future__ import annotations

from dataclasses import dataclass

from controlplane.cancel import request_cancel
from controlplane.errors import Refusal
from controlplane.locks import lock_acquire, lock_current, lock_release
from controlplane.models import TERMINAL_STATES, Backup, Request
from controlplane.policy import GroupMembers, is_included
from migrabot import messages
from migrabot.config import Config

RECENT = 10


@dataclass(frozen=True)
class Answer:
    text: str  # for the requester only
    announce: str = ""  # for the channel, when the whole team should see it
    changed: Request | None = None  # a request whose thread must show the change


def answer(
    verb: str,
    *,
    config: Config,
    user: str,
    env: str | None,
    number: int | None,
    reason: str | None,
    members_of: GroupMembers,
) -> Answer:
    if verb == "history":
        assert env is not None
        rows = Request.objects.filter(environment=env).order_by("-id")[:RECENT]
        return Answer(messages.history(env, [_line(r) for r in rows]))
    if verb == "backups":
        assert env is not None
        backups = Backup.objects.filter(environment=env).order_by("-id")[:RECENT]
        lines = [messages.backup_summary(b.pk, b.created_at, b.size, b.sha256, b.verified) for b in backups]
        return Answer(messages.backups(env, lines))
    if verb == "status":
        return _status(config, user, number, members_of)
    if verb == "cancel":
        assert number is not None
        request = _visible_request(config, user, number, members_of)
        policy = config.environments[request.environment].policy
        if user != request.requester and not is_included(user, policy.requesters, members_of):
            raise Refusal(messages.not_allowed(user, "cancel", request.environment))
        cancelled = request_cancel(request=request, actor=user)
        return Answer(messages.cancelled(cancelled.pk), changed=cancelled)
    if verb == "lock":
        assert env is not None and reason is not None
        token, lock = lock_acquire(environment=env, holder=f"user:{user}", reason=reason, ttl=None)
        if token is None:
            raise Refusal(messages.locked(env, lock.holder, lock.reason, lock.acquired_at))
        return Answer(messages.lock_taken(env), announce=messages.lock_announced(env, user, reason))
    assert verb == "unlock" and env is not None
    held = lock_current(environment=env)
    if held is None:
        raise Refusal(messages.not_locked(env))
    if not held.holder.startswith("user:"):
        raise Refusal(messages.locked(env, held.holder, held.reason, held.acquired_at))
    lock_release(environment=env, token=held.token, actor=user)
    return Answer(messages.lock_lifted(env), announce=messages.unlock_announced(env, user))


def _status(config: Config, user: str, number: int | None, members_of: GroupMembers) -> Answer:
    if number is not None:
        return Answer(_line(_visible_request(config, user, number, members_of)))
    readable = [e.name for e in config.environments.values() if is_included(user, e.policy.readers, members_of)]
    open_requests = Request.objects.filter(environment__in=readable).exclude(state__in=TERMINAL_STATES).order_by("id")
    return Answer(messages.open_requests([_line(r) for r in open_requests[:RECENT]]))


def _visible_request(config: Config, user: str, number: int, members_of: GroupMembers) -> Request:
    """A request this person may see (a reader of its environment); the same answer otherwise."""
    request = Request.objects.filter(pk=number).first()
    environment = config.environments.get(request.environment) if request else None
    if request is None or environment is None or not is_included(user, environment.policy.readers, members_of):
        raise Refusal(messages.no_such_request(number))
    return request


def _line(request: Request) -> str:
    return messages.request_line(request.pk, request.command_text, request.state, request.requester, request.created_at)
