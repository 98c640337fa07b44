"""The control plane: requests, decisions, runs and the audit trail (the system of record)."""
