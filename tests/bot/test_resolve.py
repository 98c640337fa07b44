"""Resolving commands against the configured environments and the reported catalog."""

from pathlib import Path

import pytest

from bot.grammar import parse
from bot.resolve import resolve
from controlplane.errors import Refusal
from migrabot.config import Config, Environment

CATALOG = {
    "accounts": ["0001_initial", "0002_profile", "0003_backfill"],
    "media": ["0001_initial", "0001_squashed_0002_image", "0002_image"],
}


@pytest.fixture
def config(tmp_path: Path) -> Config:
    (tmp_path / "manage.py").write_text("")
    environment = Environment(name="dev", project=tmp_path, settings="backend.settings")
    return Config(environments={"dev": environment})


def run(text: str, config: Config, catalog: dict | None = CATALOG) -> tuple:
    command = resolve(parse(text), config=config, catalog_of=lambda env: catalog)
    return command.env, command.app, command.migration


def test_unique_prefix_resolves_to_the_full_name(config: Config) -> None:
    assert run("plan dev accounts 0002", config) == ("dev", "accounts", "0002_profile")


def test_zero_and_no_migration_pass_through(config: Config) -> None:
    assert run("plan dev accounts zero", config) == ("dev", "accounts", "zero")
    assert run("showmigrations dev media", config) == ("dev", "media", None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("plan prod", "Unknown environment `prod`. Valid environments: `dev`."),
        ("plan dev shop", "No app `shop` with migrations in `dev`. Valid apps: `accounts`, `media`."),
        ("plan dev accounts 0009", "Cannot find a migration matching `0009` from app `accounts`."),
        (
            "plan dev media 0001",
            "More than one migration matches `0001` in app `media`: `0001_initial`, `0001_squashed_0002_image`.",
        ),
    ],
)
def test_refusals_name_the_valid_choices(text: str, expected: str, config: Config) -> None:
    with pytest.raises(Refusal) as refusal:
        run(text, config)
    assert expected in str(refusal.value)


def test_app_arguments_need_a_reported_catalog(config: Config) -> None:
    with pytest.raises(Refusal, match="has not reported its migrations yet"):
        run("plan dev accounts", config, catalog=None)
    assert run("plan dev", config, catalog=None) == ("dev", None, None)
