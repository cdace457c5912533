"""Resolve model names to the model modules of the top-level ``models`` package.

The library never imports ``models`` at import time (the arrow goes
``models -> htmp_infer``); names are resolved lazily here.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from htmp_infer.errors import HTMPError

__all__ = ["available_models", "load_model"]


def available_models() -> list[str]:
    """Names of the registered models."""
    registry: dict[str, str] = importlib.import_module("models").REGISTRY
    return sorted(registry)


def load_model(name: str) -> ModuleType:
    """Return the module that defines model ``name``.

    Raises
    ------
    HTMPError
        For an unknown name, listing the known ones.
    """
    registry: dict[str, str] = importlib.import_module("models").REGISTRY
    if name not in registry:
        raise HTMPError(
            f"unknown model {name!r}; choose one of {', '.join(sorted(registry))}"
        )
    return importlib.import_module(registry[name])
