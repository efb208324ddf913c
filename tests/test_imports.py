"""The import graph of ``gateway``: no cycle, no import from a lower layer up to a higher one, and
no import inside a function but the listed ones; and the package's shape (a small root, no long
module outside ``graph``).

Every import of every module under ``gateway/`` is read with :mod:`ast`: at module level, inside
``if TYPE_CHECKING:`` blocks and inside functions. A cycle hidden behind a ``TYPE_CHECKING`` block
or a function-level import is still a cycle: the modules cannot be understood (or split) apart.
"""

from __future__ import annotations

import ast
import itertools
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import pytest

PACKAGE = "gateway"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE

# (importing module, imported module): the only imports allowed inside a function.
LAZY_IMPORTS = frozenset({
    ("gateway.cli", "gateway.demo"),  # `demo` alone loads the emulators
    ("gateway.cli", "gateway.emulators"),  # … and names their demo tokens
    ("gateway.cli", "gateway.graph"),  # `schema` alone builds the schema
    # `--help` imports nothing of the server: each command loads what it runs (tests/test_cli.py).
    ("gateway.cli", "gateway.edge.app"),
    ("gateway.cli", "gateway.config"),
    ("gateway.cli", "gateway.config.reference"),  # `config-schema` alone walks the model
    ("gateway.cli", "gateway.observability.logs"),
    ("gateway.cli", "gateway.observability.metrics"),
    ("gateway.cli", "gateway.edge.serving"),
    ("gateway.cli", "prometheus_client"),
    ("gateway.cli", "prometheus_client.multiprocess"),
    ("gateway.cli", "uvicorn"),
    ("gateway.cli", "uvloop"),
    # OpenTelemetry is an optional extra ([tracing]): loaded only when tracing is configured.
    ("gateway.observability.tracing", "opentelemetry.trace"),
    ("gateway.observability.tracing", "opentelemetry.trace.propagation.tracecontext"),
    ("gateway.observability.tracing", "opentelemetry.sdk.resources"),
    ("gateway.observability.tracing", "opentelemetry.sdk.trace"),
    ("gateway.observability.tracing", "opentelemetry.sdk.trace.export"),
    ("gateway.observability.tracing", "opentelemetry.sdk.trace.sampling"),
    ("gateway.observability.tracing", "opentelemetry.exporter.otlp.proto.http.trace_exporter"),
})


# The layers, lowest first: a module imports modules of its own layer and of layers below only.
# What every part shares sits at the bottom; only the edge (and the commands above it) puts the
# parts together into an app.
LAYERS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("vocabulary", ("gateway", "gateway.clock", "gateway.errors", "gateway.ids", "gateway.window",
                    "gateway.shared", "gateway.languages", "gateway.credentials",
                    "gateway.scope")),
    ("configuration", ("gateway.config",)),
    ("services", ("gateway.caches", "gateway.access", "gateway.observability")),
    ("upstream", ("gateway.upstream",)),
    ("sources", ("gateway.sources",)),
    ("changes", ("gateway.changes",)),
    ("graph", ("gateway.graph",)),
    ("edge", ("gateway.edge",)),
    ("commands", ("gateway.cli", "gateway.demo", "gateway.__main__", "gateway.emulators")),
)
# The emulators stand for the upstreams: they share no code with the adapters (a misreading of a
# seed document cannot hide in both), and run on the edge's server helpers only.
EMULATORS_MAY_IMPORT = ("gateway.emulators", "gateway.edge.serving")
MAX_ROOT_MODULES = 10  # besides __init__ and __main__
MAX_MODULE_LINES = 500  # every module, the graph's too


def layer_of(module: str) -> int:
    """The index of the layer ``module`` belongs to (the longest matching prefix decides)."""
    best: tuple[int, int] | None = None
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            matches = module == prefix or module.startswith(f"{prefix}.")
            if matches and (best is None or len(prefix) > best[0]):
                best = (len(prefix), index)
    if best is None:
        raise AssertionError(f"{module} belongs to no layer: add it to LAYERS")
    return best[1]


