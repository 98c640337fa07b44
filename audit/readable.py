"""What the audit site shows of a record: readable text and HTML, never a dict repr or Slack markup.

Text comes in two kinds, kept apart:

- **Slack mrkdwn**, what the product said in Slack: a plan message, the reason of a refusal (the
  bot audits the very text the person read), the error of a refused request. It is read as a
  person reads it in Slack (``slackui.text``: ``<@U1>`` as ``@Alice`` where the name is cached,
  Slack's ``&lt;`` escapes undone), then HTML-escaped, with `` `code` `` and ``*bold*`` as
  ``<code>`` and ``<strong>``.
- **Plain text**, what someone typed or a program raised (a lock's reason, a denial's reason, an
  error): HTML-escaped and shown as itself, so ``<!channel>`` typed as a reason reads
  ``<!channel>`` and pings nobody.

People are shown by the name Slack shows for them, "Alice Example (U0ALICE)", from the cache
the bot keeps in the control plane (``bot.people``); by the bare id where no name is cached yet.
"""

from __future__ import annotations

import json
import re
from typing import Any

from django.db.models import OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Replace
from django.utils.html import escape, format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from controlplane.models import Approval, AuditEvent, Backup, Decision, Request, SlackUser, State
from controlplane.selectors import person_id, user_name
from migrabot import messages
from slackui import cards
from slackui.blocks import Message
from slackui.text import mrkdwn_to_text, render_blocks

_CODE = re.compile(r"```(.+?)```|`([^`\n]+)`", re.DOTALL)
_BOLD = re.compile(r"(?<![\w*])\*([^*\n]+)\*(?![\w*])")
_MENTION = re.compile(r"<@([UW][A-Z0-9]+)(?:\|[^>]*)?>")


def with_names(queryset: QuerySet[Any], field: str) -> QuerySet[Any]:
    """``queryset`` with the cached name of the person in ``field`` as ``person_name`` on each row
    (one query for a whole list; None where no name is cached)."""
    user_id = Replace(OuterRef(field), Value("user:"), Value(""))  # a manual lock's holder is "user:U…"
    name = SlackUser.objects.filter(pk=user_id).exclude(name="").values("name")[:1]
    named: QuerySet[Any] = queryset.annotate(person_name=Subquery(name))
    return named


def person(value: str, name: str | None = None) -> str:
    """Who ``value`` (an actor, a requester, a lock holder) is: "Alice Example (U0ALICE)" where a
    name is cached, else ``value`` itself. ``name``: the row's ``person_name``; looked up if absent."""
    user_id = person_id(value)
    if user_id is None:
        return value  # "system", a worker, a request holding a lock
    name = user_name(user_id=user_id) if name is None else name
    return messages.person(user_id, name) if name else value


def person_of(record: Any, field: str) -> str:
    """``person`` for a record's ``field``, with the name ``with_names`` put on it where it did."""
    value = str(getattr(record, field))
    if hasattr(record, "person_name"):
        return person(value, record.person_name or "")
    return person(value)


def mrkdwn_html(text: str) -> SafeString:
    """Slack mrkdwn as a person reads it, in HTML."""
    return _emphasis(mrkdwn_to_text(text, _mentioned(text)))


def _mentioned(text: str) -> dict[str, str]:
    """The cached names of the people ``text`` mentions (``<@U…>``), as Slack shows a mention: one query."""
    ids = set(_MENTION.findall(text))
    if not ids:
        return {}
    return dict(SlackUser.objects.filter(pk__in=ids).exclude(name="").values_list("pk", "name"))


def _emphasis(text: str) -> SafeString:
    """Text that Slack reading has left with `code` and *bold*: escaped, those two as tags."""
    parts: list[str] = []
    last = 0
    for match in _CODE.finditer(text):
        parts.append(_bold(text[last : match.start()]))
        fenced, inline = match.groups()
        tag = format_html("<pre>{}</pre>", fenced) if fenced is not None else format_html("<code>{}</code>", inline)
        parts.append(tag)
        last = match.end()
    parts.append(_bold(text[last:]))
    return mark_safe("".join(parts))  # every part is escaped above


def _bold(text: str) -> str:
    return _BOLD.sub(r"<strong>\1</strong>", str(escape(text)))


def value_text(value: Any) -> str:
    """A value as one line: text as itself, anything else as JSON (never a Python repr)."""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)


def lines_html(lines: list[tuple[str, SafeString | str]]) -> SafeString:
    """``key: value`` lines; a plain value is shown as code, an already rendered one as it is."""
    if not lines:
        return mark_safe("—")
    shown = [
        (
            format_html("<strong>{}</strong>: ", key) if key else "",  # a detail that is one value has no key
            value if isinstance(value, SafeString) else format_html("<code>{}</code>", value),
        )
        for key, value in lines
    ]
    return format_html_join(mark_safe("<br>"), "{}{}", shown)


