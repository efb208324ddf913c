"""Memory under the default bounds: distinct documents at the size limits grow a gateway process
(``serve``, measured by its RSS) by less than the document cache's bound plus a stated margin.

Measured on the development machine: +9 to +18 MB under the default bound (32 MB of estimated
document memory); +275 MB with the bound lifted (as when the caches counted entries)."""

from __future__ import annotations

import sys
from pathlib import Path

import httpx
import pytest

from gateway.config import LimitSettings
from tests.processes import Process

# What a process may grow by besides the documents the cache keeps: allocator arenas and
# buffers that serving ~100 MB of requests leaves behind.
MARGIN = 16_000_000


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def long_document(n: int) -> str:
    """Near the body limit (1 MB): one long string, accepted, never answered from upstream."""
    return f'{{ node(id: "{n}-' + "x" * 900_000 + '") { id } }'


def many_tokens(n: int) -> str:
    """Near the token limit: accepted (ids that name nothing cost nothing), and kept."""
    ids = ", ".join(f'"{n}-{i}"' for i in range(LimitSettings().max_tokens - 20))
    return f"{{ nodes(ids: [{ids}]) {{ id }} }}"


@pytest.mark.slow  # ~25 s: 220 requests of up to 1 MB, each parsed
def test_distinct_documents_at_the_limits_stay_within_the_cache_bound(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text('[server]\nport = 0\ncursor_secret = "memory-test-secret-0123456789abcdef"\n'
                    '[[sources]]\nname = "cc"\nkind = "carecloud"\n'
                    'base_url = "http://127.0.0.1:9"\ntoken = "t"\n')
    with Process([sys.executable, "-m", "gateway", "serve", "--config", str(path)]) as serve:
        url = serve.wait_for(r"Uvicorn running on (http://\S+)").group(1) + "/graphql"
        pid = serve._popen.pid  # type: ignore[union-attr]
        with httpx.Client(timeout=60) as client:
            def send(query: str) -> None:
                response = client.post(url, json={"query": query})
                assert response.status_code == 200, response.text[:300]

            for n in range(10):  # the process's steady state: everything imported and warm
                send(long_document(-n))
                send(many_tokens(-n))
            before = rss(pid)
            for n in range(100):
                send(long_document(n))
                send(many_tokens(n))
            grown = rss(pid) - before
    bound = LimitSettings().document_cache_bytes
    assert grown < bound + MARGIN, (grown, bound)
