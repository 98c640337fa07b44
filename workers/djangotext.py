"""Render the probe's JSON as the exact text `manage.py` prints (uncoloured).

These are the inverse of the probe (migrabot_probe): golden tests compare their output
with the real CLI byte for byte, and the product uses them to show users "the
same text as manage.py". Strings follow Django 5.2's showmigrations.py and
migrate.py.
"""

from __future__ import annotations

from typing import Any

_LIST_MARKS = {"applied": "[X]", "unapplied": "[ ]", "unrecorded": "[-]"}


def plan_text(plan: dict[str, Any]) -> str:
    """`manage.py migrate --plan` output for a probe `plan` document."""
    lines = ["Planned operations:"]
    if not plan["steps"]:
        lines.append("  No planned migration operations.")
    for step in plan["steps"]:
        lines.append(f"{step['app']}.{step['name']}")
        lines.extend(f"    {op['description']}" for op in step["operations"])
    return "".join(line + "\n" for line in lines)


def showmigrations_text(doc: dict[str, Any]) -> str:
    """`manage.py showmigrations --list` output for a probe `showmigrations` document."""
    lines: list[str] = []
    for app in doc["apps"]:
        lines.append(app["app"])
        lines.extend(_list_line(migration) for migration in app["migrations"])
        if not app["migrations"]:
            lines.append(" (no migrations)")
    return "".join(line + "\n" for line in lines)


def _list_line(migration: dict[str, Any]) -> str:
    title = migration["name"]
    if migration["replaces"]:
        title += f" ({migration['replaces']} squashed migrations)"
    if migration["state"] == "unrecorded":
        title += " Run 'manage.py migrate' to finish recording."
    return f" {_LIST_MARKS[migration['state']]} {title}"
