"""Where a gateway process's CPU goes, by layer: py-spy samples summarised.

:func:`record` samples a running process with ``py-spy record --format raw`` (collapsed stacks,
idle excluded); :func:`by_layer` charges each sample to one layer: the layer of the innermost
frame that belongs to one, skipping generic frames (asyncio, functools, typing…) so that, say,
task creation in the de-duplication layer counts as that layer. Work done in C (orjson, hashlib,
httptools) is charged to the Python frame that called it, and a few known callers are named
explicitly (decoding upstream JSON, encoding the answer). The event loop's own C code (uvloop's
polling, socket reads and writes) has no Python frame but the one that runs the loop, so it is
"event loop and other" whichever socket it serves: a stack cannot tell an upstream's read from a
client's. A protocol's Python code (the upstream network's ``data_received`` and the llhttp
callbacks it runs) is its layer's.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

__all__ = ["LAYERS", "by_layer", "layer_of", "markdown", "record"]

HTTP = "HTTP server (uvicorn, Starlette)"
ENDPOINT = "HTTP edge (gateway/edge)"
PARSE = "parse/validate (graphql-core)"
EXECUTION = "execution (graphql-core, Strawberry)"
RESOLVERS = "resolvers (gateway/graph)"
MERGING = "merging (gateway/graph/listing.py)"
CLIENT = "upstream client (httpx, network)"
POLICY = "policy layers (dedup, cache, retry, breaker, limit)"
DECODE = "JSON decode (upstream answers)"
RECORDS = "record building (gateway/sources)"
ENCODING = "encoding (the answer's JSON)"
OTHER = "event loop and other"
LAYERS = (HTTP, ENDPOINT, PARSE, EXECUTION, RESOLVERS, MERGING, CLIENT, POLICY, DECODE, RECORDS,
          ENCODING, OTHER)

# (path prefix, function or None for any, layer): the first match wins.
RULES: tuple[tuple[str, str | None, str], ...] = (
    ("gateway/edge/bodies.py", "result_body", ENCODING),
    ("gateway/upstream/client.py", "_decode", DECODE),
    ("json/encoder.py", None, ENCODING),
    ("json/decoder.py", None, DECODE),
    ("gateway/upstream/client.py", None, CLIENT),
    ("gateway/upstream/paging.py", None, CLIENT),
    ("gateway/upstream/network.py", None, CLIENT),  # HTTP/1.1 behind httpx's API: the network
    ("gateway/upstream/", None, POLICY),
    ("gateway/shared.py", None, POLICY),  # work shared per key: the memos and de-duplication
    ("redis/", None, POLICY),
    # An adapter's answer decoded by msgspec straight into typed records (C code, charged to
    # this frame): the JSON decode, not record building; before the generic sources rule.
    ("gateway/sources/base.py", "decode", DECODE),
    ("gateway/sources/", None, RECORDS),
    # One list over many sources (concatenated or merged by a sort key): its own line, since
    # the merged scenario is mostly that.
    ("gateway/graph/listing.py", None, MERGING),
    ("gateway/graph/", None, RESOLVERS),
    ("gateway/ids.py", None, RESOLVERS),
    ("gateway/errors.py", None, RESOLVERS),
    ("gateway/edge/", None, ENDPOINT),
    ("gateway/access/", None, ENDPOINT),
    ("gateway/caches/responses.py", None, ENDPOINT),
    ("graphql/language/", None, PARSE),
    ("graphql/validation/", None, PARSE),
    ("graphql/utilities/", None, PARSE),
    ("graphql/", None, EXECUTION),
    ("strawberry/", None, EXECUTION),
    ("httpx/", None, CLIENT),
    ("httpcore/", None, CLIENT),
    ("h11/", None, CLIENT),
    ("anyio/", None, CLIENT),
    ("sniffio/", None, CLIENT),
    # The loop's own C code (polling, socket reads and writes) samples as the frame that runs
    # the loop: uvicorn's asyncio_run is that frame, not HTTP work.
    ("uvicorn/_compat.py", "asyncio_run", OTHER),
    ("uvicorn/", None, HTTP),
    ("starlette/", None, HTTP),
    ("uvloop/", None, OTHER),
)
# Generic frames: charged to their caller.
NEUTRAL = ("asyncio/", "<frozen", "typing.py", "enum.py", "functools.py", "contextlib.py",
           "abc.py", "dataclasses.py", "re/", "inspect.py", "copy.py", "collections/",
           "threading.py", "weakref.py", "_weakrefset.py", "contextvars", "urllib/", "email/",
           "http/", "ssl.py", "socket.py", "selectors.py", "logging/", "warnings.py",
           "datetime.py", "uuid.py", "random.py", "hashlib.py", "base64.py", "json/__init__.py",
           # A generated function (a dataclass's __init__, a namedtuple's): its caller's work.
           "<string>", "ipaddress.py")


def _split(frame: str) -> tuple[str, str]:
    """``"function (path:line)"`` → (function, path)."""
    function, _, rest = frame.rpartition(" (")
    return function, rest.rsplit(":", 1)[0]


def layer_of(stack: Sequence[str]) -> tuple[str, str]:
    """The layer of a sample (frames root first) and the frame it was charged to."""
    for frame in reversed(stack):
        function, path = _split(frame)
        for prefix, name, layer in RULES:
            if path.startswith(prefix) and (name is None or function.split(".")[-1] == name):
                return layer, f"{function} ({path})"
        if not path.startswith(NEUTRAL):
            return OTHER, f"{function} ({path})"
    return OTHER, stack[-1] if stack else "?"


def by_layer(raw: str) -> tuple[Counter[str], Counter[str], int]:
    """Samples per layer and per charged frame, and the total, of py-spy's raw output."""
    layers: Counter[str] = Counter()
    frames: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack_text, _, count_text = line.rpartition(" ")
        if not stack_text or not count_text.isdigit():
            continue
        count = int(count_text)
        layer, frame = layer_of(stack_text.split(";"))
        layers[layer] += count
        frames[frame] += count
        total += count
    return layers, frames, total


def record(pid: int, seconds: float, out: Path, pin: Sequence[str] = ()
           ) -> subprocess.Popen[bytes] | str:
    """Start sampling ``pid`` for ``seconds`` (wait on the process), or say why it cannot."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(py_spy).exists():
        return "py-spy is not installed (pip install -e '.[bench]')"
    return subprocess.Popen([*pin, py_spy, "record", "--pid", str(pid), "--duration",
                             f"{max(1, round(seconds))}", "--rate", "200", "--format", "raw",
                             "--output", str(out)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def markdown(title: str, raw: str, queries: int) -> str:
    """One path's summary: the three largest layers, then every layer and the top frames."""
    layers, frames, total = by_layer(raw)
    if not total:
        return f"### {title}\n\nno samples\n"
    top = layers.most_common()
    largest = "; ".join(f"**{name}** {count / total:.0%}" for name, count in top[:3])
    rows = "\n".join(f"| {name} | {count / total:.0%} |" for name, count in top)
    hot = "\n".join(f"| `{frame}` | {count / total:.1%} |"
                    for frame, count in frames.most_common(8))
    return f"""### {title}

{total} samples at 200 Hz over {queries} queries. Three largest costs: {largest}.

| layer | share of CPU samples |
|---|---:|
{rows}

| innermost charged frame (self time and the C code it calls) | share |
|---|---:|
{hot}
"""
