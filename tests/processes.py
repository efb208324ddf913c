"""A command run as a user runs it: a real subprocess whose output is read as it comes.

Example::

    with Process([sys.executable, "-m", "gateway", "demo", "--port", "0"]) as demo:
        line = demo.wait_for(r"GraphQL +(\\S+)")
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

ROOT = Path(__file__).resolve().parents[1]


class Process:
    """A subprocess with stdout and stderr merged, collected line by line by a thread."""

    def __init__(self, argv: Sequence[str], *, cwd: Path = ROOT,
                 env: dict[str, str] | None = None) -> None:
        self.argv = list(argv)
        self.cwd = cwd
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._popen: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    def start(self) -> Process:
        self._popen = subprocess.Popen(
            self.argv, cwd=self.cwd, env=self.env, text=True, stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT, start_new_session=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        return self

    def _read(self) -> None:
        assert self._popen is not None and self._popen.stdout is not None
        for line in self._popen.stdout:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    @property
    def pid(self) -> int:
        assert self._popen is not None
        return self._popen.pid

    def ended(self) -> str | None:
        """What the process printed, once it has exited; None while it runs."""
        assert self._popen is not None
        return None if self._popen.poll() is None else self.output

    @property
    def output(self) -> str:
        with self._changed:
            return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        """The first output line matching ``pattern``, waiting for it up to ``timeout``."""
        assert self._popen is not None
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern)
        seen = 0
        with self._changed:
            while True:
                for line in self.lines[seen:]:
                    match = regex.search(line)
                    if match:
                        return match
                seen = len(self.lines)
                left = deadline - time.monotonic()
                reader_done = self._reader is not None and not self._reader.is_alive()
                if left <= 0 or reader_done:
                    raise AssertionError(
                        f"no line matching {pattern!r} (exit status {self._popen.poll()}):\n"
                        + "\n".join(self.lines))
                self._changed.wait(min(left, 0.5))

    def stop(self, sig: int = signal.SIGINT, timeout: float = 30) -> int:
        """Send ``sig`` to the process group (as Ctrl+C does) and wait for the exit status."""
        assert self._popen is not None
        if self._popen.poll() is None:
            os.killpg(self._popen.pid, sig)
        try:
            code = self._popen.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self._popen.pid, signal.SIGKILL)
            code = self._popen.wait(10)
        if self._reader is not None:
            self._reader.join(10)
        if self._popen.stdout is not None:
            self._popen.stdout.close()
        return code

    def __enter__(self) -> Process:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
