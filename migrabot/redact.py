"""Keep secrets out of anything posted or logged: the values a target is given, and passwords in URLs.

A secret that is a URL (a ``DATABASE_URL``) also has its password masked on its own, decoded: that
is how a target's code sees it (``settings_dict["PASSWORD"]``) and may print it or put it in an
exception.

Each secret is masked in the forms a target's code turns it into, not only as itself:

- URL-quoted in any way: each character as itself or as its UTF-8 bytes ``%XX`` (either case of
  hex, ``%25XX`` if quoted twice), a space also as ``+``. One pattern covers ``quote``,
  ``quote_plus``, every byte percent-encoded, and mixes of them.
- base64, standard or URL-safe, padded or not, also inside a longer base64 text (``Basic`` auth of
  ``user:password``). A secret that starts at byte offset 0, 1 or 2 (mod 3) of the encoded bytes
  shows as a different run of characters: for each offset, the characters whose bits all come
  from the secret are masked. The partial characters at either end carry neighbouring bits too, so
  they stay, and give away at most a few bits of the first and last byte.

Every occurrence (overlapping ones too) is found in the original text, and each stretch they cover
becomes one mask, so masking one form never breaks up another and leaves part of it readable.

Secrets shorter than ``MIN_SECRET_LENGTH`` are not masked, since they would mask ordinary words.
A worker refuses them at start-up (``Environment.check_secrets``).
"""

from __future__ import annotations

import base64
import functools
import re
from collections.abc import Iterable, Iterator
from urllib.parse import unquote, urlsplit

MASK = "••••"
MIN_SECRET_LENGTH = 4
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<password>[^@\s]+)@", re.IGNORECASE)
_URLSAFE = str.maketrans("+/", "-_")


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    spans = [span for secret in set(_forms(secrets)) for pattern in _patterns(secret) for span in _spans(pattern, text)]
    return _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", _mask(text, spans))


def url_password(value: str) -> str:
    """The password in a URL, decoded as a database URL's reader decodes it; "" if there is none."""
    try:
        password = urlsplit(value).password
    except ValueError:
        return ""
    return unquote(password) if password else ""


def _forms(secrets: Iterable[str]) -> Iterator[str]:
    for secret in secrets:
        # The password as written in the URL is one of the quoted forms of the decoded one.
        for form in (secret, url_password(secret)):
            if len(form) >= MIN_SECRET_LENGTH:
                yield form


@functools.lru_cache(maxsize=256)
def _patterns(secret: str) -> tuple[re.Pattern[str], ...]:
    """Lookaheads, so that overlapping occurrences are all found."""
    quoted = "".join(_quoted(character) for character in secret)
    data = secret.encode()
    cores = {core for offset in range(3) for core in _base64_cores(data, offset)}
    return tuple(re.compile(f"(?=({pattern}))") for pattern in [quoted, *map(re.escape, sorted(cores))])


def _quoted(character: str) -> str:
    """The character as itself or percent-encoded; a space also as quote_plus writes it."""
    encoded = "".join(f"%(?:25)?(?i:{byte:02x})" for byte in character.encode())
    return f"(?:{re.escape(character)}|{encoded}{'|[+]' if character == ' ' else ''})"


def _base64_cores(data: bytes, offset: int) -> tuple[str, str]:
    """The base64 characters that depend only on ``data``'s bits when it follows ``offset`` other
    bytes (their value does not matter: those characters are dropped), standard and URL-safe."""
    encoded = base64.b64encode(bytes(offset) + data).decode("ascii")
    first, end = -(-8 * offset // 6), 8 * (offset + len(data)) // 6  # whole 6-bit groups inside data
    return encoded[first:end], encoded[first:end].translate(_URLSAFE)


def _spans(pattern: re.Pattern[str], text: str) -> Iterator[tuple[int, int]]:
    return (match.span(1) for match in pattern.finditer(text))


def _mask(text: str, spans: list[tuple[int, int]]) -> str:
    pieces: list[str] = []
    done = 0
    for start, end in sorted(spans):
        if start > done or not pieces:
            pieces += [text[done:start], MASK]
        done = max(done, end)
    return "".join(pieces) + text[done:]
