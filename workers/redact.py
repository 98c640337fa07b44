"""Keep secrets out of anything posted or logged: the values a target is given, and passwords in URLs.

A secret that is a URL (a ``DATABASE_URL``) also has its password masked on its own, as written
in the URL and decoded: that is how a target's code sees it (``settings_dict["PASSWORD"]``) and
may print it or put it in an exception.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from urllib.parse import unquote, urlsplit

MASK = "••••"
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<password>[^@\s]+)@", re.I)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    for secret in sorted({s for s in _forms(secrets) if len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    return _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)


def _forms(secrets: Iterable[str]) -> Iterator[str]:
    for secret in secrets:
        yield secret
        try:
            password = urlsplit(secret).password
        except ValueError:
            password = None
        if password:
            yield password
            yield unquote(password)
