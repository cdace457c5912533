"""LAPACK's ``dlasq1`` (dqds): singular values of a bidiagonal matrix.

SciPy has no Python wrapper for it, but exposes every LAPACK routine to Cython in
``scipy.linalg.cython_lapack``; the function pointer is taken from that capsule
and called through ctypes, so no compiled extension of our own is needed.
"""

from __future__ import annotations

import ctypes
from functools import cache
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.linalg import cython_lapack

__all__ = ["bidiagonal_singular_values"]

_P = ctypes.POINTER
_DOUBLE_P = _P(ctypes.c_double)


@cache
def _dlasq1() -> Any:
    capsule = cython_lapack.__pyx_capi__["dlasq1"]
    api = ctypes.pythonapi
    api.PyCapsule_GetName.restype = ctypes.c_char_p
    api.PyCapsule_GetName.argtypes = [ctypes.py_object]
    api.PyCapsule_GetPointer.restype = ctypes.c_void_p
    api.PyCapsule_GetPointer.argtypes = [ctypes.py_object, ctypes.c_char_p]
    pointer = api.PyCapsule_GetPointer(capsule, api.PyCapsule_GetName(capsule))
    signature = ctypes.CFUNCTYPE(
        None, _P(ctypes.c_int), _DOUBLE_P, _DOUBLE_P, _DOUBLE_P, _P(ctypes.c_int)
    )
    return signature(pointer)


def bidiagonal_singular_values(
    diag: NDArray[Any], off: NDArray[Any]
) -> NDArray[np.float64]:
    r"""Singular values of the bidiagonal matrix with ``diag`` and ``off``, ascending.

    Parameters
    ----------
    diag : ndarray
        The :math:`N` diagonal entries.
    off : ndarray
        The :math:`N-1` off-diagonal entries.

    Returns
    -------
    ndarray
        Singular values in ascending order.

    Notes
    -----
    ``dlasq1`` runs the dqds algorithm (Fernando & Parlett 1994): :math:`O(N^2)`
    and accurate to a few ulps *relative* to each singular value, however small,
    where a tridiagonal eigensolver on :math:`BB^\top` is accurate only to
    :math:`\epsilon\,\sigma_{\max}^2`.
    """
    n = int(diag.size)
    d = np.array(diag, dtype=np.float64, copy=True)
    e = np.zeros(max(n, 1), dtype=np.float64)
    e[: n - 1] = off
    work = np.empty(4 * max(n, 1), dtype=np.float64)
    info = ctypes.c_int(0)
    _dlasq1()(
        ctypes.byref(ctypes.c_int(n)),
        d.ctypes.data_as(_DOUBLE_P),
        e.ctypes.data_as(_DOUBLE_P),
        work.ctypes.data_as(_DOUBLE_P),
        ctypes.byref(info),
    )
    if info.value != 0:
        raise FloatingPointError(f"LAPACK dlasq1 failed (info={info.value})")
    return np.sort(d)
