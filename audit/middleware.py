"""Query strings that are not plain text are answered 400 before any view reads them.

A NUL makes PostgreSQL refuse the query (a 500 where the admin would search or filter with it),
and no search, filter or page number of the audit site needs a control character or more than
``MAX_VALUE`` characters. The same rule the hand-made audit pages had, now for every page.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest

MAX_VALUE = 200

Handler = Callable[[HttpRequest], HttpResponse]


def plain_text_queries(get_response: Handler) -> Handler:
    def middleware(request: HttpRequest) -> HttpResponse:
        for name, values in request.GET.lists():
            if not all(_plain(text) for text in (name, *values)):
                return HttpResponseBadRequest("Searches and filters must be plain text of at most 200 characters.")
        return get_response(request)

    return middleware


def _plain(text: str) -> bool:
    return len(text) <= MAX_VALUE and not any(unicodedata.category(ch)[0] == "C" for ch in text)
