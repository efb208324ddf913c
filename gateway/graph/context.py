"""The GraphQL context: what every resolver of one request may use."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from graphql import GraphQLError

from gateway.errors import GatewayError
from gateway.graph.loaders import RequestLoaders
from gateway.scope import RequestScope
from gateway.sources.base import SourceAdapter

__all__ = ["GatewayContext"]


@dataclass
class GatewayContext:
    """Everything a resolver may use for one GraphQL request.

    ``scope`` goes with every upstream call (language, request id, deadline, per-request memos);
    ``loaders`` batch and de-duplicate lookups; ``errors`` collects source failures that cost
    part of a list but not the field, to be reported beside the data.
    """

    adapters: Mapping[str, SourceAdapter]
    scope: RequestScope
    loaders: RequestLoaders = field(init=False)
    errors: list[GraphQLError] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.loaders = RequestLoaders(self.adapters, self.scope)

    def report(self, error: GatewayError, path: list[str | int] | None = None) -> None:
        """Record a source failure that leaves the rest of the answer intact."""
        if any((e.extensions or {}).get("source") == error.source
               and (e.extensions or {}).get("code") == error.code.value
               and e.path == path for e in self.errors):
            return
        self.errors.append(GraphQLError(error.message, path=path, extensions=error.extensions))
