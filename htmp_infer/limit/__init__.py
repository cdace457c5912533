r"""The HTMP limit spectral density :math:`\rho_{\gamma,\kappa}` and related laws.

This package evaluates, in float64 with NumPy and SciPy only, the limiting
spectral density of the high-temperature Marchenko–Pastur (HTMP) ensemble,

.. math::

    \rho_{\gamma,\kappa}(x) = \frac{\theta^{\delta} x^{\delta-1} e^{-\theta x}}
    {\Gamma(b+1)\,\Gamma(b+\delta)\,|U(b, 1-\delta, -\theta x)|^{2}},
    \qquad x > 0,

with :math:`b = \kappa/2`, :math:`\delta = \kappa(1-\gamma)/(2\gamma)` and
:math:`\theta = \kappa/(2\gamma) = b + \delta` (``docs/maths.md`` §1.3), in
normalised units (mean 1). It also provides its CDF, its Stieltjes transform,
its exact moments, the Marchenko–Pastur (MP) law with the same normalisation,
the inverse HTMP law of :math:`w = 1/x` used for kernel spectra, and the tail
exponents.

Numerical method
----------------
Direct evaluation of :math:`U(b, 1-\delta, -t)` through Kummer series cancels
catastrophically once :math:`t`, :math:`b` or :math:`\delta` are large. Here
:math:`U` is never evaluated. Instead the logarithmic derivative
:math:`w(z) = z\,U'(b,1-\delta,z)/U(b,1-\delta,z)` is continued through the complex
plane by its Riccati equation (Kummer's equation)

.. math::

    \frac{dw}{d\log z} = -w^{2} + (\delta + z)\,w + b z,

along a path on which the wanted solution never becomes recessive, so that errors
are damped instead of amplified:

1. down the positive real axis :math:`z = r`, from a large :math:`r` where the
   asymptotic series :math:`U \sim z^{-b}\sum_n (b)_n(\theta)_n(-z)^{-n}/n!`
   converges fast, to :math:`r_0 = \theta(1+\gamma)`;
2. along the upper half circle :math:`z = r_0 e^{i\phi}`, :math:`0\le\phi\le\pi`,
   to the point :math:`-r_0 + i0` in the middle of the bulk;
3. outwards along the cut :math:`z = -t + i0` in both directions. There
   :math:`w = R - iJ` with :math:`J = \pi b x \rho(x)`, and the real system

   .. math::

       \frac{dR}{ds} = -R^{2} + J^{2} + (\delta - t)R - bt, \qquad
       \frac{d\log J}{ds} = \delta - t - 2R, \qquad
       \frac{dF}{ds} = \frac{J}{\pi b},

   with :math:`s = \log t`, gives the log-density and the CDF :math:`F` at once.
   Perturbations of this system grow or decay like :math:`J` itself, so
   integrating away from the maximum of :math:`J` is stable.

Each leg is solved by an adaptive, L-stable, 24-node Radau IIA collocation
(order 47) with Newton iterations and spectral dense output; the equations are
stiff for large :math:`\kappa`. The CDF starts from
:math:`F(x_0) = -\arg U(b,1-\delta,-r_0+i0)/(\pi b)`, accumulated along the arc.
"""

from __future__ import annotations

from htmp_infer.limit._params import KAPPA_MP_SWITCH, kappa_to_delta
from htmp_infer.limit.htmp import (
    TailExponents,
    htmp_cdf,
    htmp_logpdf,
    htmp_moments,
    htmp_pdf,
    htmp_stieltjes,
    htmp_tail_exponents,
    htmp_variance,
)
from htmp_infer.limit.inverse import (
    inverse_htmp_cdf,
    inverse_htmp_logpdf,
    inverse_htmp_pdf,
)
from htmp_infer.limit.mp import mp_cdf, mp_logpdf, mp_pdf

__all__ = [
    "KAPPA_MP_SWITCH",
    "TailExponents",
    "htmp_cdf",
    "htmp_logpdf",
    "htmp_moments",
    "htmp_pdf",
    "htmp_stieltjes",
    "htmp_tail_exponents",
    "htmp_variance",
    "inverse_htmp_cdf",
    "inverse_htmp_logpdf",
    "inverse_htmp_pdf",
    "kappa_to_delta",
    "mp_cdf",
    "mp_logpdf",
    "mp_pdf",
]
