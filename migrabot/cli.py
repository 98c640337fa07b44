"""The one command: ``migrabot bot | worker | worker-ping | local | audit | admin | check-config``."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version

from migrabot.config import ConfigError, config_path, load_config


def installed_version() -> str:
    """The installed package's version (``migrabot --version``), as pip recorded it."""
    try:
        return version("migrabot")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="migrabot", description="Django migrations from Slack.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {installed_version()}")
    commands = parser.add_subparsers(dest="command", required=True)

    bot = commands.add_parser("bot", help="run the Slack bot (Socket Mode when SLACK_APP_TOKEN is set)")
    bot.add_argument("--bind", default=os.environ.get("MIGRABOT_BIND", "0.0.0.0:3000"))

    worker = commands.add_parser("worker", help="run a worker for one or more environments")
    worker.add_argument("--env", action="append", required=True, dest="envs", metavar="ENV")
    worker.add_argument("--concurrency", type=int, default=2)

    ping = commands.add_parser(
        "worker-ping",
        help="exit 0 if this host's worker for the environments answers a ping through the broker, 1 if not "
        "(a container's healthcheck: 'migrabot worker-ping --env staging')",
        description="Ping the worker that 'migrabot worker' with the same --env options runs on this host "
        "(Celery's inspect ping, by the worker's name migrabot-ENV[-ENV…]@HOSTNAME). Exit status 0 when it "
        "answers within --timeout seconds, 1 when it does not or the broker is unreachable.",
    )
    ping.add_argument("--env", action="append", required=True, dest="envs", metavar="ENV")
    ping.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the answer (default 5)")

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
    if options.command == "worker-ping":
        from workers.service import ping_worker

        return 0 if ping_worker(options.envs, timeout=options.timeout) else 1
    if options.command == "worker":
        from workers.service import run_worker

        return run_worker(config, envs=options.envs, concurrency=options.concurrency)
    from bot.service import run_bot

    return run_bot(config, bind=options.bind)


if __name__ == "__main__":
    sys.exit(main())
