"""The audit trail on Django's admin: who asked, who approved, which backup, what ran, what happened.

Every model admin here only reads: no add, change or delete for anyone, superusers included, so
the web side writes nothing but its own sessions. People sign in with Django's auth (``migrabot
admin createsuperuser``: here a superuser, too, can only read). Filters, search, date
drill-down, pagination and export (JSON, CSV) are the admin's own; a request's page adds the plan
as the approver saw it, its approvals, backups and every event, readable (``audit.readable``).

Decision — no token for scripts. The hand-made pages took an optional bearer token; with the
admin a token would be a second way in to guard, and scripts are served better without one:
``migrabot admin dumpdata controlplane.request controlplane.auditevent`` reads the same records
from the control plane's database, and the export actions give a person the filtered rows.

Decision — what is never shown nor exported: a lock's token (whoever knows it can renew or release
the lock) and a request's ``response_url`` (it lets anyone post into the channel for 30 minutes).
Filtering goes only through the filters on the page (``lookup_allowed``): a hand-made query string
cannot probe those fields, nor reach a lookup the database cannot run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from audit import readable
from audit.export import export_csv, export_json
from controlplane.models import (
    Approval,
    AuditEvent,
    Backup,
    EnvironmentLock,
    MigrationFingerprint,
    Request,
    SlackUser,
)
from controlplane.selectors import person_id
from slackui.links import thread_url

if TYPE_CHECKING:  # django-stubs makes them generic; at run time they are not
    ModelAdmin = admin.ModelAdmin[Any]
    TabularInline = admin.TabularInline[Any, Any]
else:
    ModelAdmin, TabularInline = admin.ModelAdmin, admin.TabularInline

SAFE_LOOKUPS = frozenset({"exact", "iexact", "isnull", "gt", "gte", "lt", "lte", "year", "month", "day"})


class AuditSite(admin.AdminSite):
    site_header = "migrabot audit"
    site_title = "migrabot audit"
    index_title = "The audit trail"
    site_url = None  # there is no other site to go back to
    index_template = "audit/index.html"


site = AuditSite(name="audit")
site.disable_action("delete_selected")


class _ChangeList(ChangeList):
    def get_filters(self, request: HttpRequest) -> Any:
        # Django's date drill-down computes the next year or day unguarded: year 9999 is a 500.
        try:
            return super().get_filters(request)
        except (ValueError, OverflowError) as error:
            raise IncorrectLookupParameters(error) from error


class NoWrites:
    """No add, change or delete, for anyone: superusers included."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnly(NoWrites, ModelAdmin):
    """Reading only, for everyone; filtering only through the page's own filters."""

    actions = [export_json, export_csv]
    list_per_page = 50
    #: Never shown, exported or filtered on.
    secret_fields: ClassVar[tuple[str, ...]] = ()

    class Media:
        css = {"all": ["audit/audit.css"]}

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return _ChangeList

    def lookup_allowed(self, lookup: str, value: str, request: HttpRequest | None = None) -> bool:
        name, _, rest = lookup.partition("__")
        if name in self._choice_filters():
            return not rest  # a filter of our own takes its parameter whole
        return name in self._field_filters() and name not in self.secret_fields and (not rest or rest in SAFE_LOOKUPS)

    def _field_filters(self) -> set[str]:
        names = {spec for spec in self.list_filter if isinstance(spec, str)}
        names |= {spec[0] for spec in self.list_filter if isinstance(spec, tuple) and isinstance(spec[0], str)}
        return names | ({self.date_hierarchy} if self.date_hierarchy else set())

    def _choice_filters(self) -> set[str]:
        return {
            str(spec.parameter_name)
            for spec in self.list_filter
            if isinstance(spec, type) and issubclass(spec, admin.SimpleListFilter)
        }


class PersonFilter(admin.AllValuesFieldListFilter):
    """A field's distinct people, each shown by cached name ("Alice Example (U0ALICE)"); the
    query string still carries the id."""

    def choices(self, changelist: Any) -> Any:
        ids = {str(value): person_id(str(value)) or "" for value in self.lookup_choices}  # "user:U1" is U1
        names = dict(SlackUser.objects.filter(pk__in=set(ids.values())).values_list("pk", "name"))
        for choice in super().choices(changelist):
            if choice["display"] in ids:
                value = choice["display"]
                choice = choice | {"display": readable.person(value, names.get(ids[value], ""))}
            yield choice


class ReadOnlyInline(NoWrites, TabularInline):
    extra = 0
    can_delete = False


class NamesPeople:
    """Rows carry the cached name of the person in ``person_field`` (``readable.with_names``)."""

    person_field: ClassVar[str]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return readable.with_names(super().get_queryset(request), self.person_field)  # type: ignore[misc]

    @admin.display(description="who")
    def person(self, record: Any) -> str:
        return readable.person_of(record, self.person_field)


