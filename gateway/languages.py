"""``Accept-Language``: language ranges, and the one language a source answers a request in.

A client's header is read once, at the HTTP edge (RFC 9110 §12.5.4): comma-separated language
ranges (``en``, ``en-GB``, ``*``; RFC 4647 §2.1), each with an optional q-value, at most
:data:`MAX_HEADER_LENGTH` characters. Anything else (non-ASCII, a malformed range or weight, an
over-long header) is the client's mistake: ``BAD_USER_INPUT`` naming the header, before any
upstream call.

A source never sees the client's header as given. A source that answers in languages (CareCloud)
gets the one of *its* languages the ranges prefer (:func:`lookup`, RFC 4647 §3.4), else its
configured or documented default; every other source ignores the language, in its requests, cache
keys and tables. So a new header value costs no new upstream request and no new cache entry.

Example::

    ranges = parse_accept_language("en-GB, cs;q=0.8")
    lookup(ranges, ("cs", "en"), default="cs")  # "en"
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from gateway.errors import BadUserInput

__all__ = ["MAX_HEADER_LENGTH", "LanguageRange", "lookup", "parse_accept_language"]

MAX_HEADER_LENGTH = 256  # far above any browser's (a handful of ranges); bounds the work

# One list element: language-range [ OWS ";" OWS "q=" qvalue ], optional whitespace around.
_ELEMENT = re.compile(
    r"[ \t]*(?P<range>\*|[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*)"
    r"(?:[ \t]*;[ \t]*[qQ]=(?P<q>0(?:\.[0-9]{0,3})?|1(?:\.0{0,3})?))?[ \t]*")
# A language tag as configured for a source (`languages`): a range without the wildcard.
TAG = re.compile(r"[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*")


@dataclass(frozen=True, slots=True)
class LanguageRange:
    tag: str  # lower case ("en-gb"), or "*"
    quality: float  # 0 (not acceptable) to 1


def parse_accept_language(header: str, *, what: str = "the Accept-Language header"
                          ) -> tuple[LanguageRange, ...]:
    """The header's ranges, most preferred first (ties: as listed); empty for an empty header.

    Raises :class:`~gateway.errors.BadUserInput` naming ``what`` for anything that is not a
    list of language ranges.
    """
    if len(header) > MAX_HEADER_LENGTH:
        raise BadUserInput(f"{what} is longer than {MAX_HEADER_LENGTH} characters")
    ranges: list[LanguageRange] = []
    for element in header.split(","):
        if not element.strip(" \t"):
            continue  # empty list elements are allowed (RFC 9110 §5.6.1)
        match = _ELEMENT.fullmatch(element)
        if match is None:
            raise BadUserInput(f"{what} is not a list of language ranges with optional "
                               "q-values (e.g. `en-GB, cs;q=0.8`)")
        quality = match["q"]
        ranges.append(LanguageRange(match["range"].lower(),
                                    1.0 if quality is None else float(quality)))
    return tuple(sorted(ranges, key=lambda r: -r.quality))


def lookup(ranges: Sequence[LanguageRange], available: Sequence[str], default: str) -> str:
    """The language of ``available`` (lower case) the ranges prefer, else ``default``.

    RFC 4647 lookup: each acceptable range in preference order, progressively truncated
    (``en-gb`` → ``en``), against the available tags; ``*`` and ranges with q=0 choose nothing.
    """
    excluded = {r.tag for r in ranges if r.quality == 0}
    for language_range in ranges:
        if language_range.quality == 0 or language_range.tag == "*":
            continue
        tag = language_range.tag
        while tag:
            if tag in available and tag not in excluded:
                return tag
            tag = tag.rpartition("-")[0]
    return default
