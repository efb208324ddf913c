"""What the change feed announces: one change of one group or product of one source."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from enum import Enum

import msgspec

from gateway.sources.records import (
    GroupRecord,
    Inventory,
    ProductRecord,
    Variant,
    VariantOption,
)

__all__ = ["ChangeEvent", "ChangeType", "Topic", "decode_event", "encode_event"]


class ChangeType(Enum):
    CREATED = "CREATED"
    UPDATED = "UPDATED"
    DELETED = "DELETED"


class Topic(Enum):
    """What a poller watches and a subscription listens to."""

    GROUPS = "groups"
    PRODUCTS = "products"


Record = GroupRecord | ProductRecord


@dataclass(frozen=True, slots=True)
class ChangeEvent:
    topic: Topic
    change: ChangeType
    source: str
    record: Record  # for DELETED, the last state the gateway knew
    observed_at: datetime
    id: str = ""  # the bus's event id ("<milliseconds>-<sequence>"), ordered; set on publish
    # One subscriber's view only (never published): why its `node` could not be read for it.
    failure: Exception | None = None

    def with_id(self, event_id: str) -> ChangeEvent:
        return replace(self, id=event_id)

    def seen_as(self, record: Record | None, failure: Exception | None = None) -> ChangeEvent:
        """The event as one subscriber sees it: its own reading of the node (or why it could
        not read it)."""
        return replace(self, record=self.record if record is None else record, failure=failure)


class _Wire(msgspec.Struct, frozen=True):
    topic: str
    change: str
    source: str
    observed_at: datetime
    record: msgspec.Raw


def encode_event(event: ChangeEvent) -> bytes:
    """The event as JSON, for the Redis stream (its id is the stream's, not in the body)."""
    return msgspec.json.encode(_Wire(event.topic.value, event.change.value, event.source,
                                     event.observed_at, msgspec.Raw(encode_record(event.record))))


def decode_event(data: bytes, event_id: str) -> ChangeEvent:
    wire = msgspec.json.decode(data, type=_Wire)
    topic = Topic(wire.topic)
    return ChangeEvent(topic, ChangeType(wire.change), wire.source,
                       decode_record(topic, bytes(wire.record)), wire.observed_at, event_id)


def encode_record(record: Record) -> bytes:
    if isinstance(record, ProductRecord) and record.variants:
        record = msgspec.structs.replace(
            record, variants=[_plain(variant) for variant in record.variants])
    return msgspec.json.encode(record)


def _plain(variant: Variant) -> Variant:
    """The variant as the base type: an adapter's subclass would encode its upstream's names."""
    if type(variant) is Variant and all(type(o) is VariantOption for o in variant.options):
        return variant
    inventory = variant.inventory
    return Variant(**{
        **msgspec.structs.asdict(variant),
        "options": [VariantOption(**msgspec.structs.asdict(o)) for o in variant.options],
        "inventory": None if inventory is None else Inventory(**msgspec.structs.asdict(inventory)),
    })


def decode_record(topic: Topic, data: bytes) -> Record:
    kind: type[Record] = GroupRecord if topic is Topic.GROUPS else ProductRecord
    return msgspec.json.decode(data, type=kind)
