"""GraphQL object types of the schema contract."""

from __future__ import annotations

from enum import Enum

import strawberry

from gateway.config import SourceConfig

__all__ = ["Source", "SourceKind"]


@strawberry.enum(description="The kind of upstream API a source is an instance of.")
class SourceKind(Enum):
    CARECLOUD = "carecloud"
    JOPTIC = "joptic"
    AXIM = "axim"
    COMESTRI = "comestri"


@strawberry.type(description="One configured upstream catalogue.")
class Source:
    id: strawberry.ID = strawberry.field(
        description="The source's configured name: its identity in ids, errors and metrics."
    )
    kind: SourceKind

    @classmethod
    def from_config(cls, source: SourceConfig) -> Source:
        return cls(id=strawberry.ID(source.name), kind=SourceKind(source.kind.value))
