"""``make release VERSION=X.Y.Z``: one command releases the schema and the package.

1. the version in ``pyproject.toml`` becomes ``VERSION`` (higher than the current one);
2. ``CHANGELOG.md``'s ``## Unreleased`` section becomes ``## VERSION (date)``, and a new empty
   unreleased section is opened above it;
3. the schema the code prints (plain and federation) is copied into ``schema/released/``, the
   base of the next ``make schema-check``.

It refuses to run while ``make schema-check`` fails: a breaking change must be recorded first.
Committing and tagging are left to the person releasing (the command prints how).
"""

from __future__ import annotations

import argparse
import re
import sys
from datetime import date

from tools.schema_check import RELEASED, ROOT, SCHEMAS
from tools.schema_check import main as schema_check

__all__ = ["UNRELEASED_TEMPLATE", "bump_changelog", "bump_version", "main"]

VERSION = re.compile(r"^\d+\.\d+\.\d+$")
UNRELEASED_TEMPLATE = """## Unreleased

### Breaking changes

### Added

### Changed

"""


def bump_version(pyproject: str, version: str) -> str:
    """``pyproject.toml``'s text with ``[project] version`` set to ``version``."""
    current = re.search(r'^version = "([^"]+)"$', pyproject, re.MULTILINE)
    if current is None:
        raise ValueError("pyproject.toml has no version line")
    if _parts(version) <= _parts(current.group(1)):
        raise ValueError(f"{version} is not above the current version {current.group(1)}")
    return pyproject.replace(current.group(0), f'version = "{version}"', 1)


def bump_changelog(changelog: str, version: str, day: date) -> str:
    """The unreleased section renamed to the release, a new empty one above it."""
    if "\n## Unreleased" not in f"\n{changelog}":
        raise ValueError("CHANGELOG.md has no '## Unreleased' section")
    released = changelog.replace("## Unreleased", f"## {version} ({day.isoformat()})", 1)
    head, _, rest = released.partition(f"## {version}")
    return f"{head}{UNRELEASED_TEMPLATE}## {version}{rest}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make release", description=__doc__.split("\n")[0])
    parser.add_argument("version", help="the new version, X.Y.Z")
    version = parser.parse_args(argv).version
    if not VERSION.match(version):
        print(f"error: {version!r} is not X.Y.Z", file=sys.stderr)
        return 2
    if schema_check() != 0:
        print("error: make schema-check fails: record the breaking changes first",
              file=sys.stderr)
        return 1
    pyproject, changelog = ROOT / "pyproject.toml", ROOT / "CHANGELOG.md"
    try:
        new_pyproject = bump_version(pyproject.read_text(), version)
        new_changelog = bump_changelog(changelog.read_text(), version, date.today())
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    from gateway.graph import print_sdl

    RELEASED.mkdir(parents=True, exist_ok=True)
    for name, federation in SCHEMAS.items():
        (RELEASED / name).write_text(print_sdl(federation=federation))
    pyproject.write_text(new_pyproject)
    changelog.write_text(new_changelog)
    print(f"released {version}: pyproject.toml, CHANGELOG.md and schema/released/ changed.\n"
          f"Then: git commit -am 'Release {version}' && git tag v{version}")
    return 0


def _parts(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])


if __name__ == "__main__":
    sys.exit(main())
