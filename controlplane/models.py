"""The control plane's records. State changes go through ``services``; reads through ``selectors``."""

from __future__ import annotations

from typing import Any

from django.db import models


class State(models.TextChoices):
    RECEIVED = "received"
    PLANNING = "planning"
    AWAITING_APPROVAL = "awaiting_approval"
    APPROVED = "approved"
    BACKING_UP = "backing_up"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REFUSED = "refused"
    DENIED = "denied"
    EXPIRED = "expired"
    CANCELLED = "cancelled"
    INTERRUPTED = "interrupted"


TERMINAL_STATES = frozenset(
    {
        State.SUCCEEDED,
        State.FAILED,
        State.REFUSED,
        State.DENIED,
        State.EXPIRED,
        State.CANCELLED,
        State.INTERRUPTED,
    }
)


#: Every legal move of a request, in one place: the services enforce it, the sweep's table of who
#: moves each state on (``controlplane.recovery``) follows it, and workers and the bot use it.
TRANSITIONS: dict[str, frozenset[str]] = {
    State.RECEIVED: frozenset({State.PLANNING, State.RUNNING, State.REFUSED, State.FAILED, State.CANCELLED}),
    State.PLANNING: frozenset(
        {State.AWAITING_APPROVAL, State.APPROVED, State.SUCCEEDED, State.REFUSED, State.FAILED, State.CANCELLED}
    ),
    State.AWAITING_APPROVAL: frozenset({State.APPROVED, State.DENIED, State.EXPIRED, State.CANCELLED, State.REFUSED}),
    State.APPROVED: frozenset({State.BACKING_UP, State.CANCELLED, State.REFUSED}),
    State.BACKING_UP: frozenset({State.RUNNING, State.FAILED, State.REFUSED, State.INTERRUPTED}),
    State.RUNNING: frozenset({State.SUCCEEDED, State.FAILED, State.REFUSED, State.INTERRUPTED}),
}


class Request(models.Model):
    """One slash command accepted for an environment, from arrival to its outcome."""

    verb = models.CharField(max_length=32)
    environment = models.CharField(max_length=32)
    args = models.JSONField(default=list)
    requester = models.CharField(max_length=32)
    channel = models.CharField(max_length=32)
    # Where to answer the requester when the bot cannot post in the channel (Slack allows it there).
    response_url = models.URLField(max_length=500, blank=True)
    thread_ts = models.CharField(max_length=32, blank=True)
    # The card's permalink as Slack gave it (chat.getPermalink); blank until then, or if it never did.
    permalink = models.URLField(max_length=500, blank=True)
    # Slack's trigger_id identifies one delivery of one command: a redelivery cannot make a twin.
    trigger_id = models.CharField(max_length=255, unique=True, null=True)
    state = models.CharField(max_length=32, choices=State.choices, default=State.RECEIVED)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    enqueued_at = models.DateTimeField(null=True, blank=True)
    # While a worker carries the request out, its heartbeat keeps this in the future; once it
    # lapses the sweep takes over (see ``controlplane.recovery`` for who moves each state on).
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    # What an approver approves: the plan as shown, and its digest, which the run must match.
    plan = models.JSONField(null=True, blank=True)
    plan_digest = models.CharField(max_length=64, blank=True)
    # The steps alone (no environment): what promotion order compares across environments.
    steps_digest = models.CharField(max_length=64, blank=True, db_index=True)
    plan_ts = models.CharField(max_length=32, blank=True)  # the message with the buttons
    approvals_required = models.PositiveSmallIntegerField(default=0)
    expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [models.Index(fields=["environment", "-created_at"])]

    def __str__(self) -> str:
        return f"#{self.pk} {self.verb} {self.environment} ({self.state})"

    @property
    def command_text(self) -> str:
        return " ".join([self.verb, self.environment, *self.args])

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL_STATES


class AuditEvent(models.Model):
    """An append-only record of who did what and when; rows are never changed or deleted."""

    request = models.ForeignKey(Request, null=True, on_delete=models.PROTECT, related_name="events")
    environment = models.CharField(max_length=32, blank=True)
    actor = models.CharField(max_length=64)
    action = models.CharField(max_length=64)
    detail = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor} {self.action}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            raise ValueError("audit events are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise ValueError("audit events are append-only")


class Catalog(models.Model):
    """The migrations on disk for an environment, as its worker last reported them.

    The bot validates app labels and migration prefixes against this without ever touching the
    target: only workers see the target's code and database.
    """

    environment = models.CharField(max_length=32, primary_key=True)
    apps = models.JSONField(default=dict)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"catalog of {self.environment}"


class Decision(models.TextChoices):
    APPROVE = "approve"
    DENY = "deny"


class Approval(models.Model):
    """One person's decision on one request's plan; one row per person, so a double click is one."""

    request = models.ForeignKey(Request, on_delete=models.PROTECT, related_name="approvals")
    approver = models.CharField(max_length=32)
    decision = models.CharField(max_length=16, choices=Decision.choices)
    plan_digest = models.CharField(max_length=64)
    # Why, as the person typed it (plain text): a denial always has one, an approval none.
    reason = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["request", "approver"], name="one_decision_per_person")]

    def __str__(self) -> str:
        return f"{self.approver} {self.decision}s #{self.request_id}"


