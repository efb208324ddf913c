"""Every ErrorCode has its meaning (``MEANINGS``, from which the error reference of the
documentation is made), and nothing else has one."""

from __future__ import annotations

from gateway.errors import MEANINGS, ErrorCode


def test_every_error_code_has_its_meaning_in_order() -> None:
    assert list(MEANINGS) == list(ErrorCode)
    assert all(meaning.strip() for meaning in MEANINGS.values())
