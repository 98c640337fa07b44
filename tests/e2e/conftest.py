"""End-to-end fixtures: see e2e_stack.py for what the stack is made of."""

from e2e_stack import stack  # noqa: F401 - a fixture, found by name
