"""Memory acceptance: a gateway process under the default cache bounds, fed what makes caches
grow, grows by less than the configured bounds plus a stated margin (RSS from /proc).

A real ``python -m gateway serve`` over the session's emulators (which run in this test process,
so their memory is not counted). Three workloads, each of which grew the process without bound
while the caches were bounded by entry counts, or not at all:

* distinct ``Accept-Language`` values (each makes fresh upstream cache keys, a fresh decoded answer
  and parsed records, and a fresh group table per source): +460 MiB for 1,000 values before;
* distinct large upstream answers (Comestri products with distinct dates: one store entry each,
  ~66 KB): +156 MiB for 2,000 answers before, and growing;
* distinct documents near the size limit (each kept by the document caches).

The upstream side (the first two) is checked on its own first, against the store's and the
memo's bounds; then the documents, against every bound. The constants below are the knobs to
adapt as the document limits and the language normalisation land: the document size, the counts,
and the bounds (the configured bounds + MARGIN).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from gateway.config import CacheSettings, LimitSettings
from gateway.emulators import DEMO_TOKENS, KINDS
from tests.conftest import RunningEmulator
from tests.helpers import error_codes, free_port, post, wait_healthy
from tests.processes import Process

MIB = 2**20
# Distinct documents near the size limit: the largest body accepted is [server] max_body_bytes
# (1,000,000 by default); the JSON around the query and its escapes take the rest.
DOCUMENT_BYTES = 900_000
DOCUMENTS = 100
LANGUAGES = 1_000
# Distinct large upstream answers: queries of ALIASES Comestri pages each (100 products with every
# field, ~66 KB a page): 1,500 answers, ~100 MB, more than the store's default bound.
DATE_QUERIES = 150
ALIASES = 10
# The configured bounds (defaults) of what these workloads fill.
STORE_BOUND = CacheSettings().memory_max_bytes  # upstream answers in memory
MEMO_BOUND = CacheSettings().decoded_max_bytes  # decoded answers, parsed records, group tables
# Parsed documents with their validation and plans ([limits] document_cache_bytes). Documents of
# DOCUMENT_BYTES are refused by the token limit before they are kept (tests/graph_e2e/
# test_document_memory.py fills the cache itself); what they leave is counted all the same.
DOCUMENT_BOUND = LimitSettings().document_cache_bytes
# What a process keeps beyond its caches after such a load: freed memory the allocator holds for
# reuse (fragmentation of the arenas that held transient request data: four requests at a time,
# each decoding answers of up to 140 KB), and the estimates' error. Measured: the upstream side
# settles at +97..102 MiB, under its 128 MiB of bounds.
MARGIN = 48 * MIB
UPSTREAM_BOUND = STORE_BOUND + MEMO_BOUND + MARGIN
BOUND = UPSTREAM_BOUND + DOCUMENT_BOUND

Emulators = dict[str, RunningEmulator]
TABLES = """query Tables { productGroups(first: 100, orderBy: {field: NAME}) {
  totalCount nodes { name parent { name } } } }"""
# One document, distinct variables: the store and the memo grow, the document caches do not.
PAGE = ("{ nodes { name status description categories attributes { code value } "
        "productClass { name } } }")
DATES = "query Dates(" + ", ".join(f"$d{i}: DateTime!" for i in range(ALIASES)) + ") { " + " ".join(
    f'p{i}: products(first: 100, filter: {{sources: ["comestri"], createdAfter: $d{i}}}) {PAGE}'
    for i in range(ALIASES)) + " }"


def dates(n: int) -> dict[str, object]:
    """The n-th variables of DATES: ALIASES dates no other n has (all match every product)."""
    return {f"d{i}": f"20{i:02d}-01-01T{n // 3600:02d}:{n // 60 % 60:02d}:{n % 60:02d}Z"
            for i in range(ALIASES)}


def rss(pid: int) -> tuple[int, int]:
    """The process's resident set size now and at its peak, in bytes."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text()
                  .splitlines())
    return int(fields["VmRSS"].split()[0]) * 1024, int(fields["VmHWM"].split()[0]) * 1024


