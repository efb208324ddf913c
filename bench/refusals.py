"""The milliseconds each refusal costs: every attack of issues 11 and 22 sent to the gateway in
process.

    python -m bench.refusals [--repeat 20]

The gateway app runs in this process behind httpx's ASGI transport (no sockets: the time is the
gateway's own, from the request body to the error response). Its sources point at a closed
port, so any upstream call would show as an upstream error: each refusal is checked to answer
its own code before any timing. Each request carries a document no earlier request sent (a
counter in a comment or a name), so no cache helps. Prints one row per refusal: the code (and
limit), the request body's size, and the median and slowest milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from gateway.config import Config, LimitSettings
from gateway.demo import demo_config
from gateway.edge.app import create_app
from gateway.emulators import KINDS

CLOSED = "http://127.0.0.1:9"  # the discard port: nothing answers there


@dataclass(frozen=True)
class Refusal:
    name: str
    expected: str  # "CODE" or "CODE/limit"
    body: Callable[[int], dict[str, Any]]  # the n-th request's JSON body
    gateway: str = "default"


def _aliases(n: int) -> dict[str, Any]:
    searches = " ".join(f'p{i}:products(first:1,search:"{chr(97 + i % 26)}{n}")'
                        "{nodes{name}}" for i in range(40))
    return {"query": f'{{productGroups(first:100,filter:{{sources:["axim"]}}){{nodes{{'
                     f"{searches}}}}}}}"}


def _fragments(groups: int, products: int) -> Callable[[int], dict[str, Any]]:
    def body(n: int) -> dict[str, Any]:
        lists = " ".join(f"g{i}: productGroups(first: 100) {{ ...Groups }}"
                         for i in range(groups))
        nested = " ".join(f"p{i}: products(first: 100) {{ ...Products }}"
                          for i in range(products))
        return {"query": f"query Amplify{n} {{ {lists} }} fragment Groups on "
                         f"ProductGroupConnection {{ nodes {{ id name {nested} }} }} "
                         "fragment Products on ProductConnection { totalCount nodes { id name "
                         "sku price variants { sku options { name value } } } }"}
    return body


def _unused_variables(n: int) -> dict[str, Any]:
    definitions = " ".join(f"$v{i}: Int" for i in range(62_500))
    return {"query": f"query Q{n}({definitions}) {{ sources {{ id }} }}"}


def _variables_map(n: int) -> dict[str, Any]:
    return {"query": f"query Q{n} {{ sources {{ id }} }}",
            "variables": {f"v{i}": i for i in range(40_000)}}


def _quadratic(n: int) -> dict[str, Any]:
    return {"query": f"query Q{n} {{ productGroups {{ nodes {{ "
                     + "parent { name } " * 490 + "} } }"}


def _deep(n: int) -> dict[str, Any]:
    return {"query": f"query Q{n} {{ productGroups {{ nodes {{ "
                     + "parent { " * 20 + "name" + " }" * 20 + " } } }"}


PRODUCT = ("fragment P on Product { id upstreamId name sku price status description categories "
           "createdAt updatedAt source { id kind } productClass { upstreamId name } "
           "attributes { code value } variants { upstreamId sku name price cost salePrice "
           "isActive options { name label value } inventory { stock minStock } } }")


def _answer_size(n: int) -> dict[str, Any]:
    """30 aliases of every Axim group with its first 50 products, every field (~70 MB)."""
    lists = " ".join(f'a{i}: productGroups(first: 100, filter: {{sources: ["axim"]}}) '
                     "{ nodes { id name products(first: 50) { nodes { ...P } } } }"
                     for i in range(30))
    return {"query": f"query Shelves{n} {{ {lists} }} {PRODUCT}"}


def _operation_name(n: int) -> dict[str, Any]:
    return {"query": "{ sources { id } }", "operationName": f"N{n}" + "x" * 900_000}


def _comments(n: int) -> dict[str, Any]:
    return {"query": "\n".join(f"# {n} padding {i}" for i in range(30_000))
                     + "\n{ sources { id } }"}


def _oversized(n: int) -> dict[str, Any]:
    return {"query": f"# {n} " + "x" * 1_100_000 + "\n{ sources { id } }"}


REFUSALS = (
    Refusal("40 aliased product searches (1.6 KB)", "DOCUMENT_LIMIT_EXCEEDED/max_aliases",
            _aliases),
    Refusal("the same, aliases allowed: its cost", "QUERY_TOO_COMPLEX", _aliases, "lenient"),
    Refusal("aliases x aliases through fragments", "DOCUMENT_LIMIT_EXCEEDED/max_aliases",
            _fragments(10, 10)),
    Refusal("3 x 9 aliases through fragments: cost", "QUERY_TOO_COMPLEX", _fragments(3, 9)),
    Refusal("62,500 unused variables (~820 KB)", "DOCUMENT_LIMIT_EXCEEDED/max_tokens",
            _unused_variables),
    Refusal("40,000 entries in `variables`", "DOCUMENT_LIMIT_EXCEEDED/max_variables",
            _variables_map),
    Refusal("490 mergeable fields (quadratic validation)",
            "DOCUMENT_LIMIT_EXCEEDED/max_validation_work", _quadratic),
    Refusal("fields 23 deep", "DOCUMENT_LIMIT_EXCEEDED/max_depth", _deep),
    Refusal("30,000 comments", "DOCUMENT_LIMIT_EXCEEDED/max_tokens", _comments),
    Refusal("a 1.1 MB body", "PAYLOAD_TOO_LARGE", _oversized),
    Refusal("30 x 100 groups x 50 products, every field (~70 MB)", "QUERY_TOO_COMPLEX",
            _answer_size),
    Refusal("a 900 KB `operationName`", "BAD_USER_INPUT", _operation_name),
)


def _config(**limits: Any) -> Config:
    base = demo_config({kind: f"{CLOSED}/{kind}" for kind in KINDS})
    return base.model_copy(update={
        "server": base.server.model_copy(update={"access_log": False}),
        "limits": LimitSettings(**limits)})


def _code(response: httpx.Response) -> str:
    error = response.json()["errors"][0]
    extensions = error.get("extensions", {})
    limit = extensions.get("limit")
    return f"{extensions.get('code')}/{limit}" if limit else str(extensions.get("code"))


async def measure(repeat: int) -> list[tuple[Refusal, int, list[float]]]:
    apps = {"default": create_app(_config()), "lenient": create_app(_config(max_aliases=200))}
    clients = {name: httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                       base_url="http://gateway", timeout=60)
               for name, app in apps.items()}
    rows = []
    counter = 0
    try:
        for refusal in REFUSALS:
            client = clients[refusal.gateway]
            times: list[float] = []
            size = 0
            for attempt in range(repeat + 1):  # the first warms up: checked, not timed
                counter += 1
                content = orjson.dumps(refusal.body(counter))
                size = len(content)
                started = time.perf_counter()
                response = await client.post("/graphql", content=content,
                                             headers={"content-type": "application/json"})
                elapsed = (time.perf_counter() - started) * 1000
                code = _code(response)
                if code != refusal.expected:
                    raise SystemExit(f"{refusal.name}: answered {code}, not {refusal.expected}")
                if attempt:
                    times.append(elapsed)
            rows.append((refusal, size, times))
    finally:
        for client in clients.values():
            await client.aclose()
        for app in apps.values():
            await app.state.runtime.aclose()
    return rows


def report(rows: list[tuple[Refusal, int, list[float]]]) -> str:
    lines = ["| refusal | answer | request bytes | median ms | slowest ms |",
             "|---|---|---:|---:|---:|"]
    for refusal, size, times in rows:
        lines.append(f"| {refusal.name} | `{refusal.expected}` | {size:,} | "
                     f"{statistics.median(times):.1f} | {max(times):.1f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=20, help="timed requests per refusal")
    args = parser.parse_args(argv)
    print(report(asyncio.run(measure(args.repeat))))


if __name__ == "__main__":
    main()
