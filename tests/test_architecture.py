"""Every package and module of ours is in a layer of the import contract, so none escapes ``lint-imports``."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def _import_linter() -> dict[str, Any]:
    settings: dict[str, Any] = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["importlinter"]
    return settings


def test_every_package_and_every_module_of_migrabot_has_a_layer() -> None:
    settings = _import_linter()
    (layers,) = [contract["layers"] for contract in settings["contracts"] if contract["type"] == "layers"]
    named = {name.strip() for layer in layers for name in layer.replace("|", ":").split(":")}

    unlayered = [package for package in settings["root_packages"] if package not in named and package != "migrabot"]
    modules = [f"migrabot.{path.stem}" for path in (REPO / "migrabot").glob("*.py") if path.stem != "__init__"]
    missing = sorted(module for module in modules if module not in named)

    assert not unlayered, f"root packages in no layer of the import contract: {unlayered}"
    assert not missing, f"modules in no layer of the import contract: {missing}"
