"""Error handling at the GraphQL edge: stable codes, source failures beside the data, no leaks.

* A :class:`~gateway.errors.GatewayError` keeps its message and ``extensions`` (code, source…).
* A source failure that cost part of a list (collected in the context) is added to ``errors``.
* Anything else raised in a resolver is a bug: it is logged with its traceback and the client
  gets ``INTERNAL_SERVER_ERROR`` with no detail. The log is bounded (:class:`LogBudget`): at most
  :data:`MAX_LOGGED_PER_REQUEST` tracebacks per request and a few per bug (exception type and
  the line that raised it) a minute; what is held back is counted and told with the next line.
* Errors graphql-core raises for bad arguments or variables get ``BAD_USER_INPUT``.
* Data served from a stale cache entry because its source failed is named in the response's
  ``extensions.stale``: ``[{"source": "joptic", "secondsPastFresh": 12.5}]``.
* A subscription's results get the same treatment, each event's as it is streamed (its source
  failures are its own: each event is resolved with a context of its own).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.types.execution import ExecutionResult, StreamExecutionResult
from strawberry.types.graphql import OperationType

from gateway.caches.bounded import BoundedDict
from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.errors import ErrorCode, GatewayError

__all__ = ["GatewayErrors", "LogBudget", "public_errors"]

logger = logging.getLogger("gateway.errors")

MAX_LOGGED_PER_REQUEST = 3  # tracebacks of one request; one line counts the rest
LogKey = tuple[str, ...]


@dataclass(slots=True)
class _Window:
    started: float
    logged: int = 0
    held: int = 0  # lines held back since the last one logged


class LogBudget:
    """At most ``per_window`` log lines per key in each ``window`` seconds.

    A bug that every request hits logs a few tracebacks a minute, not one per request; the lines
    held back are counted, and the next line logged for the key says how many. Keys are bounded
    (``max_keys``), whatever clients make happen.
    """

    def __init__(self, *, per_window: int = 5, window: float = 60.0, max_keys: int = 1024,
                 clock: Clock = SYSTEM_CLOCK) -> None:
        self.per_window = per_window
        self.window = window
        self.clock = clock
        self._windows: BoundedDict[LogKey, _Window] = BoundedDict(max_keys)

    def allow(self, key: LogKey) -> int | None:
        """None: do not log; else log, noting this many lines held back before it."""
        now = self.clock.monotonic()
        current = self._windows.get(key)
        if current is None or now - current.started >= self.window:
            held = current.held if current is not None else 0
            current = _Window(now, held=held)
            self._windows.put(key, current)
        if current.logged >= self.per_window:
            current.held += 1
            return None
        current.logged += 1
        held, current.held = current.held, 0
        return held


class GatewayErrors(SchemaExtension):
    def __init__(self, *, budget: LogBudget | None = None) -> None:
        self.budget = budget if budget is not None else LogBudget()
        self._executed = False  # past parsing and validation: execution began

    def on_execute(self) -> Iterator[None]:
        self._executed = True
        yield
        result = self.execution_context.result
        if result is not None:
            result.errors = self._public(result.errors)

    def on_stream_result(self, result: StreamExecutionResult) -> Iterator[None]:
        """A subscription's results are made after ``on_execute``: each is handled here, before
        it is sent. (Parse and validation errors are left as they are, as for queries.)"""
        context = self.execution_context
        if self._executed and context.operation_type is OperationType.SUBSCRIPTION and \
                isinstance(result, ExecutionResult):
            result.errors = self._public(result.errors)
        yield

    def _public(self, errors: list[GraphQLError] | None) -> list[GraphQLError] | None:
        """``errors`` as the client sees them, and the source failures the context reported."""
        unexpected: list[GraphQLError] = []
        public = [_public(error, unexpected) for error in errors or ()]
        if unexpected:
            self._log(unexpected)
        public += getattr(self.execution_context.context, "errors", [])
        return public or None

    def _log(self, unexpected: list[GraphQLError]) -> None:
        _log(unexpected, self.budget)

    def get_results(self) -> dict[str, Any]:
        scope = getattr(self.execution_context.context, "scope", None)
        results: dict[str, Any] = dict(getattr(scope, "notices", {}))
        stale: dict[str, float] = getattr(scope, "stale", {})
        if stale:
            results["stale"] = [{"source": source, "secondsPastFresh": age}
                                for source, age in sorted(stale.items())]
        return results


# The log budget of the errors of an answer's later parts (gateway/graph/incremental.py), made
# after the schema's extensions are done with the request.
LATER_PARTS_BUDGET = LogBudget()


def public_errors(errors: list[GraphQLError]) -> list[GraphQLError]:
    """Errors of an answer's later part as the client sees them (those of its first part:
    :class:`GatewayErrors`); the unexpected ones logged."""
    unexpected: list[GraphQLError] = []
    public = [_public(error, unexpected) for error in errors]
    if unexpected:
        _log(unexpected, LATER_PARTS_BUDGET)
    return public


def _log(unexpected: list[GraphQLError], budget: LogBudget) -> None:
    """Tracebacks of a request's unexpected errors, within the request's and the budget's
    bounds; one more line counts the rest (bounded by the budget too)."""
    logged = 0
    for error in unexpected:
        if logged == MAX_LOGGED_PER_REQUEST:
            break
        original = error.original_error
        assert original is not None
        held = budget.allow(_bug(original))
        if held is None:
            continue
        logged += 1
        note = f" ({held} like it not logged before)" if held else ""
        logger.error("unexpected error at %s%s", error.path, note, exc_info=original)
    rest = len(unexpected) - logged
    if rest and budget.allow(("held back",)) is not None:
        logger.error("%d more unexpected errors in this request were not logged", rest)


def _bug(error: BaseException) -> LogKey:
    """What identifies a bug: the exception's type and the line that raised it."""
    tb = error.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    where = (tb.tb_frame.f_code.co_filename, str(tb.tb_lineno)) if tb is not None else ("", "")
    return (type(error).__qualname__, *where)


def _public(error: GraphQLError, unexpected: list[GraphQLError]) -> GraphQLError:
    """The error as the client sees it; an unexpected one is added to ``unexpected`` (to log)."""
    original = error.original_error
    if isinstance(original, GatewayError):
        return error
    if original is None or isinstance(original, GraphQLError):
        # graphql-core's own (argument and variable coercion, wrapped scalar errors).
        extensions = error.extensions or {}
        if "code" not in extensions:
            error.extensions = {**extensions, "code": ErrorCode.BAD_USER_INPUT.value}
        return error
    unexpected.append(error)
    return GraphQLError("Internal server error", nodes=error.nodes, path=error.path,
                        extensions={"code": ErrorCode.INTERNAL_SERVER_ERROR.value})
