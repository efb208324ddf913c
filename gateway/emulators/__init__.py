"""Embedded emulators of the four upstream APIs, faithful to the documents in the seed docs.

Each kind is one module with ``DEMO_TOKEN`` and ``create_app(*, token=DEMO_TOKEN)``; every app is
wrapped by :mod:`gateway.emulators.common` (request log, fault injection, control API).
Where an upstream document is silent, the behaviour chosen is written down in
``docs/emulators/`` (one page per kind).
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.applications import Starlette

import gateway.emulators.axim as axim
import gateway.emulators.carecloud as carecloud
import gateway.emulators.comestri as comestri
import gateway.emulators.joptic as joptic

__all__ = ["DEMO_TOKENS", "KINDS", "create_emulator"]

_MODULES = {"carecloud": carecloud, "joptic": joptic, "axim": axim, "comestri": comestri}
_FACTORIES: dict[str, Callable[[], Starlette]] = {
    kind: module.create_app for kind, module in _MODULES.items()
}
KINDS: tuple[str, ...] = tuple(_MODULES)
DEMO_TOKENS: dict[str, str] = {kind: module.DEMO_TOKEN for kind, module in _MODULES.items()}


def create_emulator(kind: str) -> Starlette:
    """A fresh emulator app of ``kind`` with its demo token and seeded demo data."""
    return _FACTORIES[kind]()
