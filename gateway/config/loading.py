"""Reading a configuration: the TOML file, the environment variables it names, and every problem
of both in one :class:`ConfigError`."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from gateway.config.base import MIN_HMAC_SECRET_LENGTH, MIN_SECRET_LENGTH, ConfigError
from gateway.config.messages import Problem, describe_errors, source_label
from gateway.config.model import Config
from gateway.config.placeholders import GENERATE, weakness
from gateway.config.sources import SourceTuning
from gateway.config.toml_errors import describe as describe_toml
from gateway.config.toml_errors import entry_label

__all__ = ["env_variables", "load_config", "parse_config"]

VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")  # an environment variable's name

_PRODUCTION_NEEDS_A_SECRET = (
    "[server] cursor_secret: the production profile needs a secret to sign cursors with: set "
    "cursor_secret_env to an environment variable that holds one, or cursor_secret (generate "
    f"one, e.g. `{GENERATE}`), or profile = \"development\" on a machine of your own")


def parse_config(
    data: Mapping[str, Any], *, origin: str = "<config>", environ: Mapping[str, str] | None = None,
    check_environment: bool = True,
) -> Config:
    """Validate a decoded TOML document; ``origin`` names it in error messages.

    Every problem is reported at once: field errors, token problems and duplicate names.
    ``check_environment=False`` checks everything but the environment variables the document
    names (``check-config --no-env``, for a machine without the secrets); the configuration
    then holds no secret read from the environment.
    """
    environ = os.environ if environ is None else environ
    config: Config | None = None
    problems: list[Problem] = []
    try:
        resolved = _with_environment(data, environ) if check_environment else data
        config = Config.model_validate(_with_defaults(resolved))
    except ValidationError as exc:
        problems += describe_errors(exc, data)
    problems += _token_problems(data, environ, check_environment)
    problems += _cursor_secret_problems(data, environ, check_environment)
    problems += _jwt_secret_problems(data, environ, check_environment)
    problems += _duplicate_names(data)
    if problems or config is None:
        problems.sort(key=lambda problem: problem[0])
        unset = tuple(variable for variable in env_variables(data)
                      if check_environment and variable not in environ)
        raise ConfigError("\n".join(f"{origin}: {text}" for _, text in problems),
                          unset_variables=unset)
    return config


def env_variables(data: Mapping[str, Any]) -> tuple[str, ...]:
    """The environment variables a decoded configuration reads (its ``*_env`` keys), once each:
    ``[server] cursor_secret_env``, ``[auth.jwt] secret_env``, each source's ``token_env``."""
    server, auth = data.get("server"), data.get("auth")
    jwt = auth.get("jwt") if isinstance(auth, dict) else None
    named = [server.get("cursor_secret_env") if isinstance(server, dict) else None,
             jwt.get("secret_env") if isinstance(jwt, dict) else None,
             *(entry.get("token_env") for _, entry in _source_entries(data))]
    return tuple(dict.fromkeys(variable for variable in named
                               if isinstance(variable, str) and VARIABLE.fullmatch(variable)))


def _source_entries(data: Mapping[str, Any]) -> list[tuple[int, dict[str, Any]]]:
    sources = data.get("sources")
    if not isinstance(sources, list):
        return []
    return [(i, entry) for i, entry in enumerate(sources) if isinstance(entry, dict)]


def _variable_problem(variable: str, environ: Mapping[str, str], check_environment: bool, *,
                      how: str, min_length: int = 1) -> str | None:
    """What is wrong with the environment variable a ``*_env`` key names (``how``: how to set
    it), or None."""
    if not variable.strip():
        return "name an environment variable"
    if not VARIABLE.fullmatch(variable):
        return (f"{variable!r} is not the name of an environment variable (letters, digits and "
                "_, without a $)")
    if not check_environment:
        return None
    value = environ.get(variable)
    if value is None:
        return f"environment variable {variable} is not set: {how}"
    if not value.strip():
        return f"environment variable {variable} is empty: {how}"
    if len(value.strip()) < min_length:
        return f"the secret in {variable} must have at least {min_length} characters: {how}"
    weak = weakness(value)
    return None if weak is None else f"the value of {variable} {weak}: {how}"


def _with_environment(data: Mapping[str, Any], environ: Mapping[str, str]) -> Mapping[str, Any]:
    """``[server] cursor_secret_env``'s secret as ``cursor_secret``, when it can be used (what is
    wrong with it, :func:`_cursor_secret_problems` says)."""
    server = data.get("server")
    if not isinstance(server, dict) or "cursor_secret" in server:
        return data
    variable = server.get("cursor_secret_env")
    if not isinstance(variable, str) or _variable_problem(
            variable, environ, True, how="", min_length=MIN_SECRET_LENGTH) is not None:
        return data
    return {**data, "server": {**server, "cursor_secret": environ[variable]}}


