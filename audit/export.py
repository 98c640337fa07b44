"""Export the selected rows — or, with "select all", the whole filtered list — as JSON or CSV.

One row per record with its own fields as stored (a related record as its id, JSON fields as
their JSON), less what a model admin names secret. Streamed, so a whole audit trail exports in
constant memory. A CSV cell that a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``
first: typed text such as a lock's reason can be anything) starts with a ``'`` instead.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import Field, Model, QuerySet
from django.http import HttpRequest, StreamingHttpResponse
from django.utils import timezone

if TYPE_CHECKING:  # django-stubs makes ModelAdmin generic; at run time it is not
    Admin = admin.ModelAdmin[Any]
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
CHUNK = 500


def exported_fields(model: type[Model], secret: Iterable[str]) -> list[Field[Any, Any]]:
    hidden = set(secret)
    return [field for field in model._meta.concrete_fields if field.name not in hidden]


def rows(queryset: QuerySet[Any], fields: list[Field[Any, Any]]) -> Iterator[dict[str, Any]]:
    for record in queryset.order_by("pk").iterator(chunk_size=CHUNK):
        yield {field.attname: getattr(record, field.attname) for field in fields}


def _filename(queryset: QuerySet[Any], extension: str) -> str:
    return f"migrabot-{queryset.model._meta.model_name}-{timezone.now():%Y%m%d-%H%M%S}.{extension}"


def _download(chunks: Iterator[str], filename: str, content_type: str) -> StreamingHttpResponse:
    response = StreamingHttpResponse(chunks, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _secret(modeladmin: Admin) -> tuple[str, ...]:
    return tuple(getattr(modeladmin, "secret_fields", ()))


@admin.action(description="Export the selected as JSON", permissions=["view"])
def export_json(modeladmin: Admin, request: HttpRequest, queryset: QuerySet[Any]) -> StreamingHttpResponse:
    fields = exported_fields(queryset.model, _secret(modeladmin))

    def chunks() -> Iterator[str]:
        yield "["
        for n, row in enumerate(rows(queryset, fields)):
            yield ("," if n else "") + "\n" + json.dumps(row, cls=DjangoJSONEncoder, ensure_ascii=False)
        yield "\n]\n"

    return _download(chunks(), _filename(queryset, "json"), "application/json")


class _Line:
    """What ``csv.writer`` writes to: it hands the line back instead of keeping it."""

    def write(self, line: str) -> str:
        return line


def cell(value: Any) -> Any:
    if isinstance(value, dict | list):
        value = json.dumps(value, cls=DjangoJSONEncoder, ensure_ascii=False)
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


@admin.action(description="Export the selected as CSV", permissions=["view"])
def export_csv(modeladmin: Admin, request: HttpRequest, queryset: QuerySet[Any]) -> StreamingHttpResponse:
    fields = exported_fields(queryset.model, _secret(modeladmin))
    writer = csv.writer(_Line())

    def chunks() -> Iterator[str]:
        yield writer.writerow([field.attname for field in fields])
        for row in rows(queryset, fields):
            yield writer.writerow([cell(value) for value in row.values()])

    return _download(chunks(), _filename(queryset, "csv"), "text/csv; charset=utf-8")
