"""``[defaults]`` and ``[[sources]]``: the upstreams, and how each is called."""

from __future__ import annotations

import os
from collections.abc import Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AnyHttpUrl, Field, SecretStr, field_validator

from gateway.config.base import NAME_PATTERN, SourceKind, Strict
from gateway.errors import BadUserInput
from gateway.languages import TAG, parse_accept_language

__all__ = ["SourceConfig", "SourceTuning"]


class SourceTuning(Strict):
    """What ``[defaults]`` sets for every source and a ``[[sources]]`` entry may override."""

    timeout_seconds: float = Field(default=10.0, gt=0, le=300)  # one upstream try
    connect_timeout_seconds: float = Field(default=3.0, gt=0, le=60)  # of one connection
    timezone: str = "UTC"  # for upstream timestamps without a zone (CareCloud)
    # The language asked of a source that answers in languages (CareCloud) when the client's
    # Accept-Language names none it serves: an Accept-Language value ("en", "en-GB, cs;q=0.5").
    language: str | None = None
    # Largest group table read whole to emulate a filter, an order or a lookup by id.
    scan_limit: int = Field(default=5000, ge=1, le=100_000)
    cache_ttl_seconds: float = Field(default=60.0, ge=0)  # product answers
    group_cache_ttl_seconds: float = Field(default=300.0, ge=0)  # group lists and tables
    stale_grace_seconds: float = Field(default=600.0, ge=0)  # stale-if-error window after expiry
    max_retries: int = Field(default=2, ge=0, le=10)  # of a failed idempotent call
    retry_backoff_seconds: float = Field(default=0.2, ge=0)  # first backoff; doubles, jittered
    retry_max_backoff_seconds: float = Field(default=5.0, ge=0)  # the longest backoff
    retry_after_cap_seconds: float = Field(default=10.0, ge=0)  # longest Retry-After honoured
    # The circuit breaker (gateway/upstream/breaker.py): it opens when, over the window, at
    # least `threshold` calls failed and they were at least `failure_rate` of the calls; open,
    # one request goes through as a probe at most every `reset` seconds while requests ask.
    breaker_threshold: int = Field(default=5, ge=1)
    breaker_failure_rate: float = Field(default=0.5, gt=0, le=1)
    breaker_window_seconds: float = Field(default=10.0, gt=0, le=3600)
    breaker_reset_seconds: float = Field(default=2.0, gt=0, le=3600)
    max_concurrency: int = Field(default=20, ge=1, le=1000)  # requests in flight to the source
    # Requests waiting for one of those slots; past it a call fails at once (retryable).
    max_queue: int = Field(default=100, ge=0, le=100_000)
    # Concurrent identical upstream requests share one call (off: each makes its own; for
    # measuring the uncached path honestly).
    dedup: bool = True
    # The change feed (gateway/changes): how often the source is asked what changed (None: the
    # source is not watched), and how often its whole listing is compared to find deletions
    # (None: every 10 polls). A watched source costs one poller per gateway (see [changes]).
    poll_interval_seconds: float | None = Field(default=None, ge=0.1, le=86400)
    full_poll_interval_seconds: float | None = Field(default=None, ge=0.1, le=7 * 86400)

    @field_validator("language")
    @classmethod
    def _language_ranges(cls, language: str | None) -> str | None:
        if language is not None:
            try:
                parse_accept_language(language, what="the value")
            except BadUserInput as exc:
                raise ValueError(exc.message) from None
        return language

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, zone: str) -> str:
        try:
            ZoneInfo(zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {zone!r}") from None
        return zone


class SourceConfig(SourceTuning):
    """One upstream: an instance of a kind. ``name`` is its identity everywhere.

    Exactly one of ``token`` and ``token_env`` is set, and neither is blank: :func:`parse_config`
    checks it together with every other problem of the file.
    """

    name: str = Field(pattern=NAME_PATTERN)  # the source's id in the schema and in logs
    kind: SourceKind  # which upstream API it speaks
    base_url: AnyHttpUrl  # where that API answers (its path prefix included)
    # The gateway's credential for it, inline or from this environment variable (one of two).
    token: SecretStr | None = None
    token_env: str | None = None
    # The languages the source answers in (CareCloud; default "cs" and "en"): the client's
    # Accept-Language is mapped to one of them, so no other value reaches the upstream or a key.
    languages: tuple[str, ...] | None = Field(default=None, min_length=1, max_length=50)
    # A client header whose value, when sent, is the credential used for this source in place
    # of the configured token (the client's own upstream account); every cache of the source's
    # data is then keyed by it (gateway/credentials.py).
    pass_through_header: str | None = Field(default=None, pattern=r"^[A-Za-z0-9-]{1,64}$")

    @field_validator("languages")
    @classmethod
    def _language_tags(cls, languages: tuple[str, ...] | None) -> tuple[str, ...] | None:
        for tag in languages or ():
            if not TAG.fullmatch(tag):
                raise ValueError(f"{tag!r} is not a language tag (e.g. \"en\" or \"en-GB\")")
        return languages

    @property
    def url(self) -> str:
        """The base URL without a trailing slash."""
        return str(self.base_url).rstrip("/")

    def secret(self, environ: Mapping[str, str] | None = None) -> str:
        """The token: inline, or read from the environment variable ``token_env``."""
        if self.token is not None:
            return self.token.get_secret_value()
        environ = os.environ if environ is None else environ
        return environ[self.token_env or ""]
