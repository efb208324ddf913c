"""Automatic persisted queries across two gateway processes on one Redis (issue 15): a
hash-only request misses, the hash with its query registers, and then the hash alone hits — in
the other process. Also: a mismatching hash is refused, and a query that fails validation is
not registered.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import RunningEmulator
from tests.helpers import post
from tests.leaks import SecretScan
from tests.resilience.conftest import gateway_processes, new_namespace

Emulators = dict[str, RunningEmulator]
QUERY = '{ productGroups(first: 3, filter: {sources: ["joptic"]}) { nodes { id name } } }'
HASH = hashlib.sha256(QUERY.encode()).hexdigest()
INVALID = "{ productGroups(first: 3) { noSuchField } }"


def _apq(digest: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": digest}}


def test_apq_misses_registers_and_hits_across_two_processes_on_redis(
        emulator_servers: Emulators, emulator: Callable[[str], RunningEmulator], tmp_path: Path,
        redis_url: str, no_secret_leaks: SecretScan) -> None:
    scan = no_secret_leaks
    shared = new_namespace()
    with gateway_processes(emulator_servers, tmp_path, redis_url, [shared, shared]) as (a, b):
        miss = post(b.url, scan=scan, extensions=_apq(HASH))
        assert miss.status_code == 200
        error = miss.json()["errors"][0]
        assert error["message"] == "PersistedQueryNotFound"  # what Apollo clients look for
        assert error["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
        assert sum(len(e.log) for e in emulator_servers.values()) == 0

        mismatch = post(a.url, QUERY, scan=scan, extensions=_apq("0" * 64))
        assert mismatch.status_code == 400
        assert mismatch.json()["errors"][0]["extensions"]["code"] == (
            "PERSISTED_QUERY_HASH_MISMATCH")

        registered = post(a.url, QUERY, scan=scan, extensions=_apq(HASH))
        data = registered.json()["data"]
        assert len(data["productGroups"]["nodes"]) == 3, registered.text

        hit = post(b.url, scan=scan, extensions=_apq(HASH))  # the other process
        assert hit.json() == {"data": data}
        get = httpx.get(f"{b.url}/graphql", params={"extensions": json.dumps(_apq(HASH))},
                        timeout=30)
        assert scan.seen(get.text) and get.json() == {"data": data}

        # A document that fails validation is answered with its errors and never registered.
        invalid = hashlib.sha256(INVALID.encode()).hexdigest()
        refused = post(a.url, INVALID, scan=scan, extensions=_apq(invalid))
        assert refused.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
        for process in (a, b):
            again = post(process.url, scan=scan, extensions=_apq(invalid))
            assert again.json()["errors"][0]["extensions"]["code"] == (
                "PERSISTED_QUERY_NOT_FOUND")
