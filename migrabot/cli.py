"""The one command: ``migrabot bot | worker | local | audit | admin | check-config``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from migrabot.config import ConfigError, config_path, load_config


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="migrabot", description="Django migrations from Slack.")
    commands = parser.add_subparsers(dest="command", required=True)

    bot = commands.add_parser("bot", help="run the Slack bot (Socket Mode when SLACK_APP_TOKEN is set)")
    bot.add_argument("--bind", default=os.environ.get("MIGRABOT_BIND", "0.0.0.0:3000"))

    worker = commands.add_parser("worker", help="run a worker for one or more environments")
    worker.add_argument("--env", action="append", required=True, dest="envs", metavar="ENV")
    worker.add_argument("--concurrency", type=int, default=2)

    local = commands.add_parser("local", help="the whole flow locally: no Slack, no servers")
    local.add_argument("--script", help="a file of lines like 'as U1: /migrate plan dev' ('-' for stdin)")
    local.add_argument("--workdir", help="keep the local databases here (default: a temporary folder)")

    audit = commands.add_parser(
        "audit", help="serve the audit trail (Django's admin, read-only; users from 'migrabot admin createsuperuser')"
    )
    audit.add_argument("--bind", default=os.environ.get("MIGRABOT_AUDIT_BIND", "127.0.0.1:8080"))

    commands.add_parser("check-config", help="validate the configuration file and list environments")
    admin = commands.add_parser(
        "admin",
        help="any django-admin command against the control plane, e.g. 'migrabot admin migrate', "
        "'migrabot admin createsuperuser' (who signs in to the audit)",
    )
    admin.add_argument("args", nargs=argparse.REMAINDER)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    options = build_parser().parse_args(argv)
    try:
        return _run(options)
    except ConfigError as error:
        print(f"migrabot: {error}", file=sys.stderr)
        return 2


def _run(options: argparse.Namespace) -> int:
    if options.command == "local":
        from migrabot.local import run_local

        return run_local(script=options.script, workdir=options.workdir)
    config = load_config(config_path())
    if options.command == "check-config":
        for environment in config.environments.values():
            print(f"{environment.name}: {environment.project} queue={environment.celery_queue}")
        return 0

    from migrabot.boot import setup_django

    setup_django()
    if options.command == "admin":
        from django.core.management import execute_from_command_line

        execute_from_command_line(["migrabot admin", *options.args])
        return 0
    if options.command == "audit":
        from bot.server import serve_with_gunicorn
        from migrabot.wsgi import application

        serve_with_gunicorn(application, bind=options.bind, workers=2, threads=4)
        return 0
    if options.command == "worker":
        from workers.service import run_worker

        return run_worker(config, envs=options.envs, concurrency=options.concurrency)
    from bot.service import run_bot

    return run_bot(config, bind=options.bind)


if __name__ == "__main__":
    sys.exit(main())
