"""``make schema-check`` against changes made to the schema the code prints: removing a field or
making an argument non-null fails until CHANGELOG.md's unreleased section records it with a
migration; an added field passes; a published operation that stops validating fails. And
``make release``'s two edits."""

from __future__ import annotations

import re
from datetime import date

import pytest

from gateway.graph import print_sdl
from tools.release import bump_changelog, bump_version
from tools.schema_check import check, main

CURRENT = print_sdl()
CHANGELOG = "# Changelog\n\n## Unreleased\n\n### Breaking changes\n\n### Added\n\n## 0.1.0\n"


def released(sdl: str = CURRENT) -> dict[str, str]:
    return {"schema.graphql": sdl}


def without_field(sdl: str, type_name: str, field: str) -> str:
    """``sdl`` with ``type_name.field`` (and its description) removed."""
    block = re.search(rf"^type {type_name}\b.*?^}}", sdl, re.MULTILINE | re.DOTALL)
    assert block is not None
    body = re.sub(rf'(\n  """[^"]*?"""|\n  "[^"\n]*")?\n  {field}\b[^\n]*', "", block.group(0),
                  count=1)
    assert body != block.group(0)
    return sdl.replace(block.group(0), body)


def recorded(entry: str) -> str:
    return CHANGELOG.replace("### Breaking changes\n", f"### Breaking changes\n\n{entry}\n")


def test_the_repository_passes_its_own_check() -> None:
    assert main([]) == 0


def test_a_removed_field_fails_until_the_changelog_records_it_with_a_migration() -> None:
    current = {"schema.graphql": without_field(CURRENT, "Product", "sku")}
    report = check(released(), current, CHANGELOG)
    assert not report.ok
    assert report.unrecorded == ["schema.graphql: Field Product.sku was removed."]
    no_migration = recorded("- `Product.sku` was removed.")
    assert not check(released(), current, no_migration).ok
    entry = "- `Product.sku` was removed. Migration: read `Product.upstreamId`."
    assert check(released(), current, recorded(entry)).ok
    released_section = CHANGELOG.replace("## 0.1.0\n", f"## 0.1.0\n\n{entry}\n")
    assert not check(released(), current, released_section).ok  # only the unreleased counts


def test_an_argument_made_non_null_is_breaking() -> None:
    made_required = CURRENT.replace("products(first: Int", "products(first: Int!", 1)
    assert made_required != CURRENT
    report = check(released(), {"schema.graphql": made_required}, CHANGELOG)
    assert not report.ok
    [change] = report.unrecorded
    assert "(first:) has changed type from Int to Int!" in change
    coordinate = re.search(r"Argument (\S+) has", change)
    assert coordinate is not None
    entry = f"- `{coordinate.group(1)}` is required. Migration: always send `first`."
    assert check(released(), {"schema.graphql": made_required}, recorded(entry)).ok


def test_an_added_field_passes_as_a_safe_change() -> None:
    older = released(without_field(CURRENT, "Product", "sku"))
    report = check(older, {"schema.graphql": CURRENT}, CHANGELOG)
    assert report.ok
    assert [line for line in report.lines()] == ["safe: schema.graphql: Field Product.sku was "
                                                 "added."]


def test_an_operation_that_no_longer_validates_fails() -> None:
    report = check(released(), {"schema.graphql": CURRENT}, CHANGELOG,
                   [("schema/operations/x.graphql", "{ products(first: 1) { nodes { nope } } }")])
    assert not report.ok
    assert "schema/operations/x.graphql no longer validates" in report.invalid[0]


def test_release_bumps_the_version_and_opens_a_new_unreleased_section() -> None:
    assert 'version = "0.2.0"' in bump_version('[project]\nversion = "0.1.0"\n', "0.2.0")
    with pytest.raises(ValueError, match="not above"):
        bump_version('[project]\nversion = "0.1.0"\n', "0.1.0")
    text = bump_changelog(recorded("- `A.b` was removed. Migration: c."), "0.2.0",
                          date(2027, 1, 2))
    assert text.index("## Unreleased") < text.index("## 0.2.0 (2027-01-02)") < text.index(
        "- `A.b` was removed") < text.index("## 0.1.0")
