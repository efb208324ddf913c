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
    "MEANINGS",
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
    """Every ``extensions.code`` the gateway sends (each with its meaning: :data:`MEANINGS`)."""

    # The HTTP request itself (gateway/edge/endpoint.py), before any GraphQL work.
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    NOT_ACCEPTABLE = "NOT_ACCEPTABLE"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
    REQUEST_TIMEOUT = "REQUEST_TIMEOUT"
    PREFLIGHT_REQUIRED = "PREFLIGHT_REQUIRED"
    PLAYGROUND_DISABLED = "PLAYGROUND_DISABLED"
    PLAYGROUND_NOT_INSTALLED = "PLAYGROUND_NOT_INSTALLED"
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


# What each code means to a client, and what it can do: the error reference
# (docs/errors.md) is made from this table; every code has its line (tests/test_errors.py).
MEANINGS: dict[ErrorCode, str] = {
    ErrorCode.METHOD_NOT_ALLOWED:
        "HTTP 405: a method other than GET or POST, or a mutation over GET",
    ErrorCode.NOT_ACCEPTABLE: (
        "HTTP 406: `Accept` allows neither JSON media type nor `text/event-stream`, or a "
        "subscription was asked for as JSON"
    ),
    ErrorCode.PAYLOAD_TOO_LARGE: "HTTP 413: the body is larger than `[server] max_body_bytes`",
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: "HTTP 415: a POST body that is not `application/json`",
    ErrorCode.REQUEST_TIMEOUT: (
        "HTTP 408: the request's headers or body did not arrive within `[server] "
        "header_timeout_seconds` / `body_timeout_seconds`"
    ),
    ErrorCode.PREFLIGHT_REQUIRED: (
        "HTTP 400: a GET query without a header a cross-site form cannot send "
        "(`Apollo-Require-Preflight: true`, `X-Apollo-Operation-Name`, or a non-form "
        "`Content-Type`); `[server] csrf_prevention`"
    ),
    ErrorCode.PLAYGROUND_DISABLED: (
        "HTTP 404: a browser opened `/graphql` where `[server] graphiql` is off (the production "
        "profile): GraphQL requests are POSTs of `application/json`"
    ),
    ErrorCode.PLAYGROUND_NOT_INSTALLED: (
        "HTTP 503: a browser opened `/graphql` where GraphiQL is on but its files are not "
        "installed (`make setup` in a source tree, or `[server] playground_assets`)"
    ),
    ErrorCode.UNAUTHENTICATED: (
        "HTTP 401 (with `WWW-Authenticate`): no valid credentials where `[auth] required`, or an "
        "API key or bearer token that is not valid (unknown, expired, wrong audience or issuer, "
        "badly signed); also what ends a subscription whose token expired or whose key was "
        "removed (`extensions.lastEventId`)"
    ),
    ErrorCode.RATE_LIMITED:
        "HTTP 429 (with `Retry-After`): the client made its `requests_per_minute`",
    ErrorCode.COST_BUDGET_EXCEEDED: (
        "HTTP 429 (with `Retry-After`): the query's estimated upstream requests exceed what is "
        "left of the client's `cost_per_minute`; also what ends a subscription whose next event "
        "would (`extensions.retryAfter`, `lastEventId`: resume after it once the window has "
        "passed)"
    ),
    ErrorCode.PERSISTED_QUERY_NOT_SUPPORTED:
        "`[persisted] mode = \"off\"` and the request names a persisted query",
    ErrorCode.PERSISTED_QUERY_NOT_FOUND: (
        "message `PersistedQueryNotFound`: the hash is not registered (an APQ client then sends "
        "the query with it)"
    ),
    ErrorCode.PERSISTED_QUERY_HASH_MISMATCH: (
        "HTTP 400: `sha256Hash` is not the SHA-256 of `query` (or the persisted-query extension "
        "is malformed)"
    ),
    ErrorCode.PERSISTED_QUERY_NOT_IN_LIST: (
        "trusted-documents mode: the operation is not one of the registered operations (nothing "
        "runs)"
    ),
    ErrorCode.GRAPHQL_PARSE_FAILED:
        "the query is not valid GraphQL syntax (no `data` in the answer)",
    ErrorCode.GRAPHQL_VALIDATION_FAILED: (
        "the query does not fit the schema, or `operationName` names no single operation (no "
        "`data`)"
    ),
    ErrorCode.DOCUMENT_LIMIT_EXCEEDED: (
        "the document or its `variables` is over a `[limits]` bound, named in `extensions.limit` "
        "with `max` (and `value`); nothing else was done (no `data`)"
    ),
    ErrorCode.QUERY_TOO_COMPLEX: (
        "the query may cost more upstream requests than `[limits] max_cost` (`extensions.cost`, "
        "`maxCost`), or its answer may hold more values than `max_response_values` "
        "(`extensions.responseValues`, `maxResponseValues`, and `largest`: the response keys down "
        "to where the answer multiplies); refused before it runs (no `data`)"
    ),
    ErrorCode.BAD_USER_INPUT: (
        "an argument, cursor or filter the client must change (also: a source that cannot answer "
        "an argument)"
    ),
    ErrorCode.UPSTREAM_TIMEOUT: "a source did not answer in time",
    ErrorCode.UPSTREAM_UNAVAILABLE: "a source could not be reached or failed (5xx)",
    ErrorCode.UPSTREAM_RATE_LIMITED: "a source is rate limiting the gateway (429)",
    ErrorCode.UPSTREAM_BAD_RESPONSE: "a source answered something the gateway cannot read",
    ErrorCode.UPSTREAM_UNAUTHORIZED: "a source refused the gateway's credentials (401/403)",
    ErrorCode.UPSTREAM_BUDGET_EXCEEDED: (
        "the request made the `[limits] max_upstream_requests` upstream requests it may "
        "(`extensions.maxUpstreamRequests`): this field or source was not asked, the rest arrives"
    ),
    ErrorCode.RESPONSE_TOO_LARGE: (
        "the answer would be longer than `[limits] max_response_bytes` "
        "(`extensions.maxResponseBytes`): building it stops there, and this error replaces it "
        "(`data` null)"
    ),
    ErrorCode.GATEWAY_TIMEOUT: (
        "the answer was not built within the request's deadline (`[server] "
        "request_timeout_seconds`): building it stops there (`data` null)"
    ),
    ErrorCode.SUBSCRIPTION_LIMIT: (
        "a subscription refused at its start: the connection has `[changes] "
        "max_subscriptions_per_connection`, the client its share `max_subscriptions_per_client`, "
        "the process `max_subscriptions`, or a source it names has no change feed; the connection "
        "stays"
    ),
    ErrorCode.SLOW_SUBSCRIBER: (
        "the subscriber fell `[changes] queue_size` events behind and was dropped "
        "(`extensions.lastEventId`: resume after it)"
    ),
    ErrorCode.SHUTTING_DOWN: (
        "the gateway is stopping: its subscriptions end (`extensions.lastEventId`); reconnect, to "
        "another replica, after that event"
    ),
    ErrorCode.SOURCE_REMOVED: (
        "a reload removed a source this subscription names in its filter: it ends "
        "(`extensions.lastEventId`); the other subscriptions go on"
    ),
    ErrorCode.INTERNAL_SERVER_ERROR:
        "a bug in the gateway (logged with its traceback; the client gets no detail)",
}

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
