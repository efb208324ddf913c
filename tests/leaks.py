"""No secret in any log line or response: the check behind the ``no_secret_leaks`` fixture.

:class:`SessionLog` is a logging handler installed on the root logger once per test session: it
keeps every line logged from then on, formatted as a log file would hold it (message, arguments
and traceback). :class:`SecretScan` is one test's check: the secrets it knows (every demo token,
the test gateway's cursor secret, and any the test adds), the texts the test hands it (response
bodies), and at the end every line logged since the last scan; no secret may appear in any.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable

__all__ = ["CONFIGURED", "SecretScan", "SessionLog"]

# Secrets tests configured (beyond the demo tokens): the whole suite's log is scanned for them.
CONFIGURED: set[str] = set()


# What every LogRecord has: anything else on a record is a field a caller passed in ``extra``.
STANDARD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message", "asctime"}


class SessionLog(logging.Handler):
    """Every log line of the session, as text, from any thread (the test servers log too);
    a record's ``extra`` fields are part of its line, as the JSON formatter writes them."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
        self._lines: list[str] = []
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:  # a record whose arguments do not format: keep what can be read
            line = f"{record.msg!r} {record.args!r}"
        extra = {k: v for k, v in vars(record).items() if k not in STANDARD_ATTRIBUTES}
        if extra:
            line += f" {extra!r}"
        with self._guard:
            self._lines.append(line)

    def install(self) -> Callable[[], None]:
        """See every record that reaches any logger's handlers; returns the uninstaller."""
        original = logging.Logger.callHandlers

        def call_handlers(logger: logging.Logger, record: logging.LogRecord) -> None:
            self.handle(record)
            original(logger, record)

        logging.Logger.callHandlers = call_handlers  # type: ignore[method-assign, assignment]

        def uninstall() -> None:
            logging.Logger.callHandlers = original  # type: ignore[method-assign]

        return uninstall

    def since(self, start: int) -> tuple[list[str], int]:
        """The lines logged from index ``start`` on, and the index after them."""
        with self._guard:
            return self._lines[start:], len(self._lines)


class SecretScan:
    """One test's scan: secrets to look for, and the texts they must not appear in."""

    def __init__(self, log: SessionLog, secrets: Iterable[str], *, suite: bool = True) -> None:
        """``suite``: the whole suite's log must not hold these either (False only for the
        scanner's own test, which leaks on purpose)."""
        self.log = log
        self.secrets = {s for s in secrets if s}
        self.suite = suite
        if suite:
            CONFIGURED.update(self.secrets)
        self._texts: list[str] = []
        _, self._start = log.since(0)

    def add_secret(self, secret: str) -> None:
        self.secrets.add(secret)
        if self.suite:
            CONFIGURED.add(secret)

    def seen(self, text: str) -> str:
        """Remember a text the client saw (a response body); returns it."""
        self._texts.append(text)
        return text

    def check(self) -> int:
        """Fails on any secret in the texts seen or the lines logged since the test began;
        the number of texts and lines scanned."""
        lines, self._start = self.log.since(self._start)
        texts, self._texts = [*self._texts, *lines], []
        for text in texts:
            for secret in self.secrets:
                assert secret not in text, f"a secret appears in: {text[:300]!r}"
        return len(texts)
