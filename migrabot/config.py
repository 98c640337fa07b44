"""Environments and policy, from one checked-in TOML file, validated at start-up.

The file names each environment's target project (the folder holding ``manage.py``, the Python
that runs it, its settings module), the Celery queue its worker listens on, and its policy. Secrets
never live here: ``env`` maps a variable the target reads to the name of the worker's variable
that holds its value, so the file stays safe to check in.
"""

from __future__ import annotations

import os
import sys
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from pydantic_core import ErrorDetails

from migrabot.redact import MIN_SECRET_LENGTH, url_password

# "*" is everyone; U…/W… are Slack user ids; S… are user group ids.
Principal = Annotated[str, StringConstraints(pattern=r"^(\*|[UWS][A-Z0-9]{2,})$")]
Identifier = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,31}$")]
EnvVarName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
# A PostgreSQL duration as lock_timeout/statement_timeout take it: "5s", "500ms", "2min", "1h"; "0" = none.
Duration = Annotated[str, StringConstraints(pattern=r"^\d+(ms|s|min|h)?$")]
WriteVerb = Literal["migrate", "rollback", "fake", "restore"]
#: The verbs that change a target database; every other verb a worker runs only reads.
WRITE_VERBS: frozenset[str] = frozenset(get_args(WriteVerb))

#: Verbs whose approval no policy can waive (the product's core promise).
ALWAYS_APPROVED: frozenset[str] = frozenset({"rollback", "fake", "restore"})


