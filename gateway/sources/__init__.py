"""Source adapters: one module per upstream kind behind :class:`SourceAdapter`."""

from __future__ import annotations

import httpx

from gateway.clock import SYSTEM_CLOCK, Clock
from gateway.config import SourceConfig, SourceKind
from gateway.sources.axim import AximAdapter
from gateway.sources.base import SourceAdapter
from gateway.sources.carecloud import CareCloudAdapter
from gateway.sources.comestri import ComestriAdapter
from gateway.sources.joptic import JopticAdapter
from gateway.upstream.client import Memo, UpstreamClient

__all__ = ["ADAPTERS", "SourceAdapter", "build_adapter"]

ADAPTERS: dict[SourceKind, type[SourceAdapter]] = {
    SourceKind.CARECLOUD: CareCloudAdapter,
    SourceKind.JOPTIC: JopticAdapter,
    SourceKind.AXIM: AximAdapter,
    SourceKind.COMESTRI: ComestriAdapter,
}


def build_adapter(config: SourceConfig, *, transport: httpx.AsyncBaseTransport | None = None,
                  clock: Clock = SYSTEM_CLOCK, memo: Memo | None = None) -> SourceAdapter:
    """The adapter for one configured source, with its own upstream client (keeping what it
    reads in ``memo``, the process's, or its own)."""
    adapter_class = ADAPTERS[config.kind]
    client = UpstreamClient(config, auth_headers=adapter_class.auth_headers(config.secret()),
                            credential_headers=(adapter_class.auth_headers
                                                if config.pass_through_header else None),
                            transport=transport, clock=clock, memo=memo)
    return adapter_class(config, client, clock=clock)
