"""Redaction: a target's secrets, and the password inside a database URL in every form it takes."""

from urllib.parse import quote

from workers.redact import MASK, redact

PASSWORD = "Pw+/=@:9"
URL = f"postgresql://app:{quote(PASSWORD, safe='')}@db:5432/shop"


def test_masks_a_secret_value_and_the_password_inside_a_url_secret() -> None:
    text = f"token tok-12345 url {URL} raw {PASSWORD} quoted {quote(PASSWORD, safe='')}"
    assert redact(text, ["tok-12345", URL]) == f"token {MASK} url {MASK} raw {MASK} quoted {MASK}"


def test_masks_passwords_in_any_url_even_when_not_a_known_secret() -> None:
    assert redact("could not reach postgres://u:hunter22@h/db") == f"could not reach postgres://u:{MASK}@h/db"


def test_leaves_short_values_and_plain_text_alone() -> None:
    assert redact("id 1 at db", ["1", "db"]) == "id 1 at db"
