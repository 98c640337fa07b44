"""The deployment files cannot be run here (no Docker engine), so they are checked by reading."""

from pathlib import Path

import yaml

from migrabot.cli import build_parser
from migrabot.config import load_config

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
CONFIG = load_config(ROOT / "migrabot.toml")


def migrabot_services() -> dict[str, dict]:
    return {name: service for name, service in COMPOSE["services"].items() if service.get("image") == "migrabot:latest"}


def test_every_command_in_compose_is_a_valid_cli_command() -> None:
    services = migrabot_services()
    assert {"bot", "controlplane-migrate"} <= set(services)
    for name, service in services.items():
        options = build_parser().parse_args(service["command"])
        assert options.command in {"bot", "worker", "admin", "audit"}, name


def test_one_worker_per_environment_with_its_database_variable() -> None:
    workers = {}
    for service in migrabot_services().values():
        options = build_parser().parse_args(service["command"])
        if options.command == "worker":
            workers.update({env: service for env in options.envs})
    assert set(workers) == set(CONFIG.environments)
    for env, service in workers.items():
        for source in CONFIG.environments[env].env.values():
            assert source in service["environment"], f"{env}: {source} is not set for its worker"


def test_workers_get_no_slack_token_and_no_route_to_the_internet() -> None:
    internal = {name for name, network in COMPOSE["networks"].items() if (network or {}).get("internal")}
    for name, service in migrabot_services().items():
        if build_parser().parse_args(service["command"]).command != "worker":
            continue
        assert not [key for key in service["environment"] if key.startswith("SLACK_")], name
        assert set(service["networks"]) <= internal, f"{name} can reach the internet"
    assert "SLACK_BOT_TOKEN" in COMPOSE["services"]["bot"]["environment"]


def test_services_wait_for_what_they_use() -> None:
    services = COMPOSE["services"]
    for name, service in migrabot_services().items():
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown service {dependency}"
    assert services["bot"]["depends_on"]["controlplane-migrate"]["condition"] == "service_completed_successfully"


def test_manifest_names_the_configured_command_and_the_scopes_used() -> None:
    manifest = yaml.safe_load((ROOT / "slack-app-manifest.yml").read_text())
    assert [c["command"] for c in manifest["features"]["slash_commands"]] == [CONFIG.slash_command]
    scopes = set(manifest["oauth_config"]["scopes"]["bot"])
    assert {"commands", "chat:write", "files:write", "usergroups:read"} <= scopes
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
