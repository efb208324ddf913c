"""Accept-Language: language ranges with q-values (RFC 9110 §12.5.4, RFC 4647), and lookup."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.errors import BadUserInput
from gateway.languages import (
    MAX_HEADER_LENGTH,
    LanguageRange,
    lookup,
    parse_accept_language,
)


def test_ranges_most_preferred_first_ties_in_order() -> None:
    assert parse_accept_language("cs, en-GB;q=0.8, de;Q=0.8, *;q=0.1, fr;q=1.0") == (
        LanguageRange("cs", 1.0), LanguageRange("fr", 1.0), LanguageRange("en-gb", 0.8),
        LanguageRange("de", 0.8), LanguageRange("*", 0.1))


@pytest.mark.parametrize("header", ["", " ", ",", " , ,", "\t"])
def test_empty_lists_are_no_preference(header: str) -> None:
    assert parse_accept_language(header) == ()


@pytest.mark.parametrize("header", [
    "en;q=1.5", "en;q=0.1234", "en;q=", "en;q=.5", "en;q=1.01", "en q=0.5", "en;x=1",
    "en-", "-en", "en--gb", "123", "en-123456789", "abcdefghi", "en_GB", "en;q=0.5;q=0.4",
    "čeština", "en\u00a0", "en\x00", "*-gb", "en*", "en;", ";q=1"])
def test_malformed_headers_are_the_clients_error(header: str) -> None:
    with pytest.raises(BadUserInput, match="the Accept-Language header is not a list"):
        parse_accept_language(header)


def test_the_header_is_capped() -> None:
    at_cap = ",".join(["en"] * (MAX_HEADER_LENGTH // 3)).ljust(MAX_HEADER_LENGTH, " ")
    assert len(at_cap) == MAX_HEADER_LENGTH and parse_accept_language(at_cap)
    with pytest.raises(BadUserInput, match=f"longer than {MAX_HEADER_LENGTH} characters"):
        parse_accept_language(at_cap + "x")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_any_text_is_ranges_or_bad_user_input(header: str) -> None:
    try:
        ranges = parse_accept_language(header)
    except BadUserInput as exc:
        assert "Accept-Language" in exc.message
    else:
        assert header.isascii()
        assert all(0 <= r.quality <= 1 and r.tag == r.tag.lower() for r in ranges)


@pytest.mark.parametrize(("header", "chosen"), [
    ("en-GB", "en"), ("en-gb-oed", "en"), ("cs-CZ;q=0.5, en;q=0.4", "cs"),
    ("de, en;q=0.1", "en"), ("*", "cs"), ("de", "cs"), ("en;q=0, cs;q=0.5", "cs"),
    ("en-GB;q=0.9, en;q=0", "cs"),  # en is excluded, so en-GB's truncation cannot pick it
    ("", "cs"), ("sk", "sk")])
def test_lookup_picks_an_available_language_else_the_default(header: str, chosen: str) -> None:
    assert lookup(parse_accept_language(header), ("cs", "en", "sk"), "cs") == chosen
