"""Configuration: a valid file loads; every mistake names the file, the environment and the key."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from migrabot.config import ConfigError, load_config
from migrabot.redact import redact

REPO = Path(__file__).resolve().parents[2]

VALID = """
slash_command = "/migrate"

[environments.dev]
project = "backend"
settings = "backend.settings"
env = { DATABASE_URL = "DEV_DATABASE_URL" }

[environments.dev.policy]
readers = ["*"]
requesters = ["U0ALICE", "S0DEVS"]
approvers = ["U0BOB"]
approvals = 2
approval_for = ["migrate"]
"""


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "backend").mkdir()
    (tmp_path / "backend" / "manage.py").write_text("")
    return tmp_path


def write(folder: Path, text: str) -> Path:
    path = folder / "migrabot.toml"
    path.write_text(text)
    return path


def test_valid_file_loads_with_paths_relative_to_it(folder: Path) -> None:
    config = load_config(write(folder, VALID))
    dev = config.environments["dev"]
    assert dev.project == folder / "backend"
    assert dev.celery_queue == "migrabot.dev"
    assert dev.policy.approvals == 2
    assert dev.policy.needs_approval("rollback") and dev.policy.needs_approval("migrate")
    assert dev.target_environ({"DEV_DATABASE_URL": "sqlite:///x"}) == {"DATABASE_URL": "sqlite:///x"}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            ("approvals = 2", "approvals = 0"),
            "environment 'dev': policy.approvals: Input should be greater than or equal to 1",
        ),
        (("approvals = 2", "aprovals = 2"), "environment 'dev': policy.aprovals: unknown key"),
        (('"U0BOB"', '"bob"'), "environment 'dev': policy.approvers.0: 'bob' is not valid here"),
        (('approval_for = ["migrate"]', 'approval_for = ["drop"]'), "environment 'dev': policy.approval_for.0"),
        (('project = "backend"', 'project = "nowhere"'), "environment 'dev': project: no manage.py in"),
        (('"DEV_DATABASE_URL"', '"postgres://u:s3cret@h/db"'), "environment 'dev': env.DATABASE_URL: must be the NAME"),
        (('slash_command = "/migrate"', 'slash_command = "migrate"'), "slash_command: 'migrate' is not valid here"),
    ],
)
def test_mistakes_are_named(folder: Path, change: tuple[str, str], message: str) -> None:
    path = write(folder, VALID.replace(*change))
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(path) in str(error.value)
    assert message in str(error.value)
    assert "s3cret" not in str(error.value)


def test_missing_file_and_bad_toml(folder: Path) -> None:
    with pytest.raises(ConfigError, match="no such configuration file"):
        load_config(folder / "absent.toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(write(folder, "[environments.dev"))
    with pytest.raises(ConfigError, match="define at least one environment"):
        load_config(write(folder, "[environments]\n"))


def test_writes_wait_for_a_clean_check_by_default_only_in_production(folder: Path) -> None:
    prod = VALID.replace("[environments.dev]", "[environments.dev]\nproduction = true")
    assert load_config(write(folder, prod)).environments["dev"].refuses_writes_on_check_failure
    assert not load_config(write(folder, VALID)).environments["dev"].refuses_writes_on_check_failure
    relaxed = prod + "refuse_writes_on_check_failure = false\n"
    assert not load_config(write(folder, relaxed)).environments["dev"].refuses_writes_on_check_failure


@pytest.mark.parametrize("earlier", ["dev", "staging"])
def test_promote_from_must_name_another_environment(folder: Path, earlier: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(write(folder, VALID + f'promote_from = "{earlier}"\n'))
    assert "environment 'dev': policy.promote_from: must name another environment" in str(error.value)


# --- secrets too short to mask ------------------------------------------------------------------

TWO_SECRETS = VALID.replace(
    'env = { DATABASE_URL = "DEV_DATABASE_URL" }',
    'env = { DATABASE_URL = "DEV_DATABASE_URL", API_KEY = "DEV_API_KEY" }',
)


@pytest.mark.parametrize(
    ("variables", "problem"),
    [
        ({"DEV_API_KEY": "k9z"}, "variable DEV_API_KEY (for API_KEY) holds a secret shorter than 4 characters,"),
        (
            {"DEV_DATABASE_URL": "postgres://app:k9z@db/shop", "DEV_API_KEY": "long-enough"},
            "variable DEV_DATABASE_URL (for DATABASE_URL) holds a secret shorter than 4 characters "
            "(the password in its URL)",
        ),
        (  # 5 characters as written, 3 once decoded
            {"DEV_DATABASE_URL": "postgres://app:k%39z@db/shop"},
            "variable DEV_DATABASE_URL (for DATABASE_URL) holds a secret shorter than 4 characters "
            "(the password in its URL)",
        ),
    ],
    ids=["a value", "a URL's password", "a URL's password, decoded"],
)
def test_a_secret_too_short_to_mask_is_refused_by_name(folder: Path, variables: dict[str, str], problem: str) -> None:
    dev = load_config(write(folder, TWO_SECRETS)).environments["dev"]
    with pytest.raises(ConfigError) as error:
        dev.check_secrets(variables)
    assert str(error.value).startswith(f"environment 'dev': {problem}")
    assert "k9z" not in str(error.value) and "k%39z" not in str(error.value)


def test_the_rehearsal_servers_url_is_a_secret_checked_and_masked(folder: Path) -> None:
    """A rehearsal on another server connects with that server's URL: its password must be masked in
    whatever the rehearsal reports, and be long enough to be."""
    text = VALID.replace('env = { DATABASE_URL = "DEV_DATABASE_URL" }',
                         'env = { DATABASE_URL = "DEV_DATABASE_URL" }\nrehearsal_server = "DEV_SCRATCH_URL"')
    dev = load_config(write(folder, text)).environments["dev"]
    variables = {"DEV_DATABASE_URL": "postgres://app:long-pw@db/shop", "DEV_SCRATCH_URL": "postgres://s:x1@scratch/db"}
    with pytest.raises(ConfigError) as error:
        dev.check_secrets(variables)
    said = "variable DEV_SCRATCH_URL (for rehearsal_server) holds a secret shorter than 4 characters"
    assert said in str(error.value)
    variables["DEV_SCRATCH_URL"] = "postgres://scratch:s3cr3t-pw@scratch/db"
    assert dev.secrets(variables) == list(variables.values())
    assert "s3cr3t-pw" not in redact("FATAL: password s3cr3t-pw refused", dev.secrets(variables))


def test_long_empty_and_unset_secrets_pass(folder: Path) -> None:
    dev = load_config(write(folder, TWO_SECRETS)).environments["dev"]
    dev.check_secrets({"DEV_DATABASE_URL": "postgres://app:long-pw@db/shop", "DEV_API_KEY": "1234"})
    dev.check_secrets({"DEV_DATABASE_URL": "postgres://app@db/shop", "DEV_API_KEY": ""})  # nothing to hide
    dev.check_secrets({})


def test_a_worker_refuses_to_start_with_a_short_secret(folder: Path) -> None:
    """The real ``migrabot worker``: it stops at start-up, before serving (or probing) anything."""
    environ = os.environ | {
        "MIGRABOT_CONFIG": str(write(folder, TWO_SECRETS)),
        "MIGRABOT_BROKER_URL": "redis://127.0.0.1:1/0",  # were it to go on, it would reach no broker
        "DEV_DATABASE_URL": "postgres://app:k9z@db/shop",
    }
    worker = subprocess.run(
        [sys.executable, "-m", "migrabot.cli", "worker", "--env", "dev"],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
        check=False,
    )
    assert worker.returncode == 2, worker.stderr
    assert "environment 'dev': variable DEV_DATABASE_URL (for DATABASE_URL) holds a secret shorter" in worker.stderr
    assert "k9z" not in worker.stderr + worker.stdout