def request_link(request: Request | None) -> SafeString:
    if request is None:
        return mark_safe("—")
    url = reverse("audit:controlplane_request_change", args=[request.pk])
    return format_html('<a href="{}">#{} {}</a>', url, request.pk, request.command_text)


# --- requests --------------------------------------------------------------------------------------


class ApprovalInline(NamesPeople, ReadOnlyInline):
    model = Approval
    person_field = "approver"
    fields = readonly_fields = ("approver_shown", "decision", "reason", "created_at", "plan_digest")
    verbose_name_plural = "approvals (who decided, why, when; one decision per person)"

    @admin.display(description="approver")
    def approver_shown(self, approval: Approval) -> str:
        return self.person(approval)


class BackupInline(ReadOnlyInline):
    model = Backup
    fields = readonly_fields = ("created_at", "size_shown", "sha256", "verified", "verification", "tool", "path")
    show_change_link = True

    @admin.display(description="size")
    def size_shown(self, backup: Backup) -> str:
        return filesizeformat(backup.size)


class EventInline(NamesPeople, ReadOnlyInline):
    model = AuditEvent
    person_field = "actor"
    fields = readonly_fields = ("created_at", "actor_shown", "action", "details")
    ordering = ["id"]
    verbose_name_plural = "events (every state change, click, lock and backup, oldest first)"

    @admin.display(description="actor")
    def actor_shown(self, event: AuditEvent) -> str:
        return self.person(event)

    @admin.display(description="detail")
    def details(self, event: AuditEvent) -> SafeString:
        return readable.event_html(event)


SUMMARY = (
    "command",
    "environment",
    "state",
    "requester_shown",
    "slack_thread",
    "created_at",
    "updated_at",
    "expires_at",
    "approvals_required",
    "denial",
    "reason",
    "outcome",
)
PLAN = ("plan_message", "plan_digest")
PLAN_FILES = ("plan_file", "plan_sql")


@admin.register(Request, site=site)
class RequestAdmin(NamesPeople, ReadOnly):
    person_field = "requester"
    list_display = ["id", "created_at", "environment", "command", "requester_shown", "state"]
    list_display_links = ["id", "command"]
    list_filter = ["environment", "verb", "state", ("requester", PersonFilter), "created_at"]
    search_fields = ["args", "plan", "requester", "approvals__approver"]
    search_help_text = "An app, a migration, or a person's Slack user id or name (requester or approver)."
    date_hierarchy = "created_at"
    ordering = ["-id"]
    secret_fields = ("response_url",)
    inlines = [ApprovalInline, BackupInline, EventInline]
    fieldsets = [
        (None, {"fields": SUMMARY}),
        ("The plan as the approver saw it", {"fields": PLAN}),
        ("The whole plan and its SQL: the files the thread got", {"fields": PLAN_FILES, "classes": ["collapse"]}),
    ]
    readonly_fields = SUMMARY + PLAN + PLAN_FILES

    @admin.display(description="command")
    def command(self, request: Request) -> str:
        return request.command_text

    @admin.display(description="requester", ordering="requester")
    def requester_shown(self, request: Request) -> str:
        return self.person(request)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        """Also the requests of the people whose cached name holds the term."""
        found, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        if not search_term.strip():
            return found, may_have_duplicates
        named = SlackUser.objects.filter(name__icontains=search_term.strip()).values("pk")
        return found | queryset.filter(Q(requester__in=named) | Q(approvals__approver__in=named)), True

    @admin.display(description="Slack thread")
    def slack_thread(self, request: Request) -> SafeString:
        url = thread_url(request)
        if url is None:
            return format_html("not posted yet (channel {})", request.channel or "—")
        return format_html(
            '<a href="{}" class="audit-thread" target="_blank" rel="noopener">Open the thread in Slack</a>'
            " (channel {}, message {})",
            url,
            request.channel,
            request.thread_ts or request.plan_ts,
        )

    @admin.display(description="denied because")
    def denial(self, request: Request) -> SafeString:
        return readable.denial_html(request)

    @admin.display(description="error or refusal")
    def reason(self, request: Request) -> SafeString:
        return readable.error_html(request)

    @admin.display(description="result")
    def outcome(self, request: Request) -> SafeString:
        return readable.result_html(request)

    @admin.display(description="plan message")
    def plan_message(self, request: Request) -> SafeString:
        return readable.plan_message_html(request)

    @admin.display(description="whole plan")
    def plan_file(self, request: Request) -> SafeString:
        return readable.plan_listing_html(request)

    @admin.display(description="SQL")
    def plan_sql(self, request: Request) -> SafeString:
        return readable.plan_sql_html(request)


