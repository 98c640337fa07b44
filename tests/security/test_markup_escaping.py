"""Typed text is never Slack markup when the bot echoes it, over real HTTP with real signatures.

Slack reads ``<…>`` in message text as a mention or a link and ``&`` as the start of an entity:
echoed raw, ``<!channel>`` typed in a lock reason pings the whole channel (again in every thread
refused because of the lock), and ``<http://evil|Approve here>`` shows as a link labelled
"Approve here". For each form, typed where the bot echoes it — a lock reason (the ack, the
channel's announcement, the refusal of a second lock), an unknown verb, a bad argument, an extra
argument — the text Slack receives (posts, and the acks the stand-in records as ephemerals, blocks
included) holds no ``<`` or ``>`` but the bot's own mentions of real people and channels and its
own dates (Slack's date formatting, with its UTC fallback), no bare ``&``, and a person reads
exactly what was typed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from inprocess import ELSEWHERE, OPS, PEOPLE, InProcessBot

from slacklocal.render import mrkdwn_to_text

ENV = "sec-open"
FORMS = [
    "<!channel>",
    "<!here>",
    "<!everyone>",
    "<!subteam^S0DBAS|@dbas>",
    "<@U123>",
    "<@U0BOB>",
    "<#C0OPS>",
    "<http://evil|Approve here>",
    "<mailto:x@evil.test|mail>",
    "R&D",
    "&lt;b&gt; &amp;",
]
# The bot's own markup: mentions of the people and channels it knows, and moments (messages._when).
OWN_MARKUP = re.compile(
    "|".join(re.escape(f"<@{user}>") for user in PEOPLE)
    + "|"
    + "|".join(f"<#{c}>" for c in (OPS, ELSEWHERE))
    + r"|<!date\^[0-9]{1,12}\^\{date_short_pretty\} \{time\}\|[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2} UTC>"
)
BARE_AMPERSAND = re.compile(r"&(?!amp;|lt;|gt;)")


def texts(message: object) -> list[str]:
    """Every mrkdwn string Slack receives in a message or ephemeral: its text and its blocks'."""
    found = [message.text]  # type: ignore[attr-defined]
    for block in message.blocks:  # type: ignore[attr-defined]
        found += [
            obj["text"]
            for obj in [block.get("text") or {}, *block.get("elements", [])]
            if isinstance(obj, dict) and "text" in obj
        ]
    return [text for text in found if isinstance(text, str)]


def markup_left(text: str) -> list[str]:
    """What Slack would still read as markup once the bot's own mentions are taken out."""
    rest = OWN_MARKUP.sub("", text)
    return re.findall(r"[<>]", rest) + BARE_AMPERSAND.findall(rest)


@pytest.fixture
def unlocked(inproc: InProcessBot) -> Iterator[None]:
    """``ENV`` unlocked before the test and after it (other tests lock it, and need it unlocked)."""
    inproc.sender.slash_command("/migrate", f"unlock {ENV}", "U0ALICE", OPS)
    yield
    inproc.sender.slash_command("/migrate", f"unlock {ENV}", "U0ALICE", OPS)


@pytest.mark.parametrize("form", FORMS)
def test_typed_markup_is_echoed_as_text(inproc: InProcessBot, unlocked: None, form: str) -> None:
    store = inproc.api.store
    posted_before, told_before = len(store.messages(OPS)), len(store.ephemerals(channel=OPS))
    word = form.split()[0]
    typed = [
        ("U0ALICE", f"lock {ENV} {form} deploy freeze"),  # the ack, and the channel's announcement below
        ("U0BOB", f"lock {ENV} mine now"),  # refused, echoing the lock's reason
        ("U0ALICE", f"{word} {ENV}"),  # an unknown verb
        ("U0ALICE", f"plan {ENV} {word}"),  # a bad app
        ("U0ALICE", f"help {word}"),  # an extra argument
    ]
    for user, text in typed:
        assert inproc.sender.slash_command("/migrate", text, user, OPS).status == 200, text
    (announcement,) = store.wait_for(lambda: [m for m in store.messages(OPS)[posted_before:] if "🔒" in m.text])
    answers = store.ephemerals(channel=OPS)[told_before:]
    assert [answer.user for answer in answers] == [user for user, _ in typed]

    for text in [*texts(announcement), *(text for answer in answers for text in texts(answer))]:
        assert markup_left(text) == [], text
    # What a person reads is what was typed.
    assert f"locked `{ENV}`: {form} deploy freeze" in mrkdwn_to_text(announcement.text)
    assert f": {form} deploy freeze. Nothing was run" in mrkdwn_to_text(answers[1].text)
    for answer in answers[2:]:
        assert f"`{word}`" in mrkdwn_to_text(answer.text), answer.text
