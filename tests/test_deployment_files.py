"""The deployment files cannot be run here (no Docker engine), so they are checked by reading."""

import importlib.metadata
import os
import re
import subprocess
import tomllib
from pathlib import Path

import pytest
import yaml

from migrabot.cli import build_parser, main
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


# The image, the lock files and the variables: checked by reading, as above.
DOCKERFILE = (ROOT / "Dockerfile").read_text()
COMPOSE_TEXT = (ROOT / "docker-compose.yml").read_text()


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) for each instruction, continuation lines joined, comments dropped."""
    lines = [line for line in DOCKERFILE.splitlines() if not line.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in joined.splitlines() if line.strip()]


def lock_pins(name: str) -> dict[str, str]:
    """{normalized name: version} of a pip-compile lock file; every pin must carry hashes."""
    text = (ROOT / name).read_text()
    pins = {}
    for entry in re.split(r"\n(?=\S)", text):
        if entry.startswith("#") or not entry.strip():
            continue
        requirement = entry.split()[0]
        assert "==" in requirement, f"{name}: {requirement} is not pinned"
        assert "--hash=sha256:" in entry, f"{name}: {requirement} has no hash"
        package, version = requirement.split("==")
        pins[canonical(package)] = version
    return pins


def canonical(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0]).lower()


def test_image_runs_as_a_non_root_user() -> None:
    users = [arguments.strip() for instruction, arguments in dockerfile_instructions() if instruction == "USER"]
    assert users, "the image sets no USER: it runs as root"
    assert users[-1].split(":")[0] not in {"root", "0"}
    assert "useradd" in DOCKERFILE


def test_base_image_is_pinned_by_exact_tag_and_digest() -> None:
    bases = [arguments.split()[0] for instruction, arguments in dockerfile_instructions() if instruction == "FROM"]
    assert bases
    for base in bases:
        assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm@sha256:[0-9a-f]{64}", base), base


def test_image_has_a_healthcheck_for_each_command() -> None:
    checks = [arguments for instruction, arguments in dockerfile_instructions() if instruction == "HEALTHCHECK"]
    assert len(checks) == 1 and "NONE" not in checks[0].upper()
    assert "docker/healthcheck /usr/local/bin/migrabot-healthcheck" in DOCKERFILE
    assert os.access(ROOT / "docker" / "healthcheck", os.X_OK)


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["worker", "--env", "staging", "--env", "prod"], "-d migrabot-staging-prod@box"),
        (["worker", "--env=dev"], "-d migrabot-dev@box"),
        (["audit", "--bind", "0.0.0.0:8081"], "/healthz port 8081"),
        (["bot"], "/healthz port 3000"),
        (["admin", "migrate"], None),
    ],
)
def test_image_healthcheck_asks_what_the_container_runs(tmp_path: Path, argv: list[str], expected: str | None) -> None:
    """docker/healthcheck reads PID 1's arguments: run it on a made-up command line, with stand-ins
    for celery and python that record how they were called."""
    cmdline = tmp_path / "cmdline"
    cmdline.write_bytes(b"\0".join([b"/usr/local/bin/python", b"/usr/local/bin/migrabot", *map(str.encode, argv)]))
    for tool in ("celery", "python"):
        (tmp_path / tool).write_text(f'#!/bin/sh\necho "$@" >> {tmp_path}/called\n')
        (tmp_path / tool).chmod(0o755)
    environment = {"PATH": f"{tmp_path}:/usr/bin:/bin", "HOSTNAME": "box", "MIGRABOT_HEALTHCHECK_CMDLINE": str(cmdline)}
    done = subprocess.run(["sh", str(ROOT / "docker" / "healthcheck")], env=environment, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    called = (tmp_path / "called").read_text() if (tmp_path / "called").exists() else None
    if expected is None:
        assert called is None
    else:
        assert called is not None, "nothing was asked"
        if expected.startswith("/healthz"):  # python -c '…urlopen(http://127.0.0.1:PORT/healthz)…' PORT
            assert "http://127.0.0.1:{sys.argv[1]}/healthz" in called and called.split()[-1] == expected.split()[-1]
        else:
            assert expected in called, called


def test_the_image_installs_the_runtime_lock_file_with_hashes() -> None:
    runs = [arguments for instruction, arguments in dockerfile_instructions() if instruction == "RUN"]
    copies = [arguments for instruction, arguments in dockerfile_instructions() if instruction == "COPY"]
    assert any(copy.split()[0] == "requirements.lock" for copy in copies)
    assert any("pip install --require-hashes -r requirements.lock" in run for run in runs)
    project_installs = [run for run in runs if re.search(r"pip install .*(?<![\w/-])\.(\s|$)", run)]
    assert project_installs and all("--no-deps" in run for run in project_installs)


def test_scripts_test_installs_the_test_lock_file_then_the_checkout_alone() -> None:
    script = (ROOT / "scripts" / "test").read_text()
    assert "--require-hashes -r requirements-test.lock" in script
    assert "--no-deps -e ." in script
    assert "-e '.[test]'" not in script


def test_lock_files_pin_every_dependency_of_pyproject() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    runtime, test = lock_pins("requirements.lock"), lock_pins("requirements-test.lock")
    for requirement in project["dependencies"]:
        assert canonical(requirement) in runtime, f"{requirement} is not in requirements.lock: run ./scripts/lock"
    for requirement in project["dependencies"] + project["optional-dependencies"]["test"]:
        assert canonical(requirement) in test, f"{requirement} is not in requirements-test.lock: run ./scripts/lock"
    assert {name: runtime[name] for name in runtime} == {name: test[name] for name in runtime}, "the locks disagree"
    for name in ("requirements.lock", "requirements-test.lock"):
        header = (ROOT / name).read_text().splitlines()[:8]
        assert "#    ./scripts/lock" in header, f"{name} does not say how to regenerate it"


def test_the_postgresql_client_version_is_a_build_argument() -> None:
    assert re.search(r"^ARG PG_CLIENT_VERSION=\d+$", DOCKERFILE, re.MULTILINE)
    assert '"postgresql-client-${PG_CLIENT_VERSION}"' in DOCKERFILE
    assert "apt.postgresql.org" in DOCKERFILE
    for name, service in migrabot_services().items():
        assert service["build"]["args"]["PG_CLIENT_VERSION"].startswith("${PG_CLIENT_VERSION:-"), name


def test_every_variable_compose_reads_is_documented_at_the_top() -> None:
    header = COMPOSE_TEXT[: COMPOSE_TEXT.index("\nx-")]
    documented = set(re.findall(r"^#\s+([A-Z][A-Z0-9_]+)\s", header, re.MULTILINE))
    references = re.findall(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)([^}]*)\}", COMPOSE_TEXT)
    required = {name for name, rest in references if rest.startswith(":?")}
    assert "SLACK_BOT_TOKEN" in required
    for name, rest in references:
        assert name in documented, f"${{{name}}} is not documented in docker-compose.yml's comment block"
        assert rest.startswith((":?", ":-")), f"${{{name}{rest}}}: say it is required (:?) or give a default (:-)"
    assert not re.search(r"(?<!\$)\$[A-Za-z_]", COMPOSE_TEXT), "a bare $VAR: use ${VAR:?…} or ${VAR:-…}"


def test_every_service_has_a_healthcheck() -> None:
    for name, service in COMPOSE["services"].items():
        check = service.get("healthcheck")
        assert check, f"{name} has no healthcheck"
        if check.get("disable"):
            assert service.get("restart") == "no", f"{name}: only a one-shot job goes without a healthcheck"
            dependents = [s for s in COMPOSE["services"].values() if name in s.get("depends_on", {})]
            assert dependents and all(
                s["depends_on"][name]["condition"] == "service_completed_successfully" for s in dependents
            )
        else:
            assert check["test"], name


def test_each_worker_is_pinged_by_the_name_it_runs_under() -> None:
    for name, service in migrabot_services().items():
        options = build_parser().parse_args(service["command"])
        if options.command != "worker":
            continue
        test = service["healthcheck"]["test"]
        assert test[0] == "CMD-SHELL" and "celery -A workers.celery_app inspect ping" in test[1], name
        # workers/service.py names the worker migrabot-ENV[-ENV…]@%h (%h: the container's hostname)
        assert f"-d migrabot-{'-'.join(options.envs)}@$$HOSTNAME" in test[1], name


def test_every_environments_backups_are_on_a_named_volume() -> None:
    named = set(COMPOSE["volumes"])
    for name, service in migrabot_services().items():
        options = build_parser().parse_args(service["command"])
        if options.command != "worker":
            continue
        mounts = [volume.split(":")[:2] for volume in service.get("volumes", [])]
        for env in options.envs:
            backups = "/app/" + CONFIG.environments[env].backup_dir.relative_to(ROOT).as_posix()
            assert any(
                source in named and (backups == target or backups.startswith(target.rstrip("/") + "/"))
                for source, target in mounts
            ), f"{name}: {env}'s backups ({backups}) are not on a named volume"
    sources = [volume.split(":")[0] for s in migrabot_services().values() for volume in s.get("volumes", [])]
    backup_volumes = [source for source in sources if source.endswith("-backups")]
    assert len(backup_volumes) == len(set(backup_volumes)), "two workers share a backups volume"


def test_version_prints_the_installed_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"migrabot {importlib.metadata.version('migrabot')}"
