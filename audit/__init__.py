"""The audit site: Django's admin over the control plane's records, read-only, for operators."""
