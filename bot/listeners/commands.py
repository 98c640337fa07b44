"""The slash command: parse, resolve, authorize, record, ack — nothing slow before the ack."""

from __future__ import annotations

import logging
from typing import Any

from django.db import DatabaseError
from slack_bolt import Ack, App

from bot.directory import Directory
from bot.followup import FollowUp
from bot.grammar import VERBS, Command, Kind, parse
from bot.resolve import resolve
from controlplane import selectors, services
from controlplane.errors import Refusal
from controlplane.policy import authorize_read
from migrabot import messages
from migrabot.config import Config

log = logging.getLogger(__name__)


def register(app: App, *, config: Config, directory: Directory, followup: FollowUp) -> None:
    @app.command(config.slash_command)
    def on_command(ack: Ack, body: dict[str, Any]) -> None:
        user, channel = body["user_id"], body["channel_id"]
        try:
            command = resolve(
                parse(body.get("text", "")),
                config=config,
                catalog_of=lambda env: selectors.catalog_get(environment=env),
            )
            if command.verb.kind is Kind.INFO:
                ack(_answer(command, config))
                return
            assert command.env is not None
            authorize_read(
                environment=config.environments[command.env],
                user=user,
                channel=channel,
                members_of=directory.members_of,
                verb=command.verb.name,
            )
            request, created = services.request_create(
                verb=command.verb.name,
                environment=command.env,
                args=command.args,
                requester=user,
                channel=channel,
                trigger_id=body.get("trigger_id"),
            )
        except Refusal as refusal:
            log.info("command.refused user=%s reason=%s", user, refusal)
            ack(str(refusal))
            return
        except DatabaseError:
            log.exception("command.control_plane_unreachable user=%s", user)
            ack(messages.control_plane_down())
            return
        if not created:
            ack(messages.duplicate_delivery(request.pk))
            return
        ack(messages.received(request.pk, request.command_text))
        followup.submit(request.pk)


def _answer(command: Command, config: Config) -> str:
    """The verbs the bot answers itself, without a worker."""
    if command.verb.name == "envs":
        return messages.environments_text(
            (env.name, env.description, env.production, ", ".join(env.policy.readers) or "nobody")
            for env in config.environments.values()
        )
    return messages.help_text(config.slash_command, ((verb.usage, verb.summary) for verb in VERBS.values()))
