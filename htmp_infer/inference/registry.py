"""Resolve model names to the model modules of :mod:`htmp_infer.models`.

The models sit below the inference engines (they import the mechanisms, never the
engines), so this module imports them directly; the registry is the ``REGISTRY``
mapping of :mod:`htmp_infer.models`.
"""

from __future__ import annotations

import importlib
from typing import cast

from htmp_infer import models
from htmp_infer.errors import ArgumentError
from htmp_infer.mechanisms.protocol import MechanismModel

__all__ = ["available_models", "load_model"]


def available_models() -> list[str]:
    """Names of the registered models."""
    return sorted(models.REGISTRY)


def load_model(name: str) -> MechanismModel:
    """Return the module that defines model ``name``.

    Raises
    ------
    ArgumentError
        For an unknown name, listing the known ones.
    """
    if name not in models.REGISTRY:
        raise ArgumentError(
            f"unknown model {name!r}; choose one of {', '.join(available_models())}"
        )
    return cast(MechanismModel, importlib.import_module(models.REGISTRY[name]))
