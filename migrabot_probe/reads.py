"""The read commands, as a one-shot call or a warm session answers them."""

from __future__ import annotations

import argparse
from typing import Any

from migrabot_probe.graphs import GRAPHS
from migrabot_probe.hygiene import check
from migrabot_probe.plans import plan
from migrabot_probe.protocol import READS
from migrabot_probe.state import catalog, connection_details, show_migrations


def answer(args: argparse.Namespace) -> dict[str, Any]:
    """One read. Each but ``connection`` also carries the catalog: the bot learns of new
    migration files from any read, not only when a worker starts."""
    if args.command not in READS:  # a session never runs a migration
        raise ValueError(f"{args.command} is not a read")
    GRAPHS.refresh()
    if args.command == "connection":
        return connection_details()
    if args.command == "catalog":
        return catalog()
    if args.command == "showmigrations":
        found = show_migrations(args.app_labels, args.fingerprints)
    elif args.command == "plan":
        found = plan(args.app_label, args.migration_name, args.fake)
    else:
        found = check()
    return found | {"catalog": catalog()["apps"]}
