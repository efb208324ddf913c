"""The root Query and the schema object."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from gateway.graph.context import GatewayContext
from gateway.graph.types import Source

__all__ = ["Query", "build_schema", "print_sdl"]


@strawberry.type
class Query:
    @strawberry.field(description="The configured sources, in configuration order.")
    def sources(self, info: Info[GatewayContext, None]) -> list[Source]:
        return [Source.from_config(s) for s in info.context.config.sources]


def build_schema() -> strawberry.Schema:
    return strawberry.Schema(query=Query)


def print_sdl() -> str:
    """The published SDL (``schema/schema.graphql`` is this text)."""
    return build_schema().as_str() + "\n"
