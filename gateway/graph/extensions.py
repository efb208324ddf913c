"""Error handling at the GraphQL edge: stable codes, source failures beside the data, no leaks.

* A :class:`~gateway.errors.GatewayError` keeps its message and ``extensions`` (code, source…).
* A source failure that cost part of a list (collected in the context) is added to ``errors``.
* Anything else raised in a resolver is a bug: it is logged with its traceback and the client
  gets ``INTERNAL_SERVER_ERROR`` with no detail.
* Errors graphql-core raises for bad arguments or variables get ``BAD_USER_INPUT``.
* Data served from a stale cache entry because its source failed is named in the response's
  ``extensions.stale``: ``[{"source": "joptic", "secondsPastFresh": 12.5}]``.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from gateway.errors import ErrorCode, GatewayError

__all__ = ["GatewayErrors"]

logger = logging.getLogger("gateway.errors")


class GatewayErrors(SchemaExtension):
    def on_execute(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is None:
            return
        errors = [_public(error) for error in result.errors or ()]
        context = self.execution_context.context
        errors += getattr(context, "errors", [])
        result.errors = errors or None

    def get_results(self) -> dict[str, Any]:
        scope = getattr(self.execution_context.context, "scope", None)
        stale: dict[str, float] = getattr(scope, "stale", {})
        if not stale:
            return {}
        return {"stale": [{"source": source, "secondsPastFresh": age}
                          for source, age in sorted(stale.items())]}


def _public(error: GraphQLError) -> GraphQLError:
    original = error.original_error
    if isinstance(original, GatewayError):
        return error
    if original is None or isinstance(original, GraphQLError):
        # graphql-core's own (argument and variable coercion, wrapped scalar errors).
        extensions = error.extensions or {}
        if "code" not in extensions:
            error.extensions = {**extensions, "code": ErrorCode.BAD_USER_INPUT.value}
        return error
    logger.error("unexpected error at %s", error.path, exc_info=original)
    return GraphQLError("Internal server error", nodes=error.nodes, path=error.path,
                        extensions={"code": ErrorCode.INTERNAL_SERVER_ERROR.value})
