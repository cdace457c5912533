r"""Weight matrices from generators that are *not* the fitted models.

The mechanism models (``mp``, ``htmp``, ``inverse_htmp``, ``power_law``, ...) are
β-Laguerre Coulomb gases. To test what the comparison says about matrices that
none of them generated, this module draws weight matrices :math:`W` from simple,
well-understood laws:

==========================  ====================================================
generator                   law of :math:`W` (:math:`N\times M`)
==========================  ====================================================
:func:`gaussian`            i.i.d. :math:`\mathcal N(0, 1)` entries
:func:`power_law_covariance`  i.i.d. rows :math:`\mathcal N(0, \Sigma)`,
                            :math:`\Sigma` with eigenvalues :math:`\propto j^{-a}`
:func:`student_t`           i.i.d. Student-t entries, unit variance
:func:`low_rank_plus_noise`  :math:`AB/\sqrt r + \sigma Z`, rank-:math:`r` product
:func:`well_conditioned`    :math:`U\,\mathrm{diag}(\sqrt{\lambda})\,V^\top`,
                            Haar :math:`U, V`, given :math:`\lambda` (floored)
==========================  ====================================================

Every function takes a :class:`numpy.random.Generator` first, so a seed reproduces
the matrix. The spectrum of a matrix is :meth:`htmp_infer.Spectrum.from_matrix`
(the eigenvalues of :math:`W^\top W`, any orientation); :func:`spectrum_of` is that
call, with the generator's name as the label.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike, NDArray

from htmp_infer.errors import ArgumentError

if TYPE_CHECKING:
    from htmp_infer.spectrum import Spectrum

__all__ = [
    "GENERATORS",
    "floored_eigenvalues",
    "gaussian",
    "haar_orthogonal",
    "low_rank_plus_noise",
    "power_law_covariance",
    "power_law_eigenvalues",
    "spectrum_of",
    "student_t",
    "well_conditioned",
]

FloatArray = NDArray[np.float64]


def _check_rng(rng: object) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise ArgumentError(
            f"rng must be a numpy.random.Generator (np.random.default_rng(seed)), "
            f"got {type(rng).__name__}"
        )
    return rng


def _check_size(value: object, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ArgumentError(f"{what} must be an integer, got {type(value).__name__}")
    if value < 1:
        raise ArgumentError(f"{what} must be >= 1, got {value}")
    return int(value)


def _check_positive(value: object, what: str, *, above: float = 0.0) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.number):
        raise ArgumentError(f"{what} must be a number, got {type(value).__name__}")
    x = float(value)
    if not (math.isfinite(x) and x > above):
        raise ArgumentError(f"{what} must be finite and > {above:g}, got {value}")
    return x


def gaussian(rng: np.random.Generator, n: int, m: int) -> FloatArray:
    r"""An :math:`n\times m` matrix of i.i.d. standard normal entries.

    Law: :math:`W_{ij} \sim \mathcal N(0, 1)` independently. The eigenvalues of
    :math:`W^\top W / \max(n, m)` follow Marchenko–Pastur with ratio
    :math:`\min/\max` as the size grows (the ``mp`` model, exactly, at finite size:
    the real Wishart ensemble is β-Laguerre with β = 1). It is the null control:
    every reading should say random-like.

    Parameters
    ----------
    rng : numpy.random.Generator
        The random stream.
    n, m : int
        Rows and columns.

    Returns
    -------
    ndarray
        Shape ``(n, m)``, float64.
    """
    rng = _check_rng(rng)
    n, m = _check_size(n, "n"), _check_size(m, "m")
    return rng.standard_normal((n, m))


def power_law_eigenvalues(m: int, exponent: float = 1.0) -> FloatArray:
    r"""The population eigenvalues :math:`c\,j^{-a}`, :math:`j = 1..m`, mean one.

    Parameters
    ----------
    m : int
        How many.
    exponent : float
        The decay :math:`a > 0`.

    Returns
    -------
    ndarray
        Descending, ``m`` values whose mean is 1.
    """
    m = _check_size(m, "m")
    a = _check_positive(exponent, "exponent")
    lam = np.arange(1, m + 1, dtype=np.float64) ** -a
    return lam / lam.mean()


def power_law_covariance(
    rng: np.random.Generator, n: int, m: int, exponent: float = 1.0
) -> FloatArray:
    r"""Gaussian rows with a power-law population covariance.

    Law: the rows of :math:`W` are i.i.d. :math:`\mathcal N(0, \Sigma)` in
    :math:`\mathbb R^m`, where :math:`\Sigma` has eigenvalues
    :math:`\sigma_j = c\,j^{-a}`, :math:`j = 1..m`, normalised so that their mean is
    one (:func:`power_law_eigenvalues`); equivalently
    :math:`W = Z\Sigma^{1/2}` with :math:`Z` i.i.d. standard normal, i.e. a
    power-law *column* covariance. :math:`\Sigma` is taken diagonal: for Gaussian
    :math:`Z` the law of the singular values of :math:`Z\Sigma^{1/2}O` does not
    depend on the rotation :math:`O`, so a rotated :math:`\Sigma` gives the same
    spectrum. This is a "data-structure" generator (a sample covariance of
    structured data) with no temperature and no heavy-tailed entries in it.

    Parameters
    ----------
    rng : numpy.random.Generator
        The random stream.
    n, m : int
        Rows (samples) and columns (the dimension of :math:`\Sigma`).
    exponent : float
        The decay :math:`a > 0` of the population eigenvalues.

    Returns
    -------
    ndarray
        Shape ``(n, m)``, float64; ``E[W^T W] / n = Σ``.
    """
    rng = _check_rng(rng)
    n = _check_size(n, "n")
    sigma = power_law_eigenvalues(m, exponent)
    return rng.standard_normal((n, sigma.size)) * np.sqrt(sigma)


def student_t(rng: np.random.Generator, n: int, m: int, df: float = 3.0) -> FloatArray:
    r"""An :math:`n\times m` matrix of i.i.d. Student-t entries of unit variance.

    Law: :math:`W_{ij} = \sqrt{(\nu-2)/\nu}\;T_{ij}`, :math:`T_{ij}` i.i.d.
    Student-t with :math:`\nu` degrees of freedom (variance :math:`\nu/(\nu-2)`),
    so :math:`\operatorname{Var} W_{ij} = 1`. At :math:`\nu = 3` the entries have a
    power-law tail :math:`P(|W_{ij}| > x) \sim x^{-3}` and infinite fourth moment:
    the largest eigenvalues of :math:`W^\top W` leave the Marchenko–Pastur edge
    (heavy-tailed entries, the HT-SR picture, without a Coulomb gas).

    Parameters
    ----------
    rng : numpy.random.Generator
        The random stream.
    n, m : int
        Rows and columns.
    df : float
        Degrees of freedom :math:`\nu > 2` (a finite variance is needed to scale).

    Returns
    -------
    ndarray
        Shape ``(n, m)``, float64.
    """
    rng = _check_rng(rng)
    n, m = _check_size(n, "n"), _check_size(m, "m")
    nu = _check_positive(df, "df", above=2.0)
    return rng.standard_t(nu, (n, m)) * math.sqrt((nu - 2.0) / nu)


def low_rank_plus_noise(
    rng: np.random.Generator, n: int, m: int, rank: int, noise: float
) -> FloatArray:
    r"""A rank-:math:`r` Gaussian product plus i.i.d. Gaussian noise.

    Law: :math:`W = A B / \sqrt r + \sigma Z` with :math:`A` (:math:`n\times r`),
    :math:`B` (:math:`r\times m`) and :math:`Z` (:math:`n\times m`) independent,
    with i.i.d. standard normal entries. The product has unit entry variance and
    rank :math:`r` almost surely (for :math:`r \le \min(n, m)`); the noise has
    standard deviation :math:`\sigma` = ``noise``. With :math:`\sigma` small,
    :math:`\min(n,m) - r` eigenvalues of :math:`W^\top W` sit near
    :math:`\sigma^2` times the dimension, far below the rest: the rank-collapse
    control.

    Parameters
    ----------
    rng : numpy.random.Generator
        The random stream.
    n, m : int
        Rows and columns.
    rank : int
        The rank :math:`r` of the product, ``1 <= rank <= min(n, m)``.
    noise : float
        The noise standard deviation :math:`\sigma > 0`.

    Returns
    -------
    ndarray
        Shape ``(n, m)``, float64.
    """
    rng = _check_rng(rng)
    n, m = _check_size(n, "n"), _check_size(m, "m")
    r = _check_size(rank, "rank")
    if r > min(n, m):
        raise ArgumentError(f"rank must be <= min(n, m) = {min(n, m)}, got {r}")
    sigma = _check_positive(noise, "noise")
    a = rng.standard_normal((n, r))
    b = rng.standard_normal((r, m))
    return (a @ b) / math.sqrt(r) + sigma * rng.standard_normal((n, m))


def haar_orthogonal(rng: np.random.Generator, n: int) -> FloatArray:
    r"""A Haar-distributed (uniform) :math:`n\times n` orthogonal matrix.

    The QR factor :math:`Q` of an i.i.d. Gaussian matrix, its columns multiplied by
    the signs of :math:`\mathrm{diag}(R)` (Mezzadri 2007), which makes the law
    exactly Haar.
    """
    rng = _check_rng(rng)
    n = _check_size(n, "n")
    q, r = np.linalg.qr(rng.standard_normal((n, n)))
    d = np.sign(np.diag(r))
    d[d == 0] = 1.0
    return q * d


def well_conditioned(
    rng: np.random.Generator, eigenvalues: ArrayLike, floor: float = 0.01
) -> FloatArray:
    r"""A square matrix whose :math:`W^\top W` has the given eigenvalues, floored.

    Law: :math:`W = U\,\mathrm{diag}(\sqrt{\mu})\,V^\top` with :math:`U, V`
    independent Haar orthogonal :math:`n\times n` matrices
    (:func:`haar_orthogonal`) and :math:`\mu_i = \max(\lambda_i, c)`, where
    :math:`c = f\,\bar\mu` is ``floor`` times the mean of the *result* (the fixed
    point of :math:`c \mapsto f\,\overline{\max(\lambda, c)}`, unique since
    :math:`f < 1`). So the eigenvalues of :math:`W^\top W` are exactly
    :math:`\mu` (to rounding) and the smallest is at least ``floor`` times their
    mean: a well-conditioned square matrix with a prescribed spectrum. Given
    eigenvalues that already clear the floor are kept as they are.

    The benchmarks use the eigenvalues of a MiniLM MLP layer (384 × 1536, smallest
    eigenvalue 1–10% of the mean) to build a 384 × 384 matrix, which has the
    spectrum of a trained layer but the shape of a square one; no matrix of that
    condition can be called rank-collapse.

    Parameters
    ----------
    rng : numpy.random.Generator
        The random stream (for the rotations).
    eigenvalues : array_like
        :math:`n \ge 2` finite values, at least one positive; negative ones are
        refused.
    floor : float
        :math:`f \in (0, 1)`: the smallest eigenvalue as a fraction of the mean.

    Returns
    -------
    ndarray
        Shape ``(n, n)``, float64.
    """
    rng = _check_rng(rng)
    lam = np.asarray(eigenvalues, dtype=np.float64)
    if lam.ndim != 1 or lam.size < 2:
        raise ArgumentError(
            f"eigenvalues must be a 1-D array of at least 2 values, got shape "
            f"{lam.shape}"
        )
    if not np.all(np.isfinite(lam)) or np.any(lam < 0) or not np.any(lam > 0):
        raise ArgumentError(
            "eigenvalues must be finite and non-negative, at least one positive"
        )
    f = _check_positive(floor, "floor")
    if f >= 1.0:
        raise ArgumentError(f"floor must be < 1, got {floor}")
    mu = floored_eigenvalues(lam, f)
    n = mu.size
    u, v = haar_orthogonal(rng, n), haar_orthogonal(rng, n)
    return (u * np.sqrt(mu)) @ v.T


def floored_eigenvalues(lam: FloatArray, floor: float) -> FloatArray:
    r""":math:`\max(\lambda, c)` with :math:`c = f\cdot\mathrm{mean}` of the result.

    The map :math:`c \mapsto f\,\overline{\max(\lambda, c)}` has slope at most
    :math:`f < 1`, so iterating it from :math:`f\bar\lambda` converges (monotonely
    up); the loop stops when :math:`c` no longer moves, and ``c`` is then nudged
    to the floor of the final mean so the bound holds after rounding.
    """
    c = floor * float(lam.mean())
    for _ in range(10_000):
        new = floor * float(np.maximum(lam, c).mean())
        if new <= c:
            break
        c = new
    mu = np.maximum(lam, c)
    return np.maximum(mu, floor * float(mu.mean()))


def spectrum_of(matrix: ArrayLike, name: str = "matrix") -> Spectrum:
    """The spectrum of a generated matrix (:meth:`Spectrum.from_matrix`).

    Parameters
    ----------
    matrix : array_like
        The matrix :math:`W`, either orientation.
    name : str
        The spectrum's label.

    Returns
    -------
    Spectrum
    """
    from htmp_infer.spectrum import Spectrum

    return Spectrum.from_matrix(matrix, name=name)


GENERATORS = {
    "gaussian": gaussian,
    "power_law_covariance": power_law_covariance,
    "student_t": student_t,
    "low_rank_plus_noise": low_rank_plus_noise,
}
"""The four non-model generators of issue 18 by name (``well_conditioned`` needs
eigenvalues, so it is not listed)."""
