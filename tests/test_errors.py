"""The README's error table is the registry of codes: every ErrorCode, in order, nothing else."""

from __future__ import annotations

import re
from pathlib import Path

from gateway.errors import ErrorCode

README = Path(__file__).resolve().parents[1] / "README.md"


def error_table_codes() -> list[str]:
    text = README.read_text()
    section = text.split("### Errors", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^\| `([A-Z_]+)` \|", section, flags=re.MULTILINE)


def test_readme_error_table_equals_error_code() -> None:
    assert error_table_codes() == [code.value for code in ErrorCode]
