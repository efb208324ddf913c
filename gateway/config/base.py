"""What every part of the configuration shares: the error, the source kinds, the strict model
every table is, and the checks of a secret's length and strength."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict

from gateway.config.placeholders import GENERATE, weakness

__all__ = [
    "MIN_HMAC_SECRET_LENGTH",
    "MIN_SECRET_LENGTH",
    "NAME_PATTERN",
    "ConfigError",
    "SourceKind",
    "Strict",
    "check_secret",
]


class ConfigError(Exception):
    """A configuration file that cannot be used; the message lists every problem.

    ``unset_variables``: the environment variables the file names that are not set (a command
    line can say how to set them, or how to check the rest without them)."""

    def __init__(self, message: str, *, unset_variables: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.unset_variables = unset_variables


class SourceKind(StrEnum):
    CARECLOUD = "carecloud"
    JOPTIC = "joptic"
    AXIM = "axim"
    COMESTRI = "comestri"


NAME_PATTERN = r"^[a-z][a-z0-9_-]{0,62}$"
MIN_SECRET_LENGTH = 16
MIN_HMAC_SECRET_LENGTH = 32


def _secret_problem(value: str) -> str | None:
    """Why ``value`` cannot be a secret (a placeholder, a famous weak value), with the fix."""
    weak = weakness(value)
    return None if weak is None else f"{weak}: generate one, e.g. `{GENERATE}`"


def check_secret(value: str, minimum: int, what: str) -> None:
    """``ValueError`` for a secret shorter than ``minimum`` characters, or a weak one."""
    if len(value.strip()) < minimum:
        raise ValueError(f"{what} must have at least {minimum} characters: generate one, e.g. "
                         f"`{GENERATE}`")
    problem = _secret_problem(value)
    if problem is not None:
        raise ValueError(problem)


class Strict(BaseModel):
    # Unknown keys are typos: reject them at start, not in production.
    model_config = ConfigDict(extra="forbid", frozen=True)
