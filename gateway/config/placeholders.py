"""Secrets that are placeholders or famous weak values: refused where a configuration is read.

A configuration copied from an example keeps the example's ``"replace-me-…"`` unless something
says so; a secret everyone knows (``"secret"``, jwt.io's ``"your-256-bit-secret"``) signs
nothing. The rule is narrow on purpose: a random secret, or a long made-up one such as
``"a-cursor-secret-for-the-tests"``, passes. Example::

    >>> weakness("replace-me-with-the-output-of-the-command-above")
    'looks like a placeholder'
    >>> weakness("${CARECLOUD_TOKEN}")
    'is not expanded: TOML has no variables (name the variable in a *_env key instead)'
    >>> weakness("q3J7vR0s-bN1xW8eYt2LmZ5cH4pA6dK9") is None
    True

A value is refused, compared without case and without anything but letters and digits, when
it holds a placeholder's words (change-me, replace-me, placeholder, example, your-secret…),
when it is one character repeated (``"xxxx-xxxx"``, ``"0000000000000000"``), when it is a
famous weak value or one repeated to length (``"secretsecretsecret"``, ``"1234567890123456"``),
or when it is written as one (``"…"``, ``"<your token>"``, ``"${VAR}"``).
"""

from __future__ import annotations

import re

__all__ = ["GENERATE", "weakness"]

GENERATE = "python -c 'import secrets; print(secrets.token_urlsafe(32))'"

_MARKERS = ("changeme", "changethis", "replaceme", "replacethis", "replacewith", "placeholder",
            "example", "dummy", "yoursecret", "yourtoken", "yourkey", "yourpassword",
            "insertyour", "putyour", "generateone", "fillmein")
_FAMOUS = ("secret", "password", "passw0rd", "admin", "changeit", "default", "test", "token",
           "qwerty", "letmein", "welcome", "iloveyou", "trustno1", "hunter2", "123456",
           "0123456789", "1234567890", "0123456789abcdef", "abcdef", "abc123",
           "abcdefghijklmnopqrstuvwxyz", "mysecret", "supersecret", "topsecret", "secretkey",
           "mysecretkey", "jwtsecret", "your256bitsecret", "cursorsecret", "apikey")
_WRITTEN = re.compile(r"…|\.\.\.|<[^>]*>|\{\{.*\}\}")
_SHELL = re.compile(r"\$\{?[A-Za-z_]")


def weakness(value: str) -> str | None:
    """What is wrong with ``value`` as a secret, in words, or None when nothing is known."""
    if _SHELL.search(value):
        return "is not expanded: TOML has no variables (name the variable in a *_env key instead)"
    plain = re.sub(r"[^0-9a-z]", "", value.casefold())
    if _WRITTEN.search(value) or any(marker in plain for marker in _MARKERS):
        return "looks like a placeholder"
    if not plain and value.strip():
        return "looks like a placeholder (no letter or digit)"
    if len(plain) >= 4 and len(set(plain)) == 1:
        return "looks like a placeholder (one character repeated)"
    if any(len(plain) >= len(word) and plain == (word * (len(plain) // len(word) + 1))[:len(plain)]
           for word in _FAMOUS):
        return "is a well-known weak value"
    return None
