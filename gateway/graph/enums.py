"""The records' own enums registered as the schema's enums (no translation per item)."""

from __future__ import annotations

import strawberry

from gateway.config import SourceKind
from gateway.sources.query import Direction, OrderField
from gateway.sources.records import Capability, GroupStatus

__all__ = ["Capability", "Direction", "GroupStatus", "OrderField", "SourceKind"]

strawberry.enum(SourceKind, description="The kind of upstream API a source is an instance of.")
strawberry.enum(GroupStatus)
strawberry.enum(Capability, name="SourceCapability", description="What a source can answer.")
strawberry.enum(Direction, name="OrderDirection")
strawberry.enum(OrderField, name="ProductGroupOrderField")
