"""``@defer`` over multipart HTTP, as Apollo Client 4 receives and merges it.

Comestri, the one source that lists ``products``, answers 2 s late; the product groups come
from the other sources at once. With ``products`` deferred, Apollo Client must emit the groups
first (dataState "streaming", no products yet) and, once the slow part came, the whole result,
equal to the same query's plain answer. Both of Apollo's incremental handlers are run: each sends
its own Accept header and reads its own payload format:

* ``Defer20220824Handler`` (``defer20220824``): ``multipart/mixed;deferSpec=20220824``; later
  parts carry ``incremental: [{data, path, label}]``.
* ``GraphQL17Alpha9Handler`` (``alpha9``): ``multipart/mixed;incrementalSpec=v0.2``; the first
  part announces ``pending: [{id, path, label}]``, later ones carry ``incremental: [{id, data}]``
  and ``completed: [{id}]``.

Each runs with two fetch policies: ``network-only`` (the parts written to and read back from
the normalized cache) and ``no-cache`` (the handler's merge as it is: stricter about the
``pending`` labels, without which Apollo takes the first part for the complete result).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import RunningEmulator, RunningGateway
from tests.helpers import post
from tests.incremental.conftest import HANDLERS, Apollo, ApolloRun

pytestmark = pytest.mark.slow  # `make test-fast` skips this group

SLOW_MS = 2000  # Comestri's added latency
FETCH_POLICIES = ("network-only", "no-cache")
SPEC = {"defer20220824": "deferspec=20220824", "alpha9": "incrementalspec=v0.2"}

DEFERRED = """query Catalogue {
  groups: productGroups(first: 3) { nodes { id name } }
  ... @defer(label: "slow") { products(first: 3) { nodes { id name } } }
}"""
# The same query without @defer, with the __typename fields Apollo Client adds to every
# selection set (the root's comes with the deferred fragment's).
PLAIN = """query Catalogue {
  __typename
  groups: productGroups(first: 3) { __typename nodes { __typename id name } }
  products(first: 3) { __typename nodes { __typename id name } }
}"""


def _check_wire_format(run: ApolloRun, handler: str) -> None:
    """The answer was multipart in the format the handler asked for (Defer20220824Handler
    would also merge a root-level part of the other format: the handler alone cannot tell)."""
    content_type = str(run.response.get("contentType")).lower()
    assert run.response.get("status") == 200, run.response
    assert content_type.startswith("multipart/mixed"), run.response
    assert SPEC[handler] in content_type.replace(" ", ""), run.response
    parts = run.parts
    assert len(parts) >= 2, parts
    first, later = parts[0], parts[1:]
    assert first["hasNext"] is True and "products" not in first["data"], first
    assert parts[-1]["hasNext"] is False, parts[-1]
    assert all(p["hasNext"] is True for p in parts[:-1]), parts
    incremental = [entry for part in later for entry in part.get("incremental", ())]
    assert incremental, later
    if handler == "defer20220824":
        assert "pending" not in first, first
        for entry in incremental:
            assert (entry.get("path"), entry.get("label")) == ([], "slow"), entry
            assert "id" not in entry, entry
    else:
        # The label echoed: Apollo tracks a pending @defer by it (the query's own label).
        pending = [(p.get("path"), p.get("label")) for p in first.get("pending", ())]
        assert pending == [([], "slow")], first
        pending_id = first["pending"][0]["id"]
        assert [entry.get("id") for entry in incremental] == [pending_id], incremental
        completed = [c for part in later for c in part.get("completed", ())]
        assert completed == [{"id": pending_id}], completed


@pytest.mark.parametrize("fetch_policy", FETCH_POLICIES)
@pytest.mark.parametrize("handler", HANDLERS)
def test_apollo_client_merges_a_deferred_slow_source(
        apollo: Apollo, gateway_server: RunningGateway,
        emulator: Callable[[str], RunningEmulator], handler: str, fetch_policy: str) -> None:
    plain: dict[str, Any] = post(gateway_server.url, PLAIN).json()
    assert plain.get("errors") is None, plain
    expected: dict[str, Any] = plain["data"]
    assert len(expected["groups"]["nodes"]) == 3 and len(expected["products"]["nodes"]) == 3

    emulator("comestri").faults.set(latency_ms=SLOW_MS)
    run = apollo.run(f"{gateway_server.url}/graphql", handler, DEFERRED,
                     fetch_policy=fetch_policy)

    _check_wire_format(run, handler)
    results = run.with_data
    assert len(results) >= 2, run.results
    first, last = results[0], results[-1]
    assert first["dataState"] == "streaming", first
    assert first["data"]["groups"] == expected["groups"], first
    assert "products" not in first["data"], first
    assert last["dataState"] == "complete" and last["errors"] is None, last
    assert last["data"] == expected, (last, expected)
    # The groups came well before the slow source's products (not a wall-clock bound on either):
    # a part is only handed on once the boundary after it arrived.
    assert last["t"] - first["t"] >= SLOW_MS / 2, (
        "the groups were not delivered ahead of the slow part: (ms, dataState) "
        f"{[(r['t'], r['dataState']) for r in results]}")
