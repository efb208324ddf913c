"""The GraphQL layer: Strawberry types, connections, loaders and the root Query.

It knows nothing of HTTP or of any upstream's dialect: it asks source adapters for records.
"""

from __future__ import annotations

from gateway.graph.schema import build_schema, print_sdl

__all__ = ["build_schema", "print_sdl"]