class Where(Enum):
    MODULE = "module level"
    TYPE_CHECKING = "TYPE_CHECKING"
    FUNCTION = "function"


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str  # a module name, resolved (absolute; a submodule when a name is one)
    line: int
    where: Where

    def __str__(self) -> str:
        return f"{self.importer}:{self.line} ({self.where.value}) imports {self.imported}"


def module_names(root: Path = ROOT, package: str = PACKAGE) -> dict[str, Path]:
    """Every module of the package by dotted name (a package by its ``__init__.py``)."""
    names: dict[str, Path] = {}
    for path in sorted(root.rglob("*.py")):
        parts = [package, *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        names[".".join(parts)] = path
    return names


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _resolve(name: str, known: Iterable[str]) -> str | None:
    """The longest known module that ``name`` is or lies in (None: not one of ours)."""
    candidates = [m for m in known if name == m or name.startswith(f"{m}.")]
    return max(candidates, key=len) if candidates else None


def imports_in(source: str, module: str, *, is_package: bool, known: frozenset[str]
               ) -> list[Import]:
    """The imports of one module's source that name modules in ``known``.

    Relative imports are resolved against ``module``; ``from x import name`` imports the submodule
    ``x.name`` when there is one, else ``x`` itself. Imports of other packages are listed too when
    they are inside a function (``imported`` is then their own absolute name).
    """
    package = module if is_package else module.rpartition(".")[0]
    found: list[Import] = []

    def add(name: str, line: int, where: Where) -> None:
        resolved = _resolve(name, known)
        if resolved is not None:
            found.append(Import(module, resolved, line, where))
        elif where is Where.FUNCTION:
            found.append(Import(module, name, line, where))

    def visit(node: ast.AST, where: Where) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name, node.lineno, where)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")
                parent = parent[: len(parent) - (node.level - 1)]
                base = ".".join([*parent, base] if base else parent)
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                add(submodule if submodule in known else base, node.lineno, where)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            for child in ast.iter_child_nodes(node):
                visit(child, Where.FUNCTION)
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            inner = where if where is Where.FUNCTION else Where.TYPE_CHECKING
            for child in node.body:
                visit(child, inner)
            for child in node.orelse:
                visit(child, where)
        else:
            for child in ast.iter_child_nodes(node):
                visit(child, where)

    visit(ast.parse(source), Where.MODULE)
    return found


def gateway_imports() -> list[Import]:
    modules = module_names()
    known = frozenset(modules)
    return [found for name, path in modules.items()
            for found in imports_in(path.read_text(encoding="utf-8"), name,
                                    is_package=path.name == "__init__.py", known=known)]


