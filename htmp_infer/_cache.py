"""Where htmp-infer keeps what it computes once: ``$HTMP_INFER_CACHE``."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_root", "default_cache_dir"]


def cache_root() -> Path | None:
    """``$HTMP_INFER_CACHE`` (``~/.cache/htmp-infer`` by default); None: off."""
    root = os.environ.get("HTMP_INFER_CACHE")
    if root is None:
        try:
            return Path.home() / ".cache" / "htmp-infer"
        except RuntimeError:  # no home directory: no default cache
            return None
    return Path(root) if root else None


def default_cache_dir() -> Path | None:
    """``$HTMP_INFER_CACHE/spectra``; None when the cache is off."""
    root = cache_root()
    return root / "spectra" if root is not None else None
