"""Embedded emulators of the four upstream APIs, faithful to the documents in the seed docs.

Each kind is one module with ``DEMO_TOKEN`` and ``create_app(*, token=DEMO_TOKEN, now=utc_now)``;
every app is wrapped by :mod:`gateway.emulators.common` (request log, fault injection, control API)
and owns a changeable copy of its seeded data (:mod:`gateway.emulators.changes`).
Where an upstream document is silent, the behaviour chosen is written down in
``docs/emulators/`` (one page per kind).
"""

from __future__ import annotations

from typing import Protocol

from starlette.applications import Starlette

import gateway.emulators.axim as axim
import gateway.emulators.carecloud as carecloud
import gateway.emulators.comestri as comestri
import gateway.emulators.joptic as joptic
from gateway.emulators.changes import Clock, EmulatorData, utc_now

__all__ = ["DEMO_TOKENS", "KINDS", "create_emulator", "emulator_data"]


class _Factory(Protocol):
    def __call__(self, *, now: Clock = ...) -> Starlette: ...


_MODULES = {"carecloud": carecloud, "joptic": joptic, "axim": axim, "comestri": comestri}
_FACTORIES: dict[str, _Factory] = {kind: module.create_app for kind, module in _MODULES.items()}
KINDS: tuple[str, ...] = tuple(_MODULES)
DEMO_TOKENS: dict[str, str] = {kind: module.DEMO_TOKEN for kind, module in _MODULES.items()}


def create_emulator(kind: str, *, now: Clock = utc_now) -> Starlette:
    """A fresh emulator app of ``kind`` with its demo token and its own copy of the seeded demo
    data, its changes stamped by ``now``."""
    return _FACTORIES[kind](now=now)


def emulator_data(app: object) -> EmulatorData:
    """The changeable data of an app :func:`create_emulator` made (its ``app.state.data``)."""
    data = getattr(getattr(app, "state", None), "data", None)
    if not isinstance(data, EmulatorData):
        raise TypeError(f"not an emulator app: {app!r}")
    return data
