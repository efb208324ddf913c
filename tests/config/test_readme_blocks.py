"""Every ```toml block of the README (and of docs/) passes ``python -m gateway check-config``, with
no warning, as a reader copies it.

A complete block is checked as it stands. A block whose first line is :data:`FRAGMENT` shows a
few tables only: it is checked inside a minimal complete configuration (the tables of
:data:`MINIMAL` it does not define are added). Each environment variable a block names gets a
generated secret, as the reader would set it. The real command runs, in a subprocess.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from gateway.config import env_variables
from gateway.config.toml_errors import describe
from tests.processes import ROOT

FRAGMENT = "# fragment: checked inside a complete configuration"
FENCE = re.compile(r"^```toml\n(.*?)^```$", re.DOTALL | re.MULTILINE)
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
# What a fragment is completed with: each table the fragment does not define.
MINIMAL = {
    "server": '[server]\ncursor_secret_env = "GATEWAY_CURSOR_SECRET"\n',
    "sources": '[[sources]]\nname = "carecloud"\nkind = "carecloud"\n'
               'base_url = "https://tenant.example.com/rest-api/v1"\n'
               'token_env = "CARECLOUD_TOKEN"\n',
}


@dataclass(frozen=True)
class Block:
    document: Path
    line: int  # of the opening fence
    text: str

    @property
    def name(self) -> str:
        return f"{self.document.relative_to(ROOT)}:{self.line}"

    @property
    def fragment(self) -> bool:
        return self.text.startswith(FRAGMENT + "\n")


def _blocks() -> list[Block]:
    blocks = []
    for document in DOCUMENTS:
        text = document.read_text(encoding="utf-8")
        blocks += [Block(document, text.count("\n", 0, match.start()) + 1, match.group(1))
                   for match in FENCE.finditer(text)]
    return blocks


BLOCKS = _blocks()


def _toml(name: str, text: str) -> dict[str, object]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        pytest.fail(f"{name} is not TOML: {describe(text, exc)}")


def _complete(block: Block) -> str:
    """The configuration a block stands for: itself, or a fragment with what it lacks."""
    if not block.fragment:
        return block.text
    data = _toml(block.name, block.text)
    assert "sources" not in data or "server" not in data, (
        f"{block.name} is complete: drop the fragment marker")
    return "\n".join([block.text, *(table for key, table in MINIMAL.items() if key not in data)])


def test_the_documentation_shows_its_configuration_blocks() -> None:
    pages = {block.document.name for block in BLOCKS}
    assert len(BLOCKS) >= 4 and {"configuration.md", "operations.md", "caching.md"} <= pages


@pytest.mark.parametrize("block", BLOCKS, ids=[block.name for block in BLOCKS])
def test_each_toml_block_passes_check_config(block: Block, tmp_path: Path) -> None:
    text = _complete(block)
    path = tmp_path / "gateway.toml"
    path.write_text(text, encoding="utf-8")
    variables = env_variables(_toml(block.name, text))
    environ = {**os.environ, **{name: secrets.token_urlsafe(32) for name in variables}}
    result = subprocess.run([sys.executable, "-m", "gateway", "check-config", str(path)],
                            capture_output=True, text=True, cwd=ROOT, env=environ, timeout=60)
    assert result.returncode == 0, f"{block.name}:\n{result.stderr}"
    assert result.stderr == "", f"{block.name} warns:\n{result.stderr}"