class ConfigError(Exception):
    """The configuration file is missing or invalid; the message names the file and the key."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Policy(_Strict):
    """Who may do what on one environment. Empty lists mean nobody: policy fails closed."""

    readers: list[Principal] = Field(default_factory=list)
    requesters: list[Principal] = Field(default_factory=list)
    approvers: list[Principal] = Field(default_factory=list)
    approvals: Annotated[int, Field(ge=1, le=5)] = 1
    approval_for: list[WriteVerb] = Field(default_factory=list)
    backup_before_migrate: bool = False
    request_ttl_minutes: Annotated[int, Field(ge=1, le=7 * 24 * 60)] = 60
    channels: list[Annotated[str, StringConstraints(pattern=r"^[CG][A-Z0-9]{2,}$")]] = Field(
        default_factory=list
    )
    # Writes wait while `check` finds something; unset means "only where production = true".
    refuse_writes_on_check_failure: bool | None = None
    # Migration writes here must first have succeeded, step for step, on this environment.
    promote_from: Identifier | None = None
    # PostgreSQL budgets, set on the migration's own connection. A migration queued for a lock
    # blocks every later query on the table, so production gives up after lock_timeout (unset:
    # "5s" where production = true, none elsewhere) and retries an atomic migration that failed
    # only that way, lock_retries times with backoff. What cannot run in a transaction or is slow
    # by design (CREATE INDEX CONCURRENTLY, VALIDATE CONSTRAINT) gets the slow_* budgets instead.
    lock_timeout: Duration | None = None
    statement_timeout: Duration = "0"
    slow_lock_timeout: Duration = "0"
    slow_statement_timeout: Duration = "0"
    lock_retries: Annotated[int, Field(ge=0, le=10)] = 3
    # Every write but a restore is first run on a throwaway copy of the database (workers.rehearsal);
    # above rehearse_max_bytes the copy holds the whole schema but only the rows the plan touches.
    rehearse: bool = True
    rehearse_max_bytes: Annotated[int, Field(ge=0)] = 5 * 1024**3

    def needs_approval(self, verb: str) -> bool:
        return verb in ALWAYS_APPROVED or verb in self.approval_for


class Environment(_Strict):
    """One deployment of the target project (dev, staging, prod) and how to reach it."""

    name: Identifier
    description: str = ""
    project: Path
    python: str = Field(default_factory=lambda: sys.executable)
    settings: Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_.]*$")]
    queue: str = ""
    production: bool = False
    backup_dir: Path = Path("var/backups")
    env: dict[EnvVarName, EnvVarName] = Field(default_factory=dict)
    # Variables set for a rehearsal only, as values (not secrets): e.g. EMAIL_BACKEND for settings
    # that read it, so the migrations' side effects outside the database go nowhere.
    rehearsal_env: dict[EnvVarName, str] = Field(default_factory=dict)
    # The NAME of the worker's variable holding a PostgreSQL URL of the server for rehearsal copies
    # (its database is where the worker connects to create them); unset: the real database's server.
    rehearsal_server: EnvVarName | None = None
    policy: Policy = Field(default_factory=Policy)

    @property
    def celery_queue(self) -> str:
        return self.queue or f"migrabot.{self.name}"

    def lock_budget(self) -> list[str]:
        """The probe's ``migrate`` arguments for the policy's PostgreSQL budgets."""
        policy = self.policy
        lock_timeout = policy.lock_timeout if policy.lock_timeout is not None else ("5s" if self.production else "0")
        return [
            f"--lock-timeout={lock_timeout}",
            f"--statement-timeout={policy.statement_timeout}",
            f"--slow-lock-timeout={policy.slow_lock_timeout}",
            f"--slow-statement-timeout={policy.slow_statement_timeout}",
            f"--lock-retries={policy.lock_retries}",
        ]

    @property
    def refuses_writes_on_check_failure(self) -> bool:
        chosen = self.policy.refuse_writes_on_check_failure
        return self.production if chosen is None else chosen

    def target_environ(self, source: os._Environ[str] | dict[str, str] = os.environ) -> dict[str, str]:
        """The target's extra variables, read now from the worker's environment by name."""
        return {target: source[name] for target, name in self.env.items() if name in source}

    def secrets(self, source: Mapping[str, str] = os.environ) -> list[str]:
        """What messages and logs mask: every value a target is given, and the URL of the
        ``rehearsal_server`` (whose password a rehearsal's errors could otherwise show)."""
        return [source[name] for _, name in self._secret_variables() if name in source]

    def _secret_variables(self) -> list[tuple[str, str]]:
        """(what it is for, the worker's variable) of each secret."""
        named = [(f"for {target}", name) for target, name in self.env.items()]
        return named + ([("for rehearsal_server", self.rehearsal_server)] if self.rehearsal_server else [])

    def check_secrets(self, source: Mapping[str, str] = os.environ) -> None:
        """Refuse secrets too short for redaction to mask; a worker calls this at start-up.

        Every value a target is given counts as a secret, and so do the rehearsal server's URL and the
        password in a URL value. Only the variables that are set are checked; the message names them,
        never their values.
        """
        problems = []
        for purpose, name in self._secret_variables():
            value = source.get(name, "")
            for part, secret in (("", value), (" (the password in its URL)", url_password(value))):
                if 0 < len(secret) < MIN_SECRET_LENGTH:
                    problems.append(
                        f"environment '{self.name}': variable {name} ({purpose}) holds a secret shorter than "
                        f"{MIN_SECRET_LENGTH} characters{part}, which could not be masked in messages and logs: "
                        "use a longer one"
                    )
        if problems:
            raise ConfigError("\n".join(problems))


class Config(_Strict):
    slash_command: Annotated[str, StringConstraints(pattern=r"^/[a-z0-9_-]{1,31}$")] = "/migrate"
    environments: dict[str, Environment]

    def environment(self, name: str) -> Environment | None:
        return self.environments.get(name)


def load_config(path: Path | str) -> Config:
    """Read and validate the file; relative paths in it are taken from the file's own folder."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such configuration file") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None
    environments = raw.get("environments")
    if isinstance(environments, dict):
        for name, table in environments.items():
            if isinstance(table, dict):
                table.setdefault("name", name)
                for key in ("project", "backup_dir"):
                    if key in table and isinstance(table[key], str):
                        table[key] = str(path.parent / table[key])
    try:
        config = Config.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(_describe(path, error)) from None
    _check_names(path, config)
    return config


def _check_names(path: Path, config: Config) -> None:
    if not config.environments:
        raise ConfigError(f"{path}: no [environments.<name>] table: define at least one environment")
    for key, environment in config.environments.items():
        if key != environment.name:
            raise ConfigError(f"{path}: environment '{key}': 'name' must match the table name")
        if not (environment.project / "manage.py").is_file():
            raise ConfigError(
                f"{path}: environment '{key}': project: no manage.py in {environment.project}"
            )
        earlier = environment.policy.promote_from
        if earlier is not None and (earlier == key or earlier not in config.environments):
            raise ConfigError(
                f"{path}: environment '{key}': policy.promote_from: must name another environment "
                f"({', '.join(name for name in config.environments if name != key)})"
            )
    queues = [environment.celery_queue for environment in config.environments.values()]
    if len(set(queues)) != len(queues):
        raise ConfigError(f"{path}: two environments share a queue: each needs its own")


def _describe(path: Path, error: ValidationError) -> str:
    problems = []
    for item in error.errors():
        location = list(item["loc"])
        where = ""
        if location[:1] == ["environments"] and len(location) > 1:
            where = f"environment '{location[1]}': "
            location = location[2:]
        key = ".".join(str(part) for part in location) or "(top level)"
        # Never echo what was written under ``env``: a value there is probably a secret.
        problem = SECRET_HINT if location[:1] == ["env"] else _plain(item)
        problems.append(f"{path}: {where}{key}: {problem}")
    return "\n".join(problems)


SECRET_HINT = "must be the NAME of the worker's variable holding the value (e.g. STAGING_DATABASE_URL)"


def _plain(item: ErrorDetails) -> str:
    if item["type"] == "extra_forbidden":
        return "unknown key"
    if item["type"] == "string_pattern_mismatch":
        return f"{item['input']!r} is not valid here"
    return str(item["msg"])


DEFAULT_CONFIG_PATH = Path("migrabot.toml")


def config_path() -> Path:
    return Path(os.environ.get("MIGRABOT_CONFIG", DEFAULT_CONFIG_PATH))

