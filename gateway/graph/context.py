"""The one request context that travels from the HTTP edge to the upstream client."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from graphql import GraphQLError

from gateway.config import Config
from gateway.errors import GatewayError
from gateway.upstream.client import RequestScope

if TYPE_CHECKING:
    from gateway.graph.catalogue import Catalogue
    from gateway.sources.base import SourceAdapter

__all__ = ["GatewayContext"]


@dataclass
class GatewayContext:
    """Everything a resolver may use for one GraphQL request.

    ``scope`` goes with every upstream call (language, request id, in-request de-duplication);
    ``catalogue`` holds the per-request loaders; ``errors`` collects source failures that cost
    part of a list but not the field, to be reported beside the data.
    """

    config: Config
    adapters: dict[str, SourceAdapter]
    scope: RequestScope
    catalogue: Catalogue = field(init=False)
    errors: list[GraphQLError] = field(default_factory=list)

    def __post_init__(self) -> None:
        from gateway.graph.catalogue import Catalogue

        self.catalogue = Catalogue(self)

    def report(self, error: GatewayError, path: list[str | int] | None = None) -> None:
        """Record a source failure that leaves the rest of the answer intact."""
        if any((e.extensions or {}).get("source") == error.source
               and (e.extensions or {}).get("code") == error.code.value
               and e.path == path for e in self.errors):
            return
        self.errors.append(GraphQLError(error.message, path=path, extensions=error.extensions))
