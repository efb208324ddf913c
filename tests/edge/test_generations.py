"""What a reload's next runtime takes over from the running one: the metrics always, the
upstream store while ``[cache]`` is unchanged, and the breaker of every source it left as it
was (a source whose breaker is open stays spared)."""

from __future__ import annotations

from gateway.config import parse_config
from gateway.edge.runtime import Runtime
from gateway.upstream.breaker import BreakerState


def config(joptic_timeout: float = 10.0, namespace: str = "cgw") -> dict[str, object]:
    sources = [{"name": "joptic", "kind": "joptic", "base_url": "http://127.0.0.1:9/api",
                "token": "t0k3n-joptic", "timeout_seconds": joptic_timeout},
               {"name": "axim", "kind": "axim", "base_url": "http://127.0.0.1:9/api",
                "token": "t0k3n-axim"}]
    return {"server": {"profile": "development"}, "metrics": {"enabled": True},
            "cache": {"namespace": namespace}, "sources": sources}


async def test_the_next_runtime_keeps_what_the_reload_left_unchanged() -> None:
    first = Runtime.build(parse_config(config()))
    for _ in range(10):  # failures enough to open its breaker
        first.health["axim"].failed("UPSTREAM_UNAVAILABLE")
    assert first.health["axim"].state is BreakerState.OPEN
    second = Runtime.build(parse_config(config(joptic_timeout=5.0)), previous=first)
    try:
        assert second.metrics is first.metrics and second.store is first.store
        assert second.health["axim"] is first.health["axim"]  # unchanged: still open
        assert second.health["axim"].state is BreakerState.OPEN
        assert second.health["joptic"] is not first.health["joptic"]  # its settings changed
        third = Runtime.build(parse_config(config(namespace="other")), previous=second)
        assert third.store is not second.store
        await third.aclose()
    finally:
        await second.aclose(keep_store=False)
        await first.aclose(keep_store=True)
