"""Redaction: a target's secrets, and the password inside a database URL in every form it takes."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from urllib.parse import quote, quote_plus, unquote, unquote_plus

from hypothesis import given, settings
from hypothesis import strategies as st

from migrabot.redact import MASK, redact

PASSWORD = "Pw+/=@:9"
URL = f"postgresql://app:{quote(PASSWORD, safe='')}@db:5432/shop"


def test_masks_a_secret_value_and_the_password_inside_a_url_secret() -> None:
    text = f"token tok-12345 url {URL} raw {PASSWORD} quoted {quote(PASSWORD, safe='')}"
    assert redact(text, ["tok-12345", URL]) == f"token {MASK} url {MASK} raw {MASK} quoted {MASK}"


def test_masks_passwords_in_any_url_even_when_not_a_known_secret() -> None:
    assert redact("could not reach postgres://u:hunter22@h/db") == f"could not reach postgres://u:{MASK}@h/db"


def test_leaves_short_values_and_plain_text_alone() -> None:
    assert redact("id 1 at db", ["1", "db"]) == "id 1 at db"


def test_masks_what_migration_code_makes_of_the_password() -> None:
    """Re-quoted for another URL, sent as HTTP basic auth: what reached Slack and the audit before."""
    basic = base64.b64encode(f"app:{PASSWORD}".encode()).decode()
    text = f"GET https://api?pw={quote_plus(PASSWORD)} Authorization: Basic {basic}"
    redacted = redact(text, [URL])
    assert quote_plus(PASSWORD) not in redacted
    assert not any(PASSWORD.encode() in decoded for decoded in decodings(redacted)), redacted
    assert redacted.startswith(f"GET https://api?pw={MASK} Authorization: Basic ") and MASK in redacted


# --- every encoded form, anywhere (property tests) --------------------------------------------------


def percent(secret: str, hex_format: str) -> str:
    return "".join(f"%{byte:{hex_format}}" for byte in secret.encode())


def b64(data: bytes, urlsafe: bool, padded: bool) -> str:
    encoded = (base64.urlsafe_b64encode if urlsafe else base64.b64encode)(data).decode()
    return encoded if padded else encoded.rstrip("=")


def b64_of(urlsafe: bool, padded: bool) -> Callable[[str], str]:
    return lambda secret: b64(secret.encode(), urlsafe, padded)


B64_VARIANTS = [(urlsafe, padded) for urlsafe in (False, True) for padded in (False, True)]
ENCODINGS: dict[str, Callable[[str], str]] = {
    "itself": lambda secret: secret,
    "quote": quote,
    "quote, nothing safe": lambda secret: quote(secret, safe=""),
    "quote_plus": quote_plus,
    "quoted twice": lambda secret: quote(quote(secret, safe=""), safe=""),
    "every byte %XX": lambda secret: percent(secret, "02X"),
    "every byte %xx": lambda secret: percent(secret, "02x"),
    **{
        f"base64{' urlsafe' if urlsafe else ''}{'' if padded else ' unpadded'}": b64_of(urlsafe, padded)
        for urlsafe, padded in B64_VARIANTS
    },
}

# Real secrets hold neither the mask's character nor U+FFFD (what undecodable %XX bytes decode to,
# which would let the unquote check below find one in any stray escape).
secrets = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="•\ufffd"), min_size=4, max_size=24)
around = st.text(max_size=24)


def decodings(text: str) -> list[bytes]:
    """Every base64 run in the text, decoded from each of its first four characters."""
    decoded = []
    for run in re.findall(r"[A-Za-z0-9+/_-]+", text):
        run = run.translate(str.maketrans("-_", "+/"))
        for start in range(4):
            chunk = run[start:]
            chunk = chunk[: len(chunk) - (len(chunk) % 4 == 1)]  # a lone last character holds no whole byte
            decoded.append(base64.b64decode(chunk + "=" * (-len(chunk) % 4)))
    return decoded


def assert_no_form_of(secret: str, redacted: str) -> None:
    for name, encode in ENCODINGS.items():
        assert encode(secret) not in redacted, f"{name} form survived: {redacted!r}"
    assert secret not in unquote(redacted) and secret not in unquote_plus(redacted), redacted
    assert secret not in unquote(unquote(redacted)), redacted
    assert not any(secret.encode() in decoded for decoded in decodings(redacted)), redacted


@settings(max_examples=400, deadline=None)
@given(secret=secrets, before=around, after=around, encoding=st.sampled_from(sorted(ENCODINGS)))
def test_no_encoded_form_of_a_secret_survives(secret: str, before: str, after: str, encoding: str) -> None:
    redacted = redact(before + ENCODINGS[encoding](secret) + after, [secret])
    assert_no_form_of(secret, redacted)


@settings(max_examples=400, deadline=None)
@given(
    secret=secrets, before=st.binary(max_size=24), after=st.binary(max_size=24),
    text_before=around, text_after=around, variant=st.sampled_from(B64_VARIANTS),
)
def test_a_secret_inside_longer_base64_text_is_masked_at_each_alignment(
    secret: str, before: bytes, after: bytes, text_before: str, text_after: str, variant: tuple[bool, bool]
) -> None:
    redacted = redact(text_before + b64(before + secret.encode() + after, *variant) + text_after, [secret])
    assert_no_form_of(secret, redacted)


@settings(max_examples=200, deadline=None)
@given(password=secrets, before=around, encoding=st.sampled_from(sorted(ENCODINGS)))
def test_the_password_of_a_url_secret_is_masked_in_every_form(password: str, before: str, encoding: str) -> None:
    url = f"postgres://app:{quote(password, safe='')}@db/shop"
    assert_no_form_of(password, redact(before + ENCODINGS[encoding](password), [url]))
