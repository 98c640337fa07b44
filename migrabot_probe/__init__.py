"""The migration probe: runs in the target project's own Python (stdlib + Django only)."""
