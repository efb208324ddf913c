"""A client's own upstream credential, carried by its request to the source it is for.

A source configured with ``pass_through_header`` uses the value of that client header, when a
request sends it, in place of the source's configured token (in the source's own auth header
format). Everything that keeps that source's data is then keyed by the credential's
fingerprint — the upstream store and in-flight dedup (``gateway/upstream/cache.py``), the group
tables (``gateway/sources/base.py``), the decoded answers (through the store's key) and the
whole-response cache (its client part) — so two credentials never see each other's data.

The token is never in a repr, a log line or a key: keys hold :func:`fingerprint` only.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field

__all__ = ["MAX_TOKEN_LENGTH", "Credential", "fingerprint"]

MAX_TOKEN_LENGTH = 4096
# What an HTTP header value can carry as a token: visible ASCII, no spaces (RFC 9110 token68
# and friends); anything else is refused before it reaches an upstream.
TOKEN = re.compile(r"[\x21-\x7e]+")


def fingerprint(secret: str) -> str:
    """A short one-way fingerprint of a credential (never the credential itself)."""
    return hashlib.sha256(secret.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Credential:
    token: str = field(repr=False)
    fingerprint: str

    @classmethod
    def of(cls, token: str) -> Credential:
        return cls(token, fingerprint(token))

    @staticmethod
    def acceptable(token: str) -> bool:
        return len(token) <= MAX_TOKEN_LENGTH and TOKEN.fullmatch(token) is not None
