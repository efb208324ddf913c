"""Log lines: JSON, one object per line, or human-readable on a terminal.

The gateway logs with the standard library (``logging.getLogger("gateway.…")``), its fields as
``extra={...}``; structlog's :class:`~structlog.stdlib.ProcessorFormatter` renders every record,
the servers' and libraries' too, as JSON (``[logging] format = "json"``, or ``"auto"`` when
stderr is not a terminal) or as aligned ``key=value`` lines (``"console"``, or ``"auto"`` on a
terminal: ``make run``)::

    {"request_id": "4b1e…", "operation": "GroupsWithProducts", "status": 200, "outcome": "ok",
     "duration_ms": 12.4, "upstream": {"axim": {"requests": 1, "cacheHits": 0, …}}, …,
     "event": "graphql request", "level": "info", "logger": "gateway.access",
     "timestamp": "2026-…Z"}

Loggers: ``gateway.access`` (a line per GraphQL request, ``[server] access_log``),
``gateway.upstream`` (a line per failed upstream call), ``gateway.errors``, ``gateway.cache``,
``gateway.runtime``; uvicorn's own under ``uvicorn``. No line carries a token, a secret or an
upstream URL: fields name sources and route templates only. A line carries at most
:data:`MAX_FIELD` characters of any one field (what a client wrote may reach a line: an
operation name, a path with its query string): the rest is cut, and counted.
"""

from __future__ import annotations

import copy
import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import orjson
import structlog
from uvicorn.config import LOGGING_CONFIG

__all__ = ["MAX_FIELD", "formatter", "log_config", "wants_json"]

MAX_FIELD = 1024  # characters of one field of a line


def _bounded(logger: Any, method: str, event: MutableMapping[str, Any]
             ) -> MutableMapping[str, Any]:
    """Every text field of the line, cut to :data:`MAX_FIELD` characters."""
    for key, value in event.items():
        if isinstance(value, str) and len(value) > MAX_FIELD:
            event[key] = f"{value[:MAX_FIELD]}… ({len(value) - MAX_FIELD} more characters)"
    return event


def _drop_copies(logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
    event.pop("color_message", None)  # uvicorn's own copy of the message, with ANSI colours
    event.pop("message", None)  # the message another formatter left on the record: the event
    return event


def _dumps(event: Any, **_: Any) -> str:
    return orjson.dumps(event, default=str).decode()


def formatter(json: bool = True) -> logging.Formatter:
    """The formatter of every handler (``logging.config.dictConfig`` calls it by name, so a
    worker process builds its own from plain settings)."""
    pre_chain: list[Any] = [
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.stdlib.ExtraAdder(),
        _drop_copies,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any
    if json:
        renderer = [structlog.processors.format_exc_info,
                    structlog.processors.JSONRenderer(serializer=_dumps)]
    else:
        renderer = [structlog.dev.ConsoleRenderer(colors=False)]
    return structlog.stdlib.ProcessorFormatter(
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, _bounded,
                    *renderer],
        foreign_pre_chain=pre_chain)


def wants_json(log_format: str) -> bool:
    """JSON for ``"json"``, and for ``"auto"`` unless stderr is a terminal."""
    if log_format == "auto":
        return not sys.stderr.isatty()
    return log_format == "json"


def log_config(level: str, log_format: str = "auto") -> dict[str, Any]:
    """uvicorn's logging configuration with every line rendered by :func:`formatter`, and the
    gateway's loggers at ``level``. uvicorn applies it in every process it starts."""
    config = copy.deepcopy(LOGGING_CONFIG)
    rendered = {"()": "gateway.observability.logs.formatter", "json": wants_json(log_format)}
    config["formatters"] = {"default": rendered, "access": rendered, "gateway": rendered}
    config["handlers"]["gateway"] = {
        "formatter": "gateway", "class": "logging.StreamHandler", "stream": "ext://sys.stderr",
    }
    config["loggers"]["gateway"] = {
        "handlers": ["gateway"], "level": level.upper(), "propagate": False,
    }
    return config