def document(i: int) -> str:
    """A distinct query of DOCUMENT_BYTES: a small operation, padded with comment lines."""
    head = f"# document {i}\n{{ sources {{ id }} }}\n"
    line = "# " + "x" * 97 + "\n"
    body = line * ((DOCUMENT_BYTES - len(head)) // len(line))
    return head + body + "#" * (DOCUMENT_BYTES - len(head) - len(body))


@pytest.fixture
def gateway(emulator_servers: Emulators, tmp_path: Path) -> Iterator[tuple[str, int]]:
    """A gateway process with the default cache bounds; yields its URL and pid."""
    lines = ["[server]", "graphiql = false", 'cursor_secret = "memory-test-cursor-secret"', ""]
    for kind in KINDS:
        lines += ["[[sources]]", f'name = "{kind}"', f'kind = "{kind}"',
                  f'base_url = "{emulator_servers[kind].url}"',
                  f'token = "{DEMO_TOKENS[kind]}"', ""]
    config = tmp_path / "gateway.toml"
    config.write_text("\n".join(lines))
    port = free_port()
    with Process([sys.executable, "-m", "gateway", "serve", "--config", str(config),
                  "--port", str(port), "--log-level", "warning"]) as process:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, exited=process.ended)
        yield url, process.pid


# One request: its query, its variables and its Accept-Language.
Request = tuple[str, dict[str, object] | None, str | None]


def post_and_check(client: httpx.Client, request: Request, refused: str | None = None
                   ) -> None:
    """One request, answered without errors (or refused with the code ``refused``)."""
    query, variables, language = request
    headers = {"accept-language": language} if language else {}
    response = post(client, query, variables, headers, timeout=60)
    assert response.status_code == 200, response.text[:500]
    errors = response.json().get("errors")
    if refused is None:
        assert errors is None, response.text[:500]
    else:
        assert error_codes(errors) == [refused], response.text[:500]


def run(url: str, requests: list[Request], refused: str | None = None) -> None:
    """The requests, four at a time (the machine has two cores; the emulators share them)."""
    with httpx.Client(base_url=url) as client, ThreadPoolExecutor(4) as pool:
        for future in [pool.submit(post_and_check, client, request, refused)
                       for request in requests]:
            future.result()


def growth(grown: dict[str, int], baseline: int, peak: int) -> str:
    steps = ", ".join(f"after {name}: +{size / MIB:.1f} MiB" for name, size in grown.items())
    return (f"RSS from {baseline / MIB:.1f} MiB; {steps}; peak +{(peak - baseline) / MIB:.1f} "
            f"MiB; bounds: upstream {UPSTREAM_BOUND / MIB:.0f} MiB, all {BOUND / MIB:.0f} MiB")


@pytest.mark.slow
def test_caches_grow_the_process_by_less_than_their_bounds(
    gateway: tuple[str, int], capsys: pytest.CaptureFixture[str],
) -> None:
    url, pid = gateway
    # Warm up what every process allocates once (schema, plans, first requests of each kind).
    run(url, [(document(-1), None, None)] * 2, refused="DOCUMENT_LIMIT_EXCEEDED")
    run(url, [(TABLES, None, "cs"), (DATES, dates(DATE_QUERIES), None)] * 2)
    baseline, _ = rss(pid)
    grown: dict[str, int] = {}

    run(url, [(TABLES, None, f"en-x{i:03d}") for i in range(LANGUAGES)])
    grown["languages"] = rss(pid)[0] - baseline
    run(url, [(DATES, dates(i), None) for i in range(DATE_QUERIES)])
    grown["dates"] = rss(pid)[0] - baseline
    with capsys.disabled():
        print(f"\n{growth(grown, baseline, rss(pid)[1])}")
    assert max(grown.values()) < UPSTREAM_BOUND, growth(grown, baseline, rss(pid)[1])

    run(url, [(document(i), None, None) for i in range(DOCUMENTS)],
        refused="DOCUMENT_LIMIT_EXCEEDED")
    grown["documents"] = rss(pid)[0] - baseline
    report = growth(grown, baseline, rss(pid)[1])
    with capsys.disabled():
        print(report)
    assert grown["documents"] < BOUND, report