def cycles(graph: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """One cycle per strongly connected group of nodes, as a path ``[a, b, …, a]``.

    Each group is listed once, from its smallest node, along a shortest way back to it; the groups
    are sorted. An empty list: the graph has no cycle.
    """
    edges = {node: sorted(set(targets)) for node, targets in graph.items()}
    for listed in list(edges.values()):
        for name in listed:
            edges.setdefault(name, [])

    # Tarjan's strongly connected components, iteratively (no recursion limit to meet).
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[set[str]] = []
    for start in sorted(edges):
        if start in index:
            continue
        work: list[tuple[str, Iterator[str]]] = [(start, iter(edges[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, targets = work[-1]
            target = next(targets, None)
            if target is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    group: set[str] = set()
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.add(member)
                        if member == node:
                            break
                    groups.append(group)
            elif target not in index:
                index[target] = low[target] = len(index)
                stack.append(target)
                on_stack.add(target)
                work.append((target, iter(edges[target])))
            elif target in on_stack:
                low[node] = min(low[node], index[target])

    found: list[list[str]] = []
    for group in groups:
        first = min(group)
        if len(group) == 1 and first not in edges[first]:
            continue
        found.append(_shortest_way_back(first, group, edges))
    return sorted(found)


def _shortest_way_back(first: str, group: set[str], edges: Mapping[str, list[str]]
                       ) -> list[str]:
    came_from: dict[str, str] = {}
    frontier = [first]
    while frontier:
        following: list[str] = []
        for node in frontier:
            for target in edges[node]:
                if target == first:
                    path = [first]
                    while node != first:
                        path.append(node)
                        node = came_from[node]
                    return [first, *reversed(path[1:]), first]
                if target in group and target not in came_from:
                    came_from[target] = node
                    following.append(target)
        frontier = following
    raise AssertionError(f"{first} is in a strongly connected group without a way back")


def _describe(cycle: list[str], imports: list[Import]) -> str:
    hops = []
    for importer, imported in itertools.pairwise(cycle):
        lines = ", ".join(sorted({f"line {i.line} ({i.where.value})" for i in imports
                                  if (i.importer, i.imported) == (importer, imported)}))
        hops.append(f"{importer} -> {imported}  [{lines}]")
    return "\n    ".join(hops)


# -- the package's own graph --------------------------------------------------------------------


def test_every_gateway_module_is_read() -> None:
    modules = module_names()
    imports = gateway_imports()

    assert {"gateway", "gateway.cli", "gateway.graph", "gateway.upstream.retry"} <= set(modules)
    edges = {(i.importer, i.imported) for i in imports}
    assert ("gateway.cli", "gateway.edge.app") in edges
    assert ("gateway.graph", "gateway.graph.schema") in edges


def test_gateway_has_no_import_cycle() -> None:
    imports = gateway_imports()
    graph: dict[str, set[str]] = {}
    for found in imports:
        if found.imported != found.importer:
            graph.setdefault(found.importer, set()).add(found.imported)

    found_cycles = cycles(graph)

    assert not found_cycles, "import cycles (TYPE_CHECKING and function imports count):\n  " + (
        "\n  ".join(f"{' -> '.join(c)}\n    {_describe(c, imports)}" for c in found_cycles))


def test_no_import_inside_a_function_but_the_listed_lazy_ones() -> None:
    inside = [i for i in gateway_imports() if i.where is Where.FUNCTION]

    unlisted = [str(i) for i in inside if (i.importer, i.imported) not in LAZY_IMPORTS]
    assert not unlisted, "imports inside functions (import at module level, or list it in " \
                         "LAZY_IMPORTS with its reason):\n  " + "\n  ".join(unlisted)


def test_every_listed_lazy_import_still_exists() -> None:
    inside = {(i.importer, i.imported) for i in gateway_imports() if i.where is Where.FUNCTION}

    assert set(LAZY_IMPORTS) <= inside, f"stale LAZY_IMPORTS: {set(LAZY_IMPORTS) - inside}"


def test_no_import_runs_from_a_lower_layer_to_a_higher_one() -> None:
    upward = [f"{i} ({LAYERS[layer_of(i.importer)][0]} -> {LAYERS[layer_of(i.imported)][0]})"
              for i in gateway_imports()
              if i.imported.startswith(PACKAGE) and layer_of(i.imported) > layer_of(i.importer)]

    assert not upward, "imports up the layers:\n  " + "\n  ".join(upward)


def test_the_emulators_share_no_code_with_the_gateway() -> None:
    shared = [str(i) for i in gateway_imports()
              if i.importer.startswith("gateway.emulators") and i.imported.startswith(PACKAGE)
              and not i.imported.startswith(EMULATORS_MAY_IMPORT)]

    assert not shared, "the emulators import the gateway's code:\n  " + "\n  ".join(shared)


def test_every_module_belongs_to_a_layer() -> None:
    for module in module_names():
        layer_of(module)


def test_the_package_root_keeps_only_what_every_part_shares() -> None:
    root = [path.stem for path in ROOT.glob("*.py") if path.stem not in ("__init__", "__main__")]

    assert len(root) <= MAX_ROOT_MODULES, sorted(root)


def test_no_module_is_long() -> None:
    long = {name: lines for name, path in module_names().items()
            if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES}

    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"


def test_layer_of_takes_the_longest_prefix() -> None:
    assert layer_of("gateway") == 0
    assert layer_of("gateway.edge.serving") > layer_of("gateway.graph.cost")
    with pytest.raises(AssertionError, match="no layer"):
        layer_of("elsewhere.module")


# -- the walker and the cycle finder on hand-made input -----------------------------------------

KNOWN = frozenset({"pkg", "pkg.a", "pkg.sub", "pkg.sub.b", "pkg.sub.c"})

SOURCE = '''
from __future__ import annotations
import os
import pkg.sub.b as b
from typing import TYPE_CHECKING
from . import c, helper
from .. import a
from ..sub.b import Thing

if TYPE_CHECKING:
    from pkg.a import Other
else:
    import pkg.sub

class K:
    from pkg import a as a_again

def f() -> None:
    import json
    if TYPE_CHECKING:
        from pkg.sub import c
    async def g() -> None:
        from pkg.sub.c import name
'''


def test_imports_in_resolves_relative_imports_submodules_and_where_they_are() -> None:
    found = imports_in(SOURCE, "pkg.sub.c", is_package=False, known=KNOWN)

    assert [(i.line, i.imported, i.where) for i in found] == [
        (4, "pkg.sub.b", Where.MODULE),
        (6, "pkg.sub.c", Where.MODULE),  # a submodule
        (6, "pkg.sub", Where.MODULE),  # a name in the package
        (7, "pkg.a", Where.MODULE),
        (8, "pkg.sub.b", Where.MODULE),
        (11, "pkg.a", Where.TYPE_CHECKING),
        (13, "pkg.sub", Where.MODULE),
        (16, "pkg.a", Where.MODULE),
        (19, "json", Where.FUNCTION),  # not ours, but inside a function
        (21, "pkg.sub.c", Where.FUNCTION),
        (23, "pkg.sub.c", Where.FUNCTION),
    ]
    assert all(i.importer == "pkg.sub.c" for i in found)


def test_imports_in_a_package_init_resolve_against_the_package_itself() -> None:
    found = imports_in("from . import b\nfrom .c import x\n", "pkg.sub", is_package=True,
                       known=KNOWN)

    assert [i.imported for i in found] == ["pkg.sub.b", "pkg.sub.c"]


@pytest.mark.parametrize(("graph", "expected"), [
    pytest.param({"a": {"b"}, "b": {"c"}, "c": set()}, [], id="a-chain"),
    pytest.param({"a": {"b", "c"}, "b": {"d"}, "c": {"d"}, "d": set()}, [], id="a-diamond"),
    pytest.param({"a": {"b"}, "b": {"a"}}, [["a", "b", "a"]], id="two"),
    pytest.param({"x": {"a"}, "a": {"b"}, "b": {"c"}, "c": {"a", "d"}},
                 [["a", "b", "c", "a"]], id="three-entered-from-outside"),
    pytest.param({"s": {"s"}, "t": {"s"}}, [["s", "s"]], id="self"),
    pytest.param({"types": {"resolvers", "records"}, "resolvers": {"types", "context"},
                  "context": {"catalogue"}, "catalogue": {"context", "records"}},
                 [["catalogue", "context", "catalogue"], ["resolvers", "types", "resolvers"]],
                 id="two-separate"),
    pytest.param({"a": {"b"}, "b": {"c", "a"}, "c": {"a"}}, [["a", "b", "a"]],
                 id="shortest-way-back"),
])
def test_cycles_of_a_hand_made_graph(graph: dict[str, set[str]],
                                     expected: list[list[str]]) -> None:
    assert cycles(graph) == expected
