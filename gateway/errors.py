"""One registry of error codes, and the one exception hierarchy the gateway raises.

    GatewayError                 code, message, source?, retryable, retry_after?
    ├── UpstreamBudgetExceeded   UPSTREAM_BUDGET_EXCEEDED: the request used its upstream budget
    ├── BadUserInput             BAD_USER_INPUT: an argument, cursor or id the client must fix
    │   └── Unsupported          BAD_USER_INPUT: a source cannot answer this argument (names both)
    └── UpstreamError            UPSTREAM_*: a source failed; its data is missing, the rest arrives
        ├── UpstreamTimeout          UPSTREAM_TIMEOUT
        ├── UpstreamUnavailable      UPSTREAM_UNAVAILABLE (connection refused, 5xx)
        ├── UpstreamRateLimited      UPSTREAM_RATE_LIMITED (429)
        ├── UpstreamBadResponse      UPSTREAM_BAD_RESPONSE (malformed JSON, unexpected shape, 4xx)
        └── UpstreamUnauthorized     UPSTREAM_UNAUTHORIZED (401/403: the gateway's credential)

At the GraphQL edge each becomes an error with ``extensions.code`` (and ``source``, ``retryable``,
``retryAfter`` where they apply). Messages never carry an upstream URL, query string, header
or body.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

__all__ = [
    "BadUserInput",
    "ErrorCode",
    "GatewayError",
    "SubscriptionEnded",
    "SubscriptionRefused",
    "Unsupported",
    "UpstreamBadResponse",
    "UpstreamBudgetExceeded",
    "UpstreamError",
    "UpstreamRateLimited",
    "UpstreamTimeout",
    "UpstreamUnauthorized",
    "UpstreamUnavailable",
]


class ErrorCode(StrEnum):
    """Every ``extensions.code`` the gateway sends (the README's table lists them all)."""

    # The HTTP request itself (gateway/edge/endpoint.py), before any GraphQL work.
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    NOT_ACCEPTABLE = "NOT_ACCEPTABLE"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
    REQUEST_TIMEOUT = "REQUEST_TIMEOUT"
    PREFLIGHT_REQUIRED = "PREFLIGHT_REQUIRED"
    PLAYGROUND_DISABLED = "PLAYGROUND_DISABLED"
    # Access control (gateway/access/, gateway/edge/persisted.py), before any GraphQL work.
    UNAUTHENTICATED = "UNAUTHENTICATED"
    RATE_LIMITED = "RATE_LIMITED"
    COST_BUDGET_EXCEEDED = "COST_BUDGET_EXCEEDED"
    PERSISTED_QUERY_NOT_SUPPORTED = "PERSISTED_QUERY_NOT_SUPPORTED"
    PERSISTED_QUERY_NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
    PERSISTED_QUERY_HASH_MISMATCH = "PERSISTED_QUERY_HASH_MISMATCH"
    PERSISTED_QUERY_NOT_IN_LIST = "PERSISTED_QUERY_NOT_IN_LIST"
    # The document and the operation, before execution.
    GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
    GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
    DOCUMENT_LIMIT_EXCEEDED = "DOCUMENT_LIMIT_EXCEEDED"
    QUERY_TOO_COMPLEX = "QUERY_TOO_COMPLEX"
    # Execution.
    BAD_USER_INPUT = "BAD_USER_INPUT"
    UPSTREAM_TIMEOUT = "UPSTREAM_TIMEOUT"
    UPSTREAM_UNAVAILABLE = "UPSTREAM_UNAVAILABLE"
    UPSTREAM_RATE_LIMITED = "UPSTREAM_RATE_LIMITED"
    UPSTREAM_BAD_RESPONSE = "UPSTREAM_BAD_RESPONSE"
    UPSTREAM_UNAUTHORIZED = "UPSTREAM_UNAUTHORIZED"
    UPSTREAM_BUDGET_EXCEEDED = "UPSTREAM_BUDGET_EXCEEDED"
    RESPONSE_TOO_LARGE = "RESPONSE_TOO_LARGE"
    GATEWAY_TIMEOUT = "GATEWAY_TIMEOUT"
    # Subscriptions (gateway/changes): refused at start, or ended by the gateway.
    SUBSCRIPTION_LIMIT = "SUBSCRIPTION_LIMIT"
    SLOW_SUBSCRIBER = "SLOW_SUBSCRIBER"
    SHUTTING_DOWN = "SHUTTING_DOWN"
    SOURCE_REMOVED = "SOURCE_REMOVED"
    INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"


class GatewayError(Exception):
    code: ErrorCode = ErrorCode.INTERNAL_SERVER_ERROR
    retryable: bool = False

    def __init__(
        self, message: str, *, source: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        self.source = source
        self.retry_after = retry_after

    @property
    def extensions(self) -> dict[str, Any]:
        extensions: dict[str, Any] = {"code": self.code.value}
        if self.source is not None:
            extensions["source"] = self.source
        if isinstance(self, UpstreamError):
            extensions["retryable"] = self.retryable
        if self.retry_after is not None:
            extensions["retryAfter"] = self.retry_after
        return extensions


class BadUserInput(GatewayError):
    code = ErrorCode.BAD_USER_INPUT


class Unsupported(BadUserInput):
    """A source cannot answer an argument: the message names the source and the argument."""

    def __init__(self, source: str, argument: str, why: str = "") -> None:
        detail = f": {why}" if why else ""
        super().__init__(f"source '{source}' does not support {argument}{detail}", source=source)


class UpstreamError(GatewayError):
    code = ErrorCode.UPSTREAM_UNAVAILABLE
    retryable = True


class UpstreamTimeout(UpstreamError):
    code = ErrorCode.UPSTREAM_TIMEOUT


class UpstreamUnavailable(UpstreamError):
    code = ErrorCode.UPSTREAM_UNAVAILABLE


class UpstreamRateLimited(UpstreamError):
    code = ErrorCode.UPSTREAM_RATE_LIMITED


class UpstreamBadResponse(UpstreamError):
    code = ErrorCode.UPSTREAM_BAD_RESPONSE
    retryable = False


class UpstreamUnauthorized(UpstreamError):
    code = ErrorCode.UPSTREAM_UNAUTHORIZED
    retryable = False


class UpstreamBudgetExceeded(GatewayError):
    """This GraphQL request made all the upstream requests ``[limits] max_upstream_requests``
    allows: the call is not made; the field (or one source's part of a list) fails, the rest
    of the answer arrives."""

    code = ErrorCode.UPSTREAM_BUDGET_EXCEEDED

    def __init__(self, source: str, budget: int) -> None:
        super().__init__(f"source '{source}' was not asked: this request made the "
                         f"{budget} upstream requests it may make ([limits] "
                         "max_upstream_requests)", source=source)
        self.budget = budget

    @property
    def extensions(self) -> dict[str, Any]:
        return {**super().extensions, "maxUpstreamRequests": self.budget}


class SubscriptionRefused(GatewayError):
    """A subscription the gateway will not start (a limit, or no change feed for it)."""

    code = ErrorCode.SUBSCRIPTION_LIMIT


class SubscriptionEnded(GatewayError):
    """A subscription the gateway ended: a subscriber too slow, the gateway shutting down, the
    client's cost budget spent (``retry_after``: when it may resume) or its credentials no
    longer valid. ``code`` says which; a client may subscribe again with its last event id."""

    def __init__(self, message: str, code: ErrorCode, *,
                 retry_after: float | None = None) -> None:
        super().__init__(message, retry_after=retry_after)
        self.code = code
