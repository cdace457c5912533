r"""Exact finite-N β-Jacobi and β-prime samplers (Edelman–Sutton CS matrix model).

The β-Jacobi gas on :math:`(0, 1)^N`,

.. math::

    p(x) \propto \prod_{i<j}|x_i - x_j|^\beta\prod_i x_i^{a-1}(1-x_i)^{b-1},

is the Selberg integrand of :func:`htmp_infer.ensembles.jacobi.jacobi_log_normalizer`
(docs/maths.md §4.2). Its image under :math:`\lambda = c\,x/(1-x)` is the β-prime gas of
:func:`htmp_infer.ensembles.jacobi.betaprime_log_likelihood`. Randomness is explicit,
as in
:mod:`htmp_infer.ensembles.sampling`: an integer seed, a numpy ``Generator`` or a JAX
key.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from htmp_infer.ensembles._lapack import bidiagonal_singular_values
from htmp_infer.ensembles.sampling import KeyLike, as_generator
from htmp_infer.errors import HTMPError

__all__ = [
    "sample_beta_jacobi",
    "sample_beta_jacobi_with_complement",
    "sample_betaprime",
]


def _log_gamma_variates(rng: np.random.Generator, shape: NDArray[Any]) -> NDArray[Any]:
    r"""Draw :math:`\log G` for independent :math:`G \sim \mathrm{Gamma}(k)`, any k > 0.

    For :math:`k < 1` a Gamma draw underflows float64 as soon as :math:`k \lesssim
    10^{-3}` (it behaves like :math:`U^{1/k}`), so the logarithm is drawn directly
    through the exact identity :math:`G_k \overset{d}{=} G_{k+1}\,U^{1/k}`
    (Marsaglia & Tsang 2000): :math:`\log G = \log G_{k+1} + \log(U)/k`.
    """
    small = shape < 1.0
    boosted = np.where(small, shape + 1.0, shape)
    out = np.log(rng.gamma(boosted))
    u = rng.random(shape.shape)
    # 1 - u lies in (0, 1]: its log is finite
    out = out + np.where(small, np.log1p(-u) / shape, 0.0)
    return np.asarray(out, dtype=np.float64)


def _cos_sin(
    rng: np.random.Generator, p: NDArray[Any], q: NDArray[Any]
) -> tuple[NDArray[Any], NDArray[Any]]:
    r"""Return :math:`(c, s)` with :math:`c^2 \sim \mathrm{Beta}(p, q)` and
    :math:`s^2 = 1 - c^2`, both to full relative accuracy.

    :math:`c^2 = G_p/(G_p+G_q)` and :math:`s^2 = G_q/(G_p+G_q)` are formed from the
    logarithms of the two Gamma variates, so neither is computed as :math:`1 - `
    the other and a value near 0 keeps all its digits (or underflows to an exact
    0 only when its true value is below the float64 range).
    """
    lp = _log_gamma_variates(rng, p)
    lq = _log_gamma_variates(rng, q)
    total = np.logaddexp(lp, lq)
    return np.exp(0.5 * (lp - total)), np.exp(0.5 * (lq - total))


def _bidiagonals(
    rng: np.random.Generator, n: int, beta: float, a: float, b: float, count: int
) -> tuple[NDArray[Any], NDArray[Any], NDArray[Any], NDArray[Any]]:
    r"""Draw ``count`` CS pairs: diagonals and super-diagonals of :math:`B_{11}`,
    :math:`B_{21}` (absolute values), shapes ``(count, n)`` and ``(count, n-1)``.

    See :func:`sample_beta_jacobi_with_complement` for the model.
    """
    half = 0.5 * beta
    k = np.arange(1, n + 1, dtype=np.float64)  # c_1 .. c_N
    kp = np.arange(1, n, dtype=np.float64)  # c'_1 .. c'_{N-1}
    p_c = np.broadcast_to(a + half * (k - 1.0), (count, n))
    q_c = np.broadcast_to(b + half * (k - 1.0), (count, n))
    p_cp = np.broadcast_to(half * kp, (count, n - 1))
    q_cp = np.broadcast_to(a + b + half * (kp - 1.0), (count, n - 1))
    c, s = _cos_sin(rng, p_c, q_c)
    cp, sp = _cos_sin(rng, p_cp, q_cp)
    # Reverse so index 0 is k = N (top-left of the bidiagonals).
    c, s = c[:, ::-1], s[:, ::-1]
    cp, sp = cp[:, ::-1], sp[:, ::-1]
    # diag: c_N, then c_k s'_k for k = N-1..1; super: s_k c'_{k-1} for k = N..2.
    d11 = np.concatenate([c[:, :1], c[:, 1:] * sp], axis=1)
    e11 = s[:, :-1] * cp
    d21 = np.concatenate([s[:, :1], s[:, 1:] * sp], axis=1)
    e21 = c[:, :-1] * cp
    return d11, e11, d21, e21


def _validate(n: int, beta: float, a: float, b: float) -> None:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise HTMPError(f"n must be an integer >= 1, got {n!r}")
    for name, value in (("beta", beta), ("a", a), ("b", b)):
        if not (np.isfinite(value) and value > 0):
            raise HTMPError(f"{name} must be finite and > 0, got {value}")


def sample_beta_jacobi_with_complement(
    key: KeyLike,
    n: int,
    beta: float,
    a: float,
    b: float,
    *,
    size: int | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    r"""Draw exact β-Jacobi spectra :math:`x` together with :math:`1 - x`.

    Parameters
    ----------
    key : int, numpy.random.Generator or jax.Array
        Source of randomness.
    n : int
        Number of eigenvalues :math:`N \ge 1`.
    beta : float
        Dyson index :math:`\beta > 0` (any size, e.g. :math:`\kappa/N` with
        :math:`\kappa = 10^{-2}`, :math:`N = 2000`).
    a, b : float
        One-body exponents :math:`a, b > 0`: weight :math:`x^{a-1}(1-x)^{b-1}`.
    size : int, optional
        Number of independent spectra; ``None`` returns one.

    Returns
    -------
    x : ndarray
        Sorted (ascending) eigenvalues in :math:`[0, 1]`, shape ``(n,)`` or
        ``(size, n)``.
    one_minus_x : ndarray
        :math:`1 - x` in the same order (descending), each entry to full relative
        accuracy, also for :math:`x` within :math:`10^{-16}` of 1.

    Notes
    -----
    Edelman & Sutton (2008, Thm 1.5; Killip & Nenciu 2004): draw independent angles
    with

    .. math::

        c_k^2 &\sim \mathrm{Beta}\bigl(\tfrac\beta2(a'+k),\ \tfrac\beta2(b'+k)\bigr),
        \quad k = 1..N, \\
        {c'_k}^2 &\sim \mathrm{Beta}\bigl(\tfrac\beta2 k,\
        \tfrac\beta2(a'+b'+1+k)\bigr), \quad k = 1..N-1,

    :math:`s_k^2 = 1 - c_k^2`, :math:`{s'_k}^2 = 1 - {c'_k}^2`. The upper bidiagonal
    blocks

    .. math::

        B_{11} &= \mathrm{bidiag}\bigl(\mathrm{diag}=(c_N, c_{N-1}s'_{N-1}, \dots,
        c_1 s'_1),\ \mathrm{super}=(-s_N c'_{N-1}, \dots, -s_2 c'_1)\bigr), \\
        B_{21} &= \mathrm{bidiag}\bigl(\mathrm{diag}=(-s_N, -s_{N-1}s'_{N-1}, \dots,
        -s_1 s'_1),\ \mathrm{super}=(-c_N c'_{N-1}, \dots, -c_2 c'_1)\bigr)

    satisfy :math:`B_{11}^\top B_{11} + B_{21}^\top B_{21} = I` (the columns of
    :math:`[B_{11}; B_{21}]` are orthonormal), so in the CS decomposition
    :math:`B_{11} = U_1 C V^\top`, :math:`B_{21} = U_2 S V^\top`, and the CS values
    :math:`x_i = \cos^2\theta_i` have density :math:`\propto|\Delta(x)|^\beta\prod
    x_i^{\frac\beta2(a'+1)-1}(1-x_i)^{\frac\beta2(b'+1)-1}`. Matching exponents,
    :math:`a = \frac\beta2(a'+1)`, :math:`b = \frac\beta2(b'+1)`, so the Beta
    parameters in terms of :math:`(a, b)` are

    .. math::

        c_k^2 \sim \mathrm{Beta}\bigl(a + \tfrac\beta2(k-1),\
        b + \tfrac\beta2(k-1)\bigr), \qquad
        {c'_k}^2 \sim \mathrm{Beta}\bigl(\tfrac\beta2 k,\
        a + b + \tfrac\beta2(k-1)\bigr),

    all positive for every :math:`a, b, \beta > 0` (Edelman–Sutton's
    :math:`a', b' > -1`). :math:`N = 1` gives :math:`x = c_1^2 \sim
    \mathrm{Beta}(a, b)`.

    The cosines and sines are formed from log-Gamma variates
    (:math:`c^2 = G_p/(G_p+G_q)`, :math:`s^2 = G_q/(G_p+G_q)`), so both are accurate
    even where one of them is tiny, and tiny-shape Gamma variates do not underflow
    (:func:`_log_gamma_variates`). :math:`x` are the squared singular values of
    :math:`B_{11}` and :math:`1 - x` those of :math:`B_{21}`, each computed by
    LAPACK's dqds (``dlasq1``), accurate to a few ulps *relative* to each value
    however small. The entries of :math:`B_{11}` and :math:`B_{21}` are products of
    such cosines and sines, hence also relatively accurate. Cost :math:`O(N^2)`
    per spectrum. Values whose true size is below the float64 range (only for
    extremely small :math:`a` or :math:`b`) are returned as exact zeros.
    """
    _validate(n, beta, a, b)
    count = 1 if size is None else int(size)
    if count < 1:
        raise HTMPError(f"size must be >= 1, got {size}")
    d11, e11, d21, e21 = _bidiagonals(as_generator(key), n, beta, a, b, count)
    x = np.empty((count, n))
    y = np.empty((count, n))
    for r in range(count):
        x[r] = bidiagonal_singular_values(d11[r], e11[r]) ** 2
        y[r] = bidiagonal_singular_values(d21[r], e21[r])[::-1] ** 2
    np.clip(x, 0.0, 1.0, out=x)
    np.clip(y, 0.0, 1.0, out=y)
    if size is None:
        return x[0], y[0]
    return x, y


def sample_beta_jacobi(
    key: KeyLike,
    n: int,
    beta: float,
    a: float,
    b: float,
    *,
    size: int | None = None,
) -> NDArray[np.float64]:
    r"""Draw exact β-Jacobi spectra for any :math:`\beta > 0`.

    Parameters
    ----------
    key : int, numpy.random.Generator or jax.Array
        Source of randomness.
    n : int
        Number of eigenvalues :math:`N \ge 1`.
    beta : float
        Dyson index :math:`\beta > 0`.
    a, b : float
        One-body exponents :math:`a, b > 0`.
    size : int, optional
        Number of independent spectra; ``None`` returns one.

    Returns
    -------
    ndarray
        Sorted eigenvalues in :math:`[0, 1]`, shape ``(n,)`` or ``(size, n)``.

    Notes
    -----
    The density of the unordered eigenvalues is

    .. math::

        p(x) = \frac{1}{S_N(a, b, \beta/2)}\prod_{i<j}|x_i - x_j|^\beta
               \prod_i x_i^{a-1}(1-x_i)^{b-1}

    (:func:`~htmp_infer.ensembles.jacobi.jacobi_log_normalizer`). The Edelman–Sutton CS
    matrix model is described in :func:`sample_beta_jacobi_with_complement`, which
    also returns :math:`1 - x` to full relative accuracy.
    """
    x, _ = sample_beta_jacobi_with_complement(key, n, beta, a, b, size=size)
    return x


def sample_betaprime(
    key: KeyLike,
    n: int,
    beta: float,
    a: float,
    b_prime: float,
    scale: float = 1.0,
    *,
    size: int | None = None,
) -> NDArray[np.float64]:
    r"""Draw exact β-prime spectra (the F-type, power-law-confined gas).

    Parameters
    ----------
    key : int, numpy.random.Generator or jax.Array
        Source of randomness.
    n : int
        Number of eigenvalues :math:`N \ge 1`.
    beta : float
        Dyson index :math:`\beta > 0`.
    a : float
        Exponent at the origin, :math:`a > 0` (:math:`\lambda^{a-1}`).
    b_prime : float
        Tail exponent :math:`b' > 0`.
    scale : float, default 1.0
        Scale :math:`c > 0`.
    size : int, optional
        Number of independent spectra; ``None`` returns one.

    Returns
    -------
    ndarray
        Sorted eigenvalues in :math:`[0, \infty)`, shape ``(n,)`` or ``(size, n)``.

    Notes
    -----
    The density of the unordered eigenvalues is that of
    :func:`~htmp_infer.ensembles.jacobi.betaprime_log_likelihood`,

    .. math::

        p(\lambda) \propto \prod_{i<j}|\lambda_i-\lambda_j|^\beta
        \prod_i\lambda_i^{a-1}(1+\lambda_i/c)^{-(a+b')-\beta(N-1)} .

    With :math:`\lambda = c\,x/(1-x)` it is the β-Jacobi gas with exponents
    :math:`(a, b')` (:func:`~htmp_infer.ensembles.jacobi.betaprime_log_normalizer`
    derives
    the change of variables), so :math:`\lambda_i = c\,x_i/(1-x_i)` with
    :math:`x` and :math:`1 - x` both from
    :func:`sample_beta_jacobi_with_complement`; the ratio keeps full relative
    accuracy at both ends (:math:`x \to 0` and :math:`x \to 1`, i.e. large
    :math:`\lambda`). A draw whose :math:`1 - x` underflows to 0 maps to
    ``inf``.
    """
    if not (np.isfinite(scale) and scale > 0):
        raise HTMPError(f"scale must be finite and > 0, got {scale}")
    x, y = sample_beta_jacobi_with_complement(key, n, beta, a, b_prime, size=size)
    with np.errstate(divide="ignore"):
        return np.asarray(scale * (x / y), dtype=np.float64)