#: The detail keys whose values are people (``controlplane``'s events): shown by name like the actor.
PEOPLE_KEYS = frozenset({"approvers", "holder"})


def event_html(event: AuditEvent) -> SafeString:
    """An event's detail as ``key: value`` lines; a refusal's reason as the person read it in Slack."""
    detail = event.detail if isinstance(event.detail, dict) else {"": event.detail}
    said_in_slack = event.action.endswith(".refused")

    def shown(key: str, value: Any) -> SafeString | str:
        if said_in_slack and key == "reason" and isinstance(value, str):
            return mrkdwn_html(value)
        if key in PEOPLE_KEYS and isinstance(value, str):
            return person(value)
        if key in PEOPLE_KEYS and isinstance(value, list) and all(isinstance(v, str) for v in value):
            return ", ".join(person(v) for v in value) or "—"
        return value_text(value)

    return lines_html([(str(key), shown(str(key), value)) for key, value in detail.items()])


def error_html(request: Request) -> SafeString:
    """A refused request's error is the refusal the requester read; any other is plain text."""
    if not request.error:
        return mark_safe("—")
    return mrkdwn_html(request.error) if request.state == State.REFUSED else escape(request.error)


def denial_html(request: Request) -> SafeString:
    """Who denied the request and why, as they typed it (plain text); "—" if nobody denied it."""
    denial = Approval.objects.filter(request=request, decision=Decision.DENY).first()
    if denial is None:
        return mark_safe("—")
    return format_html("{}: {}", person(denial.approver), denial.reason or "(no reason recorded)")


def result_html(request: Request) -> SafeString:
    """What the request ended with; a migration state (a read's, or a run's new one) as its thread showed it."""
    return _document_html(request.environment, request.result)


def _document_html(environment: str, document: Any) -> SafeString:
    if document is None:
        return mark_safe("—")
    if _is_state(document):
        return _state_html(environment, document)
    items = document.items() if isinstance(document, dict) else [("", document)]
    return lines_html(
        [(str(key), _state_html(environment, value) if _is_state(value) else value_text(value)) for key, value in items]
    )


def _is_state(document: Any) -> bool:
    return isinstance(document, dict) and isinstance(document.get("apps"), list)


def _state_html(environment: str, state: dict[str, Any]) -> SafeString:
    try:
        return slack_html(cards.showmigrations_result(environment, state))
    except (KeyError, TypeError, ValueError):  # recorded in another shape: as JSON rather than not at all
        return format_html("<code>{}</code>", value_text(state))


def slack_html(message: Message) -> SafeString:
    """A message built for Slack, as a person reads it there (its blocks; else its text)."""
    text, blocks = message
    names = _mentioned(json.dumps(blocks) if blocks else text)
    lines = render_blocks(blocks, names) if blocks else mrkdwn_to_text(text, names).splitlines()
    return format_html('<div class="audit-slack">{}</div>', _emphasis("\n".join(lines)))


def plan_message_html(request: Request) -> SafeString:
    """The plan message exactly as the approver saw it in the thread, buttons included: built by
    the card that posted it, from the plan, digest, approvals needed and expiry recorded with it.
    A plan that needed no approval was never shown as a message: its whole listing is below."""
    if request.plan is None:
        return mark_safe("No plan: this verb does not make one, or none was made.")
    if request.expires_at is None:
        return mark_safe("No approval was asked for: the policy lets this verb run without one.")
    try:
        return slack_html(cards.plan_for_approval(request, None))
    except (KeyError, TypeError, ValueError) as error:  # a plan recorded in another shape
        return format_html("The plan could not be drawn as a card ({}); it is listed below.", type(error).__name__)


def plan_listing_html(request: Request) -> SafeString:
    """The whole plan as the file the thread got with it (every step, operation and table)."""
    if request.plan is None:
        return mark_safe("—")
    try:
        _, text = cards.plan_listing(request)
    except (KeyError, TypeError, ValueError):
        text = json.dumps(request.plan, ensure_ascii=False, indent=2, default=str)
    return format_html('<div class="audit-slack">{}</div>', _emphasis(text.rstrip("\n")))


def plan_sql_html(request: Request) -> SafeString:
    sql = (request.plan or {}).get("sql") if isinstance(request.plan, dict) else None
    return format_html('<pre class="audit-sql">{}</pre>', sql) if sql else mark_safe("—")


def migration_state_html(backup: Backup) -> SafeString:
    """The migration state the backup captured, as ``showmigrations`` in the thread shows it."""
    return _document_html(backup.environment, backup.migration_state)