# --- events ----------------------------------------------------------------------------------------


class AttachedFilter(admin.SimpleListFilter):
    """Events of a request, or the others: manual locks, refused commands and clicks, releases."""

    title = "request"
    parameter_name = "request"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("none", "No request"), ("any", "Of a request")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "none":
            return queryset.filter(request__isnull=True)
        if self.value() == "any":
            return queryset.filter(request__isnull=False)
        return queryset


@admin.register(AuditEvent, site=site)
class AuditEventAdmin(NamesPeople, ReadOnly):
    person_field = "actor"
    list_display = ["id", "created_at", "environment", "actor_shown", "action", "of_request", "details"]
    list_filter = [AttachedFilter, "environment", "action", ("actor", PersonFilter), "created_at"]
    search_fields = ["actor", "action", "detail"]
    search_help_text = "A Slack user id, an action (lock.acquired), or any word of the detail."
    date_hierarchy = "created_at"
    ordering = ["-id"]
    list_select_related = ["request"]
    fields = readonly_fields = ("created_at", "environment", "actor_shown", "action", "of_request", "details")

    @admin.display(description="actor", ordering="actor")
    def actor_shown(self, event: AuditEvent) -> str:
        return self.person(event)

    @admin.display(description="request")
    def of_request(self, event: AuditEvent) -> SafeString:
        return request_link(event.request)

    @admin.display(description="detail")
    def details(self, event: AuditEvent) -> SafeString:
        return readable.event_html(event)


# --- backups, locks, approvals, fingerprints ---------------------------------------------------------


@admin.register(Backup, site=site)
class BackupAdmin(ReadOnly):
    list_display = ["id", "created_at", "environment", "of_request", "size_shown", "verified", "tool"]
    list_filter = ["environment", "verified", "created_at"]
    search_fields = ["path", "sha256", "request__args"]
    date_hierarchy = "created_at"
    ordering = ["-id"]
    list_select_related = ["request"]
    fields = readonly_fields = (
        "environment",
        "of_request",
        "created_at",
        "path",
        "size_shown",
        "sha256",
        "duration_seconds",
        "tool",
        "tool_version",
        "server_version",
        "verified",
        "verification",
        "state_at_backup",
    )

    @admin.display(description="request")
    def of_request(self, backup: Backup) -> SafeString:
        return request_link(backup.request)

    @admin.display(description="size")
    def size_shown(self, backup: Backup) -> str:
        return filesizeformat(backup.size)

    @admin.display(description="migration state when taken")
    def state_at_backup(self, backup: Backup) -> SafeString:
        return readable.migration_state_html(backup)


@admin.register(EnvironmentLock, site=site)
class EnvironmentLockAdmin(NamesPeople, ReadOnly):
    person_field = "holder"
    list_display = ["environment", "holder_shown", "reason", "acquired_at", "expires_at", "of_request"]
    search_fields = ["environment", "holder", "reason"]
    ordering = ["environment"]
    secret_fields = ("token",)
    fields = readonly_fields = ("environment", "holder_shown", "reason", "acquired_at", "expires_at", "of_request")

    @admin.display(description="holder", ordering="holder")
    def holder_shown(self, lock: EnvironmentLock) -> str:
        return self.person(lock)

    @admin.display(description="request")
    def of_request(self, lock: EnvironmentLock) -> SafeString:
        return request_link(lock.request)


@admin.register(Approval, site=site)
class ApprovalAdmin(NamesPeople, ReadOnly):
    person_field = "approver"
    list_display = ["id", "created_at", "of_request", "approver_shown", "decision", "reason"]
    list_filter = ["decision", ("approver", PersonFilter), "created_at"]
    search_fields = ["approver", "reason", "request__args"]
    date_hierarchy = "created_at"
    ordering = ["-id"]
    list_select_related = ["request"]
    fields = readonly_fields = ("of_request", "approver_shown", "decision", "reason", "created_at", "plan_digest")

    @admin.display(description="approver", ordering="approver")
    def approver_shown(self, approval: Approval) -> str:
        return self.person(approval)

    @admin.display(description="request")
    def of_request(self, approval: Approval) -> SafeString:
        return request_link(approval.request)


@admin.register(MigrationFingerprint, site=site)
class MigrationFingerprintAdmin(ReadOnly):
    """The file of each applied migration as first seen: what ``check`` compares files with."""

    list_display = ["environment", "app", "name", "sha256", "applied_at", "first_seen_at"]
    list_filter = ["environment", "app", "first_seen_at"]
    search_fields = ["app", "name", "file"]
    date_hierarchy = "first_seen_at"
    ordering = ["environment", "app", "name"]
