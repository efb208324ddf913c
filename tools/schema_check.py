"""``make schema-check``: the schema the code prints (plain, and the federation subgraph's) against
the last released one (``schema/released/``), each change classified by graphql-core's
``find_schema_changes``: breaking, dangerous or safe. A breaking change fails the check unless
``CHANGELOG.md``'s unreleased section records it: a bullet under ``### Breaking changes`` naming
its coordinate in backticks (``Type``, ``Type.field`` or ``Type.field(argument:)``, as the
change's description does) with a ``Migration:`` that says what clients do instead. Every
operation of ``schema/operations/`` and every trusted-document manifest of
``schema/manifests/`` must still validate against the new schema.

Example::

    python -m tools.schema_check            # exit status 1 and the reasons, or 0
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    build_schema,
    parse,
    specified_rules,
    validate,
)
from graphql.utilities import BreakingChange, DangerousChange, SchemaChange, find_schema_changes

from gateway.graph import print_sdl

__all__ = ["Report", "breaking_recorded", "check", "coordinate", "main", "unreleased"]

ROOT = Path(__file__).resolve().parents[1]
RELEASED = ROOT / "schema" / "released"
SCHEMAS = {"schema.graphql": False, "schema.federation.graphql": True}  # name: federation
UNRELEASED = re.compile(r"^## Unreleased\s*$(.*?)(?=^## |\Z)", re.MULTILINE | re.DOTALL)
BREAKING = re.compile(r"^### Breaking changes\s*$(.*?)(?=^##|\Z)", re.MULTILINE | re.DOTALL)


@dataclass
class Report:
    changes: list[tuple[str, SchemaChange]] = field(default_factory=list)  # (schema, change)
    unrecorded: list[str] = field(default_factory=list)  # breaking changes with no entry
    invalid: list[str] = field(default_factory=list)  # operations that no longer validate

    @property
    def ok(self) -> bool:
        return not self.unrecorded and not self.invalid

    def lines(self) -> list[str]:
        lines = [f"{_kind(change)}: {name}: {change.description}"
                 for name, change in self.changes]
        lines += [f"error: breaking change not in CHANGELOG.md's unreleased section: {text}"
                  for text in self.unrecorded]
        lines += [f"error: {text}" for text in self.invalid]
        return lines


def coordinate(change: SchemaChange) -> str:
    """What a change is about: ``Type.field(argument:)``, ``Type.field`` or ``Type``."""
    found = re.search(r"\b([A-Za-z_]\w*\.[A-Za-z_]\w*(?:\([A-Za-z_]\w*:\))?)",
                      change.description)
    if found:
        return found.group(1)
    words = change.description.split()
    return words[1].rstrip(".") if len(words) > 1 else change.description


def unreleased(changelog: str) -> str:
    """The text of CHANGELOG.md's ``## Unreleased`` section ("" when it has none)."""
    match = UNRELEASED.search(changelog)
    return match.group(1) if match else ""


def breaking_recorded(change: SchemaChange, changelog: str) -> bool:
    """Whether a bullet of the unreleased breaking changes names ``change`` with a migration."""
    section = BREAKING.search(unreleased(changelog))
    if section is None:
        return False
    bullets = re.split(r"^- ", section.group(1), flags=re.MULTILINE)[1:]
    name = f"`{coordinate(change)}`"
    return any(name in bullet and "Migration:" in bullet for bullet in bullets)


def check(released: dict[str, str], current: dict[str, str], changelog: str,
          operations: Iterable[tuple[str, str]] = ()) -> Report:
    """Compare each schema (name: SDL) with its release; ``operations``: (where, text)."""
    report = Report()
    for name, sdl in current.items():
        new = _schema(sdl)
        if name in released:
            for change in find_schema_changes(_schema(released[name]), new):
                report.changes.append((name, change))
                if isinstance(change, BreakingChange) and not breaking_recorded(change,
                                                                                changelog):
                    report.unrecorded.append(f"{name}: {change.description}")
        if name == "schema.graphql":
            report.invalid += [f"{where} no longer validates: {problem}"
                               for where, text in operations
                               for problem in _problems(new, text)]
    return report


def main(argv: list[str] | None = None) -> int:
    released = {name: (RELEASED / name).read_text() for name in SCHEMAS
                if (RELEASED / name).exists()}
    missing = [name for name in SCHEMAS if name not in released]
    if missing:
        print(f"error: no released schema in {RELEASED.relative_to(ROOT)}: {', '.join(missing)} "
              "(make release VERSION=… records one)", file=sys.stderr)
        return 1
    current = {name: print_sdl(federation=federation) for name, federation in SCHEMAS.items()}
    changelog_path = ROOT / "CHANGELOG.md"
    changelog = changelog_path.read_text() if changelog_path.exists() else ""
    report = check(released, current, changelog, _operations())
    for line in report.lines():
        print(line, file=sys.stderr if line.startswith("error") else sys.stdout)
    breaking = sum(isinstance(c, BreakingChange) for _, c in report.changes)
    print(f"schema-check: {len(report.changes)} changes since the release ({breaking} "
          f"breaking), {'ok' if report.ok else 'FAILED'}")
    return 0 if report.ok else 1


def _kind(change: SchemaChange) -> str:
    if isinstance(change, BreakingChange):
        return "breaking"
    return "dangerous" if isinstance(change, DangerousChange) else "safe"


def _schema(sdl: str) -> GraphQLSchema:
    # The subgraph's SDL uses federation's directives without defining them.
    return build_schema(sdl, assume_valid_sdl=True)


def _problems(schema: GraphQLSchema, text: str) -> list[str]:
    try:
        document: DocumentNode = parse(text)
    except GraphQLError as error:
        return [error.message]
    return [error.message for error in validate(schema, document, specified_rules)]


def _operations() -> list[tuple[str, str]]:
    """The published operations, and the operations of every trusted-document manifest
    (Apollo's persisted-query manifest, or Relay's ``{"<id>": "<query text>"}``)."""
    found = [(str(path.relative_to(ROOT)), path.read_text())
             for path in sorted((ROOT / "schema" / "operations").glob("*.graphql"))]
    for path in sorted((ROOT / "schema" / "manifests").glob("*.json")):
        data = json.loads(path.read_text())
        entries = data.get("operations") if isinstance(data.get("operations"), list) else None
        texts = ([(entry.get("id", "?"), entry.get("body", "")) for entry in entries]
                 if entries is not None else list(data.items()))
        found += [(f"{path.relative_to(ROOT)} {key}", text) for key, text in texts]
    return found


if __name__ == "__main__":
    sys.exit(main())
