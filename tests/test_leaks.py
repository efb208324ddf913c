"""The secret scan behind ``no_secret_leaks`` finds a secret wherever a test lets one out."""

from __future__ import annotations

import logging
import threading

import pytest

from tests.leaks import SecretScan, SessionLog


def test_a_secret_in_any_logger_or_a_response_fails_the_scan(session_log: SessionLog) -> None:
    scan = SecretScan(session_log, ["very-secret-token"], suite=False)  # leaks on purpose
    quiet = logging.getLogger("tests.leaks.quiet")
    quiet.propagate = False  # like uvicorn's configuration of the gateway's loggers
    quiet.setLevel(logging.INFO)
    try:
        quiet.info("nothing to see")
        assert scan.check() >= 1
        thread = threading.Thread(target=quiet.info, args=("token %s", "very-secret-token"))
        thread.start()
        thread.join()
        with pytest.raises(AssertionError, match="a secret appears"):
            scan.check()
    finally:
        quiet.propagate = True
    scan.seen('{"errors": [{"message": "very-secret-token"}]}')
    with pytest.raises(AssertionError, match="a secret appears"):
        scan.check()
    try:
        raise ValueError("very-secret-token")
    except ValueError:
        logging.getLogger("tests.leaks").exception("boom")  # in the traceback only
    with pytest.raises(AssertionError, match="a secret appears"):
        scan.check()
