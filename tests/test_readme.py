"""The documented examples (``docs/queries.md``, and the README's curl) answer exactly as shown,
from the gateway ``make run`` serves.

Each ```graphql block is sent, with the variables its paragraph gives in a `{...}` span, to a real
``python -m gateway demo`` process; the ```json block after it must equal the answer. The ids and
cursors an example starts from must come from an answer shown before it, as a reader copies them.

Cursors are signed with a secret each demo makes at start, so the README's cursors are those of
one run: an answer's cursors must stand where the README shows cursors, and an example that pages
from a cursor the README showed is sent the cursor this run answered in its place.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import zip_longest
from typing import Any

import httpx
import pytest

from tests.processes import ROOT, Process

README = (ROOT / "README.md").read_text(encoding="utf-8")
# The examples' page of the documentation (the README's first screen links to it).
QUERIES = (ROOT / "docs" / "queries.md").read_text(encoding="utf-8")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```$", re.DOTALL | re.MULTILINE)
CURSOR_FIELDS = frozenset({"cursor", "startCursor", "endCursor"})


@dataclass(frozen=True)
class Example:
    name: str
    query: str
    variables: dict[str, Any] | None
    answer: Any
    before: str  # the README up to the query: where its variables must have been shown


def _examples() -> list[Example]:
    blocks = list(FENCE.finditer(QUERIES))
    examples = []
    for i, block in enumerate(blocks):
        if block.group(1) != "graphql":
            continue
        assert i + 1 < len(blocks) and blocks[i + 1].group(1) == "json", block.group(2)
        prose = QUERIES[blocks[i - 1].end() if i else 0:block.start()]
        spans = []
        for span in re.findall(r"`(\{.*?\})`", prose, re.DOTALL):
            try:
                spans.append(json.loads(span))
            except ValueError:
                continue
        assert len(spans) <= 1, prose
        name = re.search(r"^(?:query|mutation) (\w+)", block.group(2), re.MULTILINE)
        assert name is not None, block.group(2)
        examples.append(Example(name.group(1), block.group(2), spans[0] if spans else None,
                                json.loads(blocks[i + 1].group(2)), QUERIES[:block.start()]))
    return examples


EXAMPLES = _examples()


@pytest.fixture(scope="module")
def graphql_url() -> Iterator[str]:
    """``/graphql`` of a real ``python -m gateway demo`` (what ``make run`` runs)."""
    with Process([sys.executable, "-m", "gateway", "demo", "--port", "0"]) as demo:
        yield demo.wait_for(r"^  GraphQL +(http://\S+/graphql)$").group(1)


def test_the_readme_has_its_examples() -> None:
    assert [e.name for e in EXAMPLES] == [
        "CrossSourceGroups", "GroupsWithProducts", "LoadMoreProducts", "Refetch"]


def test_the_curl_example_answers_as_shown(graphql_url: str) -> None:
    match = re.search(r"-d '(\{.*?\})'`.*?```json\n(.*?)^```", README, re.DOTALL | re.MULTILINE)
    assert match is not None
    answer = httpx.post(graphql_url, json=json.loads(match.group(1)), timeout=60).json()
    assert answer == json.loads(match.group(2))


def _aligned(shown: Any, live: Any, cursors: dict[str, str]) -> Any:
    """``live`` with each of its cursors where ``shown`` has one replaced by the shown cursor
    (``cursors`` learns which live cursor each shown one stands for)."""
    if isinstance(shown, dict) and isinstance(live, dict):
        aligned = {}
        for key, value in live.items():
            if key in CURSOR_FIELDS and isinstance(value, str) and isinstance(shown.get(key), str):
                cursors[shown[key]] = value
                value = shown[key]
            aligned[key] = _aligned(shown.get(key), value, cursors)
        return aligned
    if isinstance(shown, list) and isinstance(live, list):
        return [_aligned(s, v, cursors) for s, v in zip_longest(shown, live)][:len(live)]
    return live


@pytest.fixture(scope="module")
def answers(graphql_url: str) -> dict[str, Any]:
    """Each example's answer in README order, its cursors aligned with the README's."""
    cursors: dict[str, str] = {}
    answered = {}
    for example in EXAMPLES:
        variables = {name: cursors.get(value, value)
                     for name, value in (example.variables or {}).items()} or None
        answer = httpx.post(graphql_url, json={"query": example.query, "variables": variables},
                            timeout=60).json()
        answered[example.name] = _aligned(example.answer, answer, cursors)
    return answered


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.name for e in EXAMPLES])
def test_each_example_answers_exactly_as_shown(answers: dict[str, Any], example: Example
                                               ) -> None:
    assert answers[example.name] == example.answer


@pytest.mark.parametrize("example", EXAMPLES, ids=[e.name for e in EXAMPLES])
def test_each_example_is_a_published_operation(example: Example) -> None:
    published = [p.read_text(encoding="utf-8")
                 for p in sorted((ROOT / "schema" / "operations").glob("*.graphql"))]
    assert example.query in published


@pytest.mark.parametrize("example", [e for e in EXAMPLES if e.variables],
                         ids=[e.name for e in EXAMPLES if e.variables])
def test_variables_come_from_an_earlier_answer(example: Example) -> None:
    shown = "".join(m.group(2) for m in FENCE.finditer(example.before) if m.group(1) == "json")
    assert example.variables
    for value in example.variables.values():
        assert f'"{value}"' in shown, f"{example.name}: {value} was never shown before"


def test_the_merged_order_mixes_sources_on_its_first_page() -> None:
    merged = next(e for e in EXAMPLES if e.name == "CrossSourceGroups")
    assert merged.variables is None  # the first page
    nodes = merged.answer["data"]["productGroups"]["nodes"]
    sources = [node["source"]["id"] for node in nodes]
    assert len(set(sources)) >= 2, sources
    assert sources != sorted(sources, key=sources.index), "the sources interleave"
    names = [node["name"].casefold() for node in nodes]
    assert names == sorted(names)


def test_command_lines_run_inside_the_venv() -> None:
    for line in (README + QUERIES).splitlines():
        for match in re.finditer(r"([^\s`(]*)python -m gateway", line):
            assert match.group(1) == ".venv/bin/", line
