"""The documentation site builds strict (no broken link, anchor or page) from the tree, its
generated pages carry what the code says, and the README's first screen links into it."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from graphql import build_schema

from gateway.config.reference import json_schema
from gateway.errors import ErrorCode
from gateway.graph import print_sdl
from tests.processes import ROOT


def build(site: Path, project: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict",
                           "--site-dir", str(site)], cwd=project, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})


def test_the_site_builds_strict_with_its_generated_pages(tmp_path: Path) -> None:
    site = tmp_path / "site"
    result = build(site)
    assert result.returncode == 0, result.stderr
    errors = (site / "errors" / "index.html").read_text()
    assert all(f"<code>{code.value}</code>" in errors for code in ErrorCode)
    reference = (site / "schema-reference" / "index.html").read_text()
    types = [name for name in build_schema(print_sdl()).type_map if not name.startswith("__")]
    missing = [name for name in types if f"<code>{name}</code>" not in reference]
    assert missing == []
    configuration = (site / "configuration" / "index.html").read_text()
    assert "redis_mode" in configuration and "cursor_secret_env" in configuration
    assert json.loads((site / "gateway.schema.json").read_text()) == json_schema()
    index = (site / "index.html").read_text()
    assert "make test" in index  # the README's first screen, included once


def test_a_broken_link_fails_the_build(tmp_path: Path) -> None:
    project = tmp_path / "project"  # a copy: the tree's own build may run meanwhile
    for part in ("docs", "tools"):
        shutil.copytree(ROOT / part, project / part)
    for part in ("mkdocs.yml", "README.md"):
        shutil.copy(ROOT / part, project / part)
    queries = project / "docs" / "queries.md"
    queries.write_text(queries.read_text() + "\n[nowhere](no-such-page.md)\n")
    result = build(tmp_path / "site", project)
    assert result.returncode != 0
    assert "no-such-page.md" in result.stderr


def test_the_readme_links_into_every_page_and_each_link_resolves() -> None:
    readme = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\((docs/[^)#]+)", readme)
    assert all((ROOT / link).is_file() for link in links), links
    pages = {p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").glob("*.md")}
    assert pages - set(links) == {"docs/index.md"}
    assert len(readme.splitlines()) < 80  # the first screen, and where to read on