class EnvironmentLock(models.Model):
    """At most one write per environment. A run's lock lives while its worker's heartbeat renews
    it, so a crashed worker's lock expires by itself; a manual lock (``lock`` verb) has no expiry."""

    environment = models.CharField(max_length=32, primary_key=True)
    holder = models.CharField(max_length=64)
    # One per acquisition: only the acquirer, who alone knows it, can renew or release the lock.
    # Two copies of one run (a redelivered task) share a holder name, never a token.
    token = models.CharField(max_length=64, unique=True)
    request = models.ForeignKey(Request, null=True, blank=True, on_delete=models.PROTECT)
    reason = models.TextField()
    acquired_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"{self.environment} locked by {self.holder}"


class Backup(models.Model):
    """A recorded, verified backup of an environment's database."""

    environment = models.CharField(max_length=32)
    request = models.ForeignKey(Request, null=True, blank=True, on_delete=models.PROTECT, related_name="backups")
    path = models.TextField()
    size = models.BigIntegerField()
    sha256 = models.CharField(max_length=64)
    duration_seconds = models.FloatField()
    tool = models.CharField(max_length=128)
    tool_version = models.CharField(max_length=128)
    server_version = models.CharField(max_length=128, blank=True)
    migration_state = models.JSONField(default=dict)
    verified = models.BooleanField()
    verification = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["environment", "-created_at"])]

    def __str__(self) -> str:
        return f"backup #{self.pk} of {self.environment}"


class MigrationFingerprint(models.Model):
    """The file of an applied migration as first seen in an environment (a Flyway-style checksum).

    Keyed by when the migration was applied, too: a migration rolled back, edited and applied
    again is a new application with its own first fingerprint, while an edit under an applied
    one is caught. Rows are only ever added: the first fingerprint seen is the reference.
    """

    environment = models.CharField(max_length=32)
    app = models.CharField(max_length=255)
    name = models.CharField(max_length=255)
    file = models.TextField()
    sha256 = models.CharField(max_length=64)
    applied_at = models.DateTimeField()  # django_migrations.applied
    first_seen_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["environment", "app", "name", "applied_at"],
                name="one_fingerprint_per_application",
            )
        ]

    def __str__(self) -> str:
        return f"{self.environment} {self.app}.{self.name} {self.sha256[:12]}"


class Post(models.Model):
    """One message of a request's card or thread as the control plane says it should read.

    Workers and the bot record posts (inside the transactions that make them true); the notifier
    makes Slack show them: it posts what has no ``ts`` yet and updates what changed since it was
    shown (``version`` > ``shown_version``). Slack being slow or down only delays that.
    """

    request = models.ForeignKey(Request, on_delete=models.PROTECT, related_name="posts")
    key = models.CharField(max_length=64)  # "card", "plan", "progress", or unique per note
    kind = models.CharField(max_length=32)  # how the bot renders it (slackui.thread)
    data = models.JSONField(default=dict)
    version = models.PositiveIntegerField(default=1)
    shown_version = models.PositiveIntegerField(default=0)
    pending = models.BooleanField(default=True, db_index=True)  # version > shown_version
    ts = models.CharField(max_length=64, blank=True)  # the message in Slack (a file's id for a file)
    shown_at = models.DateTimeField(null=True, blank=True)
    retry_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=255, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)  # one notifier at a time, of several bots
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["request", "key"], name="one_post_per_key")]
        ordering = ["id"]

    def __str__(self) -> str:
        return f"#{self.request_id} {self.key} v{self.version}"


class SlackUser(models.Model):
    """A person's name as Slack shows it, cached by the bot (``bot.people``) so the audit site can
    name people without a Slack call. A blank name: Slack knows no such user (asked again a day later)."""

    id = models.CharField(max_length=32, primary_key=True)
    name = models.CharField(max_length=255, blank=True)
    fetched_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.name or '?'} ({self.id})"


class HomeViewer(models.Model):
    """Someone who opened the bot's Home tab, and when last: whose Home the bot re-publishes
    when what it shows changes (``bot.homes``)."""

    user = models.CharField(max_length=32, primary_key=True)
    opened_at = models.DateTimeField()

    def __str__(self) -> str:
        return f"{self.user} opened the Home tab at {self.opened_at:%Y-%m-%d %H:%M:%S}"
