"""The slash command: parse, resolve, authorize, record, ack — nothing slow before the ack."""

from __future__ import annotations

import logging
from typing import Any

from django.db import DatabaseError
from slack_bolt import Ack, App

from bot import control
from bot.catalogs import Catalogs
from bot.directory import Directory
from bot.followup import FollowUp
from bot.grammar import VERBS, Audience, Command, Kind, parse
from bot.intake import Intake
from bot.refusals import audit_refusal
from bot.resolve import resolve
from controlplane import services
from controlplane.errors import Refusal
from controlplane.locks import lock_current
from controlplane.policy import authorize
from migrabot import messages
from migrabot.config import Config
from migrabot.logs import log_bind, log_context

log = logging.getLogger(__name__)


def register(app: App, *, config: Config, directory: Directory, followup: FollowUp) -> None:
    catalogs, intake = Catalogs(), Intake()

    @app.command(config.slash_command)
    @log_context()  # its lines name the environment, verb and request once they are known
    def on_command(ack: Ack, body: dict[str, Any]) -> None:
        user, channel = body["user_id"], body["channel_id"]
        environment = ""  # known once the command resolves, so its refusals can be found by it
        try:
            command = _resolve(parse(body.get("text", "")), config, catalogs)
            environment = command.env or ""
            log_bind(environment=environment, verb=command.verb.name)
            if command.env is not None and command.verb.audience is not Audience.ANYONE:
                authorize(
                    environment=config.environments[command.env],
                    user=user,
                    channel=channel,
                    members_of=directory.members_of,
                    verb=command.verb.name,
                    audience=command.verb.audience.value,
                )
            if command.verb.kind is Kind.WRITE and command.env is not None:
                _refuse_if_locked(command.env)
            if command.verb.kind is Kind.INFO:
                ack(_about(command, config))
            elif command.verb.kind is Kind.CONTROL:
                ack(_control(command, config, user, channel, directory, followup))
            else:
                ack(_queue(command, body, intake, followup))
        except Refusal as refusal:
            log.info("command.refused user=%s reason=%s", user, refusal)
            ack(str(refusal))
            audit_refusal(
                actor=user, action="command.refused", reason=str(refusal), environment=environment, channel=channel
            )
        except DatabaseError:
            log.exception("command.control_plane_unreachable user=%s", user)
            ack(messages.control_plane_down())


def _resolve(parsed: Command, config: Config, catalogs: Catalogs) -> Command:
    """Resolved against the cached catalog; what that refuses, against the control plane's now. A
    migration named (a prefix, or a full name that may be one since a deploy: Django calls it
    ambiguous then) is always resolved against the control plane's catalog now."""
    if parsed.migration not in (None, "zero"):
        return resolve(parsed, config=config, catalog_of=catalogs.fresh)
    try:
        return resolve(parsed, config=config, catalog_of=catalogs.cached)
    except Refusal:
        return resolve(parsed, config=config, catalog_of=catalogs.fresh)


def _queue(command: Command, body: dict[str, Any], intake: Intake, followup: FollowUp) -> str:
    """Record a request (and its card, which the notifier posts) and queue it after the ack."""
    assert command.env is not None
    request, created = intake.record(
        services.NewRequest(
            verb=command.verb.name,
            environment=command.env,
            args=command.args,
            requester=body["user_id"],
            channel=body["channel_id"],
            trigger_id=body.get("trigger_id"),
            response_url=_slack_url(body.get("response_url", "")),
        )
    )
    log_bind(request_id=request.pk)
    if not created:
        return messages.duplicate_delivery(request.pk)
    followup.start(request)
    return messages.received(request.pk, request.command_text)


def _refuse_if_locked(environment: str) -> None:
    """A write on an environment someone locked with ``lock`` is refused when it is asked for:
    nothing is planned, nobody is asked to approve. The lock a *run* holds is met at run time: an
    approved write that finds another write running there is refused, and says so (never queued
    behind it: its plan would no longer be the one approved)."""
    lock = lock_current(environment=environment)
    if lock is not None and lock.holder.startswith("user:"):
        raise Refusal(messages.locked(environment, lock.holder, lock.reason, lock.acquired_at))


def _slack_url(url: str) -> str:
    """The command's response_url, kept only if it can be one (an https URL; http on loopback)."""
    return url if url.startswith(("https://", "http://127.0.0.1:", "http://localhost:")) and len(url) <= 500 else ""


def _control(
    command: Command, config: Config, user: str, channel: str, directory: Directory, followup: FollowUp
) -> str:
    result = control.answer(
        command.verb.name,
        config=config,
        user=user,
        env=command.env,
        number=command.number,
        reason=command.reason,
        members_of=directory.members_of,
    )
    if result.announce:
        followup.submit(followup.announce, channel=channel, text=result.announce)
    if result.changed is not None:
        followup.submit(followup.show_outcome, result.changed, user)
    return result.text


def _about(command: Command, config: Config) -> str:
    """The verbs the bot answers from its configuration."""
    if command.verb.name == "envs":
        rows, details = [], []
        for env in config.environments.values():
            lock = lock_current(environment=env.name)
            held = (lock.holder, lock.reason, lock.acquired_at) if lock else None
            rows.append((env.name, env.description, env.production, ", ".join(env.policy.readers) or "nobody"))
            details.append(messages.environment_details(env.policy.approvers, env.policy.approvals, held))
        return messages.environments_text(rows, details)
    return messages.help_text(config.slash_command, ((verb.usage, verb.summary) for verb in VERBS.values()))
