"""The slash command's grammar: table tests for each refusal, properties for hostile text."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.grammar import MAX_TEXT, VERBS, parse
from controlplane.errors import Refusal
from slacklocal.render import mrkdwn_to_text


@pytest.mark.parametrize(
    ("text", "verb", "env", "app", "migration"),
    [
        ("", "help", None, None, None),
        ("help", "help", None, None, None),
        ("  HELP  ", "help", None, None, None),
        ("envs", "envs", None, None, None),
        ("showmigrations dev", "showmigrations", "dev", None, None),
        ("showmigrations dev accounts", "showmigrations", "dev", "accounts", None),
        ("plan staging", "plan", "staging", None, None),
        ("plan staging marketplace 0002", "plan", "staging", "marketplace", "0002"),
        ("plan staging marketplace zero", "plan", "staging", "marketplace", "zero"),
        ("plan\tstaging   media\n0001_initial", "plan", "staging", "media", "0001_initial"),
        ("rollback prod marketplace 0002", "rollback", "prod", "marketplace", "0002"),
        ("fake dev media 0003", "fake", "dev", "media", "0003"),
        ("migrate dev", "migrate", "dev", None, None),
        ("check prod", "check", "prod", None, None),
    ],
)
def test_parses_valid_commands(text: str, verb: str, env: str, app: str, migration: str) -> None:
    command = parse(text)
    assert (command.verb.name, command.env, command.app, command.migration) == (verb, env, app, migration)


@pytest.mark.parametrize(
    ("text", "number", "reason", "args"),
    [
        ("restore prod #12", 12, None, ["12"]),
        ("status", None, None, []),
        ("status 7", 7, None, ["7"]),
        ("cancel #31", 31, None, ["31"]),
        ("lock prod  release freeze: v2.3 (ask @carol)", None, "release freeze: v2.3 (ask @carol)", []),
    ],
)
def test_parses_ids_and_reasons(text: str, number: int | None, reason: str | None, args: list[str]) -> None:
    command = parse(text)
    assert (command.number, command.reason, command.args) == (number, reason, args)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rollbak dev", "Unknown command `rollbak`. Did you mean `rollback`? (`help` lists every command.)"),
        ("rolback dev", "Unknown command `rolback`. Did you mean `rollback`?"),
        (
            "frobnicate dev",
            "Unknown command `frobnicate`. Valid commands: `help`, `envs`, `showmigrations`, `plan`, `check`, "
            "`migrate`, `rollback`,",
        ),
        ("rollback dev accounts", "Missing <migration>. Usage: `rollback <env> <app> <migration>`"),
        ("restore dev latest", "`latest` is not a valid backup-id"),
        ("lock dev", "Missing <reason>. Usage: `lock <env> <reason>`"),
        ("lock dev \x07bell", "A reason must be plain text"),
        ("cancel", "Missing <request-id>. Usage: `cancel <request-id>`"),
        ("status 12 13", "Unexpected extra arguments `13`"),
        ("showmigrations", "Missing <env>. Usage: `showmigrations <env> [app]`"),
        ("check prod accounts", "Unexpected extra arguments `accounts`. Usage: `check <env>`"),
        (
            "showmigrations dev accounts extra",
            "Unexpected extra arguments `extra`. Usage: `showmigrations <env> [app]`",
        ),
        ("plan dev a b c d", "Unexpected extra arguments `c`, `d`. Usage: `plan <env> [app] [migration]`"),
        ("plan Dev", "`Dev` is not a valid env"),
        ("plan dev acc;rm", "`acc;rm` is not a valid app"),
        ("plan dev accounts $(reboot)", "`$(reboot)` is not a valid migration"),
        ("plan dev аccounts", "`аccounts` is not a valid app"),  # a Cyrillic "а"
        ("plan dev accounts --fake", "`--fake` is not a valid migration"),
    ],
)
def test_refuses_bad_input_naming_the_problem(text: str, expected: str) -> None:
    """``expected`` is what the person reads: the refusal is Slack mrkdwn, ``<env>`` escaped in it."""
    with pytest.raises(Refusal) as refusal:
        parse(text)
    assert expected in mrkdwn_to_text(str(refusal.value))


def test_refuses_overlong_text() -> None:
    with pytest.raises(Refusal, match="longer than"):
        parse("plan dev " + "a" * MAX_TEXT)


@given(st.text(max_size=200))
def test_any_text_parses_or_is_refused(text: str) -> None:
    try:
        command = parse(text)
    except Refusal as refusal:
        assert str(refusal)
        return
    assert command.verb.name in VERBS
    for value in (command.env, command.app, command.migration):
        assert value is None or (value.isascii() and value.replace("_", "").replace("-", "").isalnum())


@given(st.sampled_from(["plan dev ", "showmigrations dev "]), st.text(alphabet="$`;|&<>(){}'\"\\\n\r\x00 ", min_size=1))
def test_shell_metacharacters_never_pass(prefix: str, hostile: str) -> None:
    try:
        command = parse(prefix + "accounts" + hostile)
    except Refusal:
        return
    assert all(ch.isalnum() or ch == "_" for ch in (command.app or "") + (command.migration or ""))