def _token_problems(data: Mapping[str, Any], environ: Mapping[str, str],
                    check_environment: bool) -> list[Problem]:
    """Exactly one of ``token`` and ``token_env``; no blank or placeholder token, no unset,
    blank or placeholder variable."""
    problems: list[Problem] = []
    for i, entry in _source_entries(data):
        token, variable = entry.get("token"), entry.get("token_env")
        text = ""
        if "token" in entry and "token_env" in entry:
            text = ": give exactly one of token and token_env, not both"
        elif "token" not in entry and "token_env" not in entry:
            text = (": no token: give token_env, naming an environment variable that holds it, "
                    "or token")
        elif isinstance(token, str) and not token.strip():
            text = " token: the token is empty"
        elif isinstance(token, str) and (weak := weakness(token)) is not None:
            text = (f" token: {weak}, not a token: put the source's token in an environment "
                    "variable, and its name in token_env")
        elif isinstance(variable, str):
            problem = _variable_problem(variable, environ, check_environment,
                                        how=f"export {variable}=… with this source's token")
            text = f" token_env: {problem}" if problem else ""
        if text:
            problems.append((i + 1, source_label(i, data) + text))
    return problems


def _cursor_secret_problems(data: Mapping[str, Any], environ: Mapping[str, str],
                            check_environment: bool) -> list[Problem]:
    """One of ``cursor_secret`` and ``cursor_secret_env``, a usable variable, and a secret at
    all for the production profile (the demo generates one)."""
    server = data.get("server")
    server = server if isinstance(server, dict) else {}
    secret, variable = server.get("cursor_secret"), server.get("cursor_secret_env")
    if "cursor_secret" in server and "cursor_secret_env" in server:
        return [(0, "[server]: give one of cursor_secret and cursor_secret_env, not both")]
    if isinstance(variable, str):
        problem = _variable_problem(variable, environ, check_environment,
                                    how=f'export {variable}="$({GENERATE})"',
                                    min_length=MIN_SECRET_LENGTH)
        return [(0, f"[server] cursor_secret_env: {problem}")] if problem else []
    if "cursor_secret_env" in server or server.get("profile", "production") != "production":
        return []  # a variable's name of the wrong type (its field's error says so), or no need
    if secret is not None and (not isinstance(secret, str) or secret.strip()):
        return []  # a secret, or a value of the wrong type (the field's own error says so)
    return [(0, _PRODUCTION_NEEDS_A_SECRET)]


def _jwt_secret_problems(data: Mapping[str, Any], environ: Mapping[str, str],
                         check_environment: bool) -> list[Problem]:
    """``[auth.jwt] secret_env`` names a variable that is set, with a long enough secret."""
    auth = data.get("auth")
    jwt = auth.get("jwt") if isinstance(auth, dict) else None
    variable = jwt.get("secret_env") if isinstance(jwt, dict) else None
    if not isinstance(variable, str):
        return []
    problem = _variable_problem(
        variable, environ, check_environment, min_length=MIN_HMAC_SECRET_LENGTH,
        how=f"export {variable}=… with the HS* shared secret (generate one, e.g. "
            f"`{GENERATE}`)")
    return [(0, f"[auth.jwt] secret_env: {problem}")] if problem else []


def _duplicate_names(data: Mapping[str, Any]) -> list[Problem]:
    problems: list[Problem] = []
    first: dict[str, int] = {}
    for i, entry in _source_entries(data):
        name = entry.get("name")
        if not isinstance(name, str):
            continue
        if name in first:
            problems.append((i + 1, f"{source_label(i, data)} name: duplicate source name {name!r} "
                                    f"(also {entry_label('sources', first[name] + 1)})"))
        else:
            first[name] = i
    return problems


def _with_defaults(data: Mapping[str, Any]) -> Mapping[str, Any]:
    """Each source entry over ``[defaults]``, merged field by field (the entry wins)."""
    defaults, sources = data.get("defaults"), data.get("sources")
    if not isinstance(defaults, dict) or not isinstance(sources, list):
        return data
    # Unknown keys are reported once, at [defaults] <key>, not again under every entry.
    known = {k: v for k, v in defaults.items() if k in SourceTuning.model_fields}
    merged = [{**known, **s} if isinstance(s, dict) else s for s in sources]
    return {**data, "sources": merged}


def load_config(path: str | Path, *, environ: Mapping[str, str] | None = None,
                check_environment: bool = True) -> Config:
    """Read and validate a TOML configuration file (see :func:`parse_config`)."""
    return config_from_text(read_config_text(path), origin=path, environ=environ,
                            check_environment=check_environment)


def read_config_text(path: str | Path) -> str:
    """A configuration file's text, or :class:`ConfigError` naming why it cannot be read."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file (TOML is UTF-8 text)") from None


def config_from_text(text: str, *, origin: str | Path,
                     environ: Mapping[str, str] | None = None,
                     check_environment: bool = True) -> Config:
    """Validate a configuration file's ``text`` (its messages name ``origin``): what
    :func:`load_config` does once the file is read, for a caller that keeps the text it
    checked (``serve --workers`` hands exactly that text to its workers)."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{origin}, {describe_toml(text, exc)}") from None
    return parse_config(data, origin=str(origin), environ=environ,
                        check_environment=check_environment)
