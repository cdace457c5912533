"""One exact synthetic HTMP spectrum, ready to fit: :func:`simulate`."""

from __future__ import annotations

from htmp_infer.ensembles.sampling import KeyLike, sample_htmp
from htmp_infer.spectrum import Spectrum

__all__ = ["simulate"]


def simulate(
    kappa: float,
    *,
    gamma: float,
    n: int,
    seed: KeyLike = 0,
    scale: float = 1.0,
) -> Spectrum:
    r"""Draw an exact finite-:math:`N` HTMP spectrum and wrap it as a :class:`Spectrum`.

    Parameters
    ----------
    kappa : float
        Eigenvalue repulsion :math:`\kappa = \beta N > 0`.
    gamma : float
        Aspect ratio :math:`\gamma = N/M \in (0, 1]`.
    n : int
        Number of eigenvalues :math:`N`.
    seed : int, numpy.random.Generator or jax.Array
        Source of randomness.
    scale : float
        Mean eigenvalue of the draw.

    Returns
    -------
    Spectrum
        The :math:`N` eigenvalues with the shape :math:`M = N/\gamma`.

    Notes
    -----
    The draw is the Dumitriu–Edelman bidiagonal model with :math:`\beta = \kappa/N`
    (:func:`htmp_infer.ensembles.sampling.sample_htmp`): exact at every :math:`N`,
    no MCMC.

    Examples
    --------
    >>> import htmp_infer as hi
    >>> spectrum = hi.simulate(2.0, gamma=0.5, n=100, seed=0)
    >>> spectrum.n, spectrum.gamma
    (100, 0.5)
    """
    lam = sample_htmp(seed, n, kappa, gamma=gamma, scale=scale)
    return Spectrum.from_eigenvalues(lam, gamma=gamma, name=f"htmp(kappa={kappa:g})")
