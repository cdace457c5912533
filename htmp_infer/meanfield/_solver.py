r"""Grid solver behind :mod:`htmp_infer.meanfield.free_energy` (dimensionless units).

The unknown is the log-potential :math:`U(t) = \int\log|e^t-e^u|\,p(u)\,du` on a
uniform grid in :math:`t = \log x`, where :math:`p(t) = x\rho(x)` is the density
of :math:`\log x`. The kernel is split as

.. math::

    \log|e^t-e^u| = \tfrac{t+u}{2} + \tfrac{|t-u|}{2} + f(t-u), \qquad
    f(d) = \log\bigl(1-e^{-|d|}\bigr),

with :math:`\hat f(k) = 1/k^2 - \pi\coth(\pi k)/k = -2\sum_{n\ge1}(n^2+k^2)^{-1}`
in closed form, so the integrable log singularity of :math:`f` at :math:`d = 0` is
never sampled: :math:`f * p` is a Fourier multiplier acting on the trigonometric
interpolant of :math:`p`, spectrally accurate for smooth :math:`p`. The kink of
:math:`|t-u|/2` is handled by subtracting a Gaussian :math:`q_0` (matched mass) and
:math:`q_1 = -q_0'` (matched first moment), whose convolutions with
:math:`|\cdot|/2` are closed form; the zero-mass, zero-mean remainder
:math:`\Delta` has :math:`(|\cdot|/2 * \Delta)^\wedge = -\hat\Delta/k^2`, with the
:math:`k = 0` mode :math:`\tfrac12\int t^2\Delta`. The operator :math:`p\mapsto U`
is linear; :func:`solve` runs Newton–GMRES on a convex dual (one FFT pair
per Krylov step), :func:`solve_weight` chooses the box and the spacing,
continues in :math:`\kappa` from :math:`\kappa \le 4` and refines until the
density has decayed by :math:`e^{-40}` at both ends and its spectrum by
:math:`10^{-10}` at the top wavenumbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft as sfft
import scipy.sparse.linalg as spla
from numpy.typing import NDArray
from scipy.special import ndtr, zeta

from htmp_infer.errors import HTMPError

__all__ = [
    "Grid",
    "Solution",
    "Weight",
    "make_grid",
    "potential",
    "solve",
    "solve_weight",
]

_F64 = NDArray[np.float64]
_PAD = 42.0  # f(d) ~ -e^{-|d|}: periodic wrap-around below e^{-42} ~ 6e-19
_GRID_MAX = 2**20  # largest grid at all


_ZETA = zeta(2.0 * np.arange(1, 20), 1.0)  # ζ(2), ζ(4), ..., ζ(38)


def f_hat(k: _F64) -> _F64:
    r"""Fourier transform of :math:`f(d) = \log(1-e^{-|d|})`.

    :math:`\hat f(k) = \int f(d)e^{-ikd}dd = -2\sum_{n\ge1} 1/(n^2+k^2)
    = 1/k^2 - \pi\coth(\pi k)/k`; the Taylor series
    :math:`-2\sum_j (-1)^{j-1}\zeta(2j)k^{2j-2}` is used for :math:`|k| < 0.3`.
    """
    k = np.abs(np.asarray(k, dtype=np.float64))
    out = np.empty_like(k)
    small = k < 0.3
    ks = k[small] ** 2
    series = np.zeros_like(ks)
    for j in range(len(_ZETA), 0, -1):
        series = series * ks + (-1.0) ** (j - 1) * _ZETA[j - 1]
    out[small] = -2.0 * series
    kl = k[~small]
    out[~small] = 1.0 / kl**2 - np.pi / (kl * np.tanh(np.pi * kl))
    return out


@dataclass(frozen=True)
class Grid:
    """Uniform grid in ``t = log x`` with its FFT data."""

    t: _F64  # nodes, shape (G,)
    h: float  # spacing
    n_fft: int  # padded periodic length L >= G + PAD / h
    k: _F64  # rfft wavenumbers, shape (L // 2 + 1,)
    f_hat: _F64
    inv_k2: _F64  # 1/k^2 with 0 at k = 0
    q0: _F64  # Gaussian of unit mass on the grid
    q1: _F64  # -q0': zero mass, unit first moment
    conv_q0: _F64  # (|.|/2 * q0)(t)
    conv_q1: _F64  # (|.|/2 * q1)(t)
    mu0: float  # centre of the Gaussian

    @property
    def size(self) -> int:
        """Number of nodes G."""
        return int(self.t.size)


def make_grid(t_lo: float, t_hi: float, h: float) -> Grid:
    """Build the grid on ``[t_lo, t_hi]`` with spacing about ``h``."""
    g = int(np.ceil((t_hi - t_lo) / h)) + 1
    if g > _GRID_MAX:
        raise HTMPError(
            f"mean-field grid would need {g} nodes (> {_GRID_MAX}); the density "
            "spans too many decades (one-body exponent too close to a "
            "non-integrable limit)"
        )
    t = t_lo + h * np.arange(g, dtype=np.float64)
    n_fft = sfft.next_fast_len(g + int(np.ceil(_PAD / h)) + 2, real=True)
    k = 2.0 * np.pi * np.arange(n_fft // 2 + 1) / (n_fft * h)
    inv_k2 = np.zeros_like(k)
    inv_k2[1:] = 1.0 / k[1:] ** 2
    mu0 = 0.5 * (t[0] + t[-1])
    sigma0 = max(12.0 * h, min(1.0, (t[-1] - t[0]) / 20.0))
    z = (t - mu0) / sigma0
    q0 = np.exp(-0.5 * z * z) / (sigma0 * np.sqrt(2.0 * np.pi))
    q1 = z / sigma0 * q0
    phi = np.exp(-0.5 * z * z) / np.sqrt(2.0 * np.pi)
    conv_q0 = 0.5 * sigma0 * (2.0 * phi + z * (2.0 * ndtr(z) - 1.0))
    conv_q1 = -(ndtr(z) - 0.5)
    return Grid(t, h, n_fft, k, f_hat(k), inv_k2, q0, q1, conv_q0, conv_q1, mu0)


def potential(grid: Grid, p: NDArray[np.float64]) -> NDArray[np.float64]:
    r"""Log-potential :math:`U_i = \int\log|e^{t_i}-e^u|\,p(u)\,du` on the grid.

    ``p`` has shape ``(..., G)`` (density of ``t`` at the nodes); the map is
    linear and acts on the last axis.
    """
    t, h = grid.t, grid.h
    m0 = h * np.sum(p, axis=-1, keepdims=True)
    m1 = h * np.sum(p * t, axis=-1, keepdims=True)
    d1 = m1 - m0 * grid.mu0
    delta = p - m0 * grid.q0 - d1 * grid.q1
    m2 = h * np.sum(delta * (t - grid.mu0) ** 2, axis=-1, keepdims=True)
    n = grid.n_fft
    p_hat = sfft.rfft(p, n=n, axis=-1) * h
    d_hat = sfft.rfft(delta, n=n, axis=-1) * h
    g_hat = -d_hat * grid.inv_k2 + grid.f_hat * p_hat
    g_hat[..., 0] += 0.5 * m2[..., 0]
    conv = sfft.irfft(g_hat, n=n, axis=-1)[..., : grid.size] / h
    return 0.5 * (t * m0 + m1) + m0 * grid.conv_q0 + d1 * grid.conv_q1 + conv


@dataclass(frozen=True)
class Solution:
    """Converged grid solution."""

    grid: Grid
    u: _F64  # potential U at the nodes
    p: _F64  # density of t = log x at the nodes (h * sum = 1)
    log_c: float  # log of C = int w e^{kappa U} dx
    residual: float  # max |p - nu| / max p at exit
    iterations: int


def _density(log_w: _F64, kappa: float, u: _F64, h: float) -> tuple[_F64, float]:
    """Normalised :math:`p \\propto e^{\\log w + \\kappa U}` and :math:`\\log C`."""
    z = log_w + kappa * u
    zmax = float(np.max(z))
    e = np.exp(z - zmax)
    s = h * float(np.sum(e))
    return e / s, zmax + float(np.log(s))


def solve(
    grid: Grid,
    log_w: _F64,
    kappa: float,
    u0: _F64,
    *,
    tol: float = 1e-12,
    max_iter: int = 100,
    nu0: _F64 | None = None,
) -> Solution:
    r"""Minimise the convex dual :math:`\Psi(\nu)` by Newton–GMRES.

    Notes
    -----
    With :math:`U_\nu = K\nu`, :math:`\Psi(\nu) = \log\int e^{\log w+\kappa
    U_\nu} - \tfrac\kappa2\int U_\nu\nu` over densities of unit mass (no sign
    constraint) is convex, because :math:`-K` is positive definite on zero-mass
    vectors (its symbol :math:`\pi\coth(\pi k)/k` is positive), and
    :math:`\min\Psi = \varphi` is attained at :math:`\nu = p(U_\nu)`, the
    fixed point. The Newton direction solves
    :math:`(I - \kappa P K)\,\delta\nu = p - \nu` with
    :math:`P = \mathrm{diag}(p) - h\,pp^\top` (matrix-free, one FFT pair per
    GMRES step); Armijo backtracking on :math:`\Psi` globalises it.
    """
    h = grid.h
    if nu0 is None:
        nu, _ = _density(log_w, kappa, u0, h)
    else:
        nu = nu0 / (h * np.sum(nu0))

    def state(nu_: _F64) -> tuple[_F64, _F64, float, float]:
        u_ = potential(grid, nu_)
        p_, log_c_ = _density(log_w, kappa, u_, h)
        return u_, p_, log_c_, log_c_ - 0.5 * kappa * h * float(np.dot(nu_, u_))

    u, p, log_c, psi = state(nu)
    res = float(np.max(np.abs(p - nu))) / float(np.max(p))
    # rounding floor of p - nu: the exponent kappa U carries |kappa U| eps
    floor = 64.0 * np.finfo(float).eps * max(1.0, kappa * float(np.max(np.abs(u))))
    tol = max(tol, floor)
    stalled = 0
    iterations = 0
    for _ in range(max_iter):
        if res < tol or (stalled >= 3 and res < 1e3 * tol):
            break
        iterations += 1
        rhs = p - nu
        p_now = p

        def matvec(v: _F64, p_now: _F64 = p_now) -> _F64:
            pk = p_now * potential(grid, v)
            return v - kappa * (pk - h * p_now * np.sum(pk))

        op = spla.LinearOperator((grid.size, grid.size), matvec=matvec)
        rtol = max(1e-14, min(1e-3, 0.1 * res))
        step, _ = spla.gmres(op, rhs, rtol=rtol, restart=300, maxiter=20)
        # slope of Psi along the step: kappa h (p - nu) . K step
        du = potential(grid, step)
        slope = kappa * h * float(np.dot(p - nu, du))
        lam = 1.0
        while True:
            nu_new = nu + lam * step
            u_new, p_new, log_c_new, psi_new = state(nu_new)
            ok = psi_new <= psi + 1e-4 * lam * min(slope, 0.0) + 1e-14 * abs(psi)
            if ok or lam < 1e-6:
                break
            lam *= 0.5
        nu, u, p, log_c, psi = nu_new, u_new, p_new, log_c_new, psi_new
        res_old = res
        res = float(np.max(np.abs(p - nu))) / float(np.max(p))
        stalled = stalled + 1 if res > 0.5 * res_old else 0
    return Solution(grid, u, p, log_c, res, iterations)


# ----------------------------------------------------------------------------
# driver: box, spacing and refinement in dimensionless units
# ----------------------------------------------------------------------------

_DROP = 40.0  # the box ends where log p is this far below its maximum


@dataclass(frozen=True)
class Weight:
    r"""Dimensionless one-body weight; ``log_w_t`` is the log-density of ``t``.

    :math:`\log w(e^t) + t = a t - b\log(1+e^t/c) - h e^{-t} - e^t/s`.
    """

    a: float
    b: float
    c: float
    h: float
    s: float

    def log_w_t(self, t: _F64) -> _F64:
        """``log w(e^t) + t`` (``-inf`` where it underflows)."""
        out = self.a * t
        if self.b != 0.0 and np.isfinite(self.c):
            out = out - self.b * np.logaddexp(0.0, t - np.log(self.c))
        with np.errstate(over="ignore"):
            if self.h > 0.0:
                out = out - self.h * np.exp(-t)
            if np.isfinite(self.s):
                out = out - np.exp(t) / self.s
        return out

    def slopes(self, kappa: float) -> tuple[float | None, float | None]:
        """Asymptotic slopes of ``log p`` at ``t -> -inf`` and ``+inf``.

        ``None`` means a super-exponential (Gumbel-type) cut-off.
        """
        lo = None if self.h > 0.0 else self.a
        if np.isfinite(self.s):
            return lo, None
        b = self.b if np.isfinite(self.c) else 0.0
        return lo, self.a - b + kappa


def _extend_u(t_old: _F64, u_old: _F64, t: _F64, p: _F64 | None = None) -> _F64:
    """Potential at ``t``: interpolated inside the grid ``t_old``.

    Outside it, the direct sum :math:`h\\sum_j\\log|e^t-e^{t_j}|p_j` when the
    density ``p`` on ``t_old`` is given (no singularity there), else the
    asymptotics :math:`U \\to` const at :math:`-\\infty`, :math:`U\\sim t` at
    :math:`+\\infty`.
    """
    out = np.interp(t, t_old, u_old)
    lo, hi = t < t_old[0], t > t_old[-1]
    if p is None:
        out[hi] = u_old[-1] + (t[hi] - t_old[-1])
        return out
    stride = max(1, t_old.size // 200)
    tq, pq = t_old[::stride], p[::stride] * (t_old[1] - t_old[0]) * stride
    keep = pq > 1e-30 * np.max(pq)
    tq, pq = tq[keep], pq[keep]
    for mask in (lo, hi):
        te = t[mask][:, None]
        big = np.maximum(te, tq[None, :])
        diff = -np.abs(te - tq[None, :])
        out[mask] = (big + np.log1p(-np.exp(diff))) @ pq
    return out


def _box(
    weight: Weight, kappa: float, t_u: _F64, u: _F64, p: _F64 | None = None
) -> tuple[float, float, float]:
    """Box ``[t_lo, t_hi]`` and a spacing estimate from the current potential."""
    tc = np.linspace(min(t_u[0], -60.0), max(t_u[-1], 60.0), 1601)
    ell = weight.log_w_t(tc) + kappa * _extend_u(t_u, u, tc, p)
    ell = np.where(np.isfinite(ell), ell, -np.inf)
    top = float(np.max(ell))
    keep = np.nonzero(ell > top - _DROP)[0]
    i0, i1 = int(keep[0]), int(keep[-1])
    slope_lo, slope_hi = weight.slopes(kappa)
    t_lo, t_hi = float(tc[i0]), float(tc[i1])
    if i0 == 0:
        if slope_lo is None or slope_lo <= 0.0:
            raise HTMPError("mean-field density is not integrable at x -> 0")
        t_lo -= (_DROP - (top - ell[0])) / slope_lo
    elif i0 > 0:
        t_lo = float(tc[i0 - 1])
    if i1 == tc.size - 1:
        if slope_hi is None or slope_hi >= 0.0:
            raise HTMPError("mean-field density is not integrable at x -> inf")
        t_hi += (_DROP - (top - ell[-1])) / -slope_hi
    else:
        t_hi = float(tc[i1 + 1])
    # spacing: curvature of ell on the kept region (Gaussian-width heuristic)
    seg = ell[i0 : i1 + 1]
    dt = tc[1] - tc[0]
    if seg.size >= 5:
        curv = float(np.max(np.abs(np.diff(seg, 2)))) / dt**2
    else:
        curv = 1.0 / dt**2
    spacing = min(0.1, 1.0 / (3.5 * np.sqrt(max(curv, 1e-12))))
    return t_lo, t_hi, spacing


def _resolved(p: _F64, n_fft: int) -> bool:
    """Whether the spectrum of ``p`` has decayed to rounding at the top."""
    spec = np.abs(sfft.rfft(p, n=n_fft))
    top = spec[int(0.8 * spec.size) :]
    return bool(np.max(top) < 1e-10 * spec[0])


def _crude_potential(weight: Weight, kappa: float) -> tuple[_F64, _F64]:
    """Starting potential :math:`U = \\log(e^t + X)`, :math:`X` self-consistent."""
    t_u = np.linspace(-60.0, 60.0, 2401)
    log_x = 0.0
    for _ in range(60):
        u = np.logaddexp(t_u, log_x)
        ell = weight.log_w_t(t_u) + kappa * u
        ell = np.where(np.isfinite(ell), ell, -np.inf)
        pr = np.exp(ell - np.max(ell))
        new = float(np.sum(t_u * pr) / np.sum(pr))
        if abs(new - log_x) < 1e-6:
            break
        log_x = 0.5 * (log_x + new)
    return t_u, np.logaddexp(t_u, log_x)


_KAPPA_START = 4.0  # continuation in kappa above this
_KAPPA_RATIO = 4.0


def _solve_adaptive(
    weight: Weight,
    kappa: float,
    t_u: _F64,
    u: _F64,
    *,
    final: bool,
    start: Grid | None = None,
    nu_start: _F64 | None = None,
    rounds: int = 10,
) -> Solution:
    sol: Solution | None = None
    spacing_cap = np.inf
    if start is not None:  # warm start on a previous grid
        u0 = _extend_u(t_u, u, start.t)
        sol = solve(start, weight.log_w_t(start.t), kappa, u0, nu0=nu_start)
        t_u, u = start.t, sol.u
    for _ in range(rounds):
        t_lo, t_hi, spacing = _box(
            weight, kappa, t_u, u, None if sol is None else sol.p
        )
        if sol is not None:
            g = sol.grid
            width = g.t[-1] - g.t[0]
            logp = np.log(np.maximum(sol.p, 1e-300) / np.max(sol.p))
            # a density truncated by the box: grow that side whatever U says
            if logp[0] > 5.0 - _DROP:
                t_lo = min(t_lo, g.t[0] - 0.25 * width - 0.25)
            if logp[-1] > 5.0 - _DROP:
                t_hi = max(t_hi, g.t[-1] + 0.25 * width + 0.25)
            inside = t_lo >= g.t[0] - 0.5 and t_hi <= g.t[-1] + 0.5
            resolved = not final or _resolved(sol.p, g.n_fft)
            if inside and resolved and (not final or spacing >= 0.7 * g.h):
                if final and not sol.residual < 1e-8:
                    raise HTMPError(
                        f"mean-field solver did not converge (kappa={kappa:.6g},"
                        f" residual {sol.residual:.1e} on {g.size} nodes)"
                    )
                return sol
            if inside and not resolved:
                spacing_cap = 0.5 * g.h
            if inside:  # refine only
                t_lo, t_hi = float(g.t[0]), float(g.t[-1])
            else:
                t_lo, t_hi = min(t_lo, g.t[0]), max(t_hi, g.t[-1])
                margin = 0.05 * min(t_hi - t_lo, 20.0) + 0.25
                t_lo, t_hi = t_lo - margin, t_hi + margin
        else:
            margin = 0.05 * min(t_hi - t_lo, 20.0) + 0.25
            t_lo, t_hi = t_lo - margin, t_hi + margin
        grid = make_grid(t_lo, t_hi, min(spacing, spacing_cap))
        tol = 1e-12 if final else 1e-6
        u0 = _extend_u(t_u, u, grid.t, None if sol is None else sol.p)
        sol = solve(grid, weight.log_w_t(grid.t), kappa, u0, tol=tol)
        t_u, u = grid.t, sol.u
    raise HTMPError("mean-field solver: grid refinement did not settle")


_CACHE: dict[str, tuple[Weight, float, Solution]] = {}


def _close(w0: Weight, k0: float, w1: Weight, k1: float) -> bool:
    pairs = [(w0.a, w1.a), (w0.b, w1.b), (k0, k1)]
    pairs += [
        (np.log(x0), np.log(x1))
        for x0, x1 in [(w0.c, w1.c), (w0.h, w1.h)]
        if x0 > 0 and x1 > 0 and np.isfinite(x0) and np.isfinite(x1)
    ]
    same_kind = (
        np.isfinite(w0.c) == np.isfinite(w1.c)
        and (w0.h > 0) == (w1.h > 0)
        and np.isfinite(w0.s) == np.isfinite(w1.s)
    )
    return same_kind and all(
        abs(x1 - x0) <= 0.25 * max(1.0, abs(x0)) for x0, x1 in pairs
    )


def solve_weight(weight: Weight, kappa: float, *, warm: bool = False) -> Solution:
    """Equilibrium for a dimensionless weight: continuation, box and refinement.

    With ``warm``, the previous warm solution is reused as the starting point
    (and grid) when the parameters are close; results then agree with a cold
    solve to the solver tolerance, not bit for bit.
    """
    if warm and "last" in _CACHE:
        w0, k0, sol0 = _CACHE["last"]
        if _close(w0, k0, weight, kappa):
            sol = _solve_adaptive(
                weight,
                kappa,
                sol0.grid.t,
                sol0.u,
                final=True,
                start=sol0.grid,
                nu_start=sol0.p,
            )
            _CACHE["last"] = (weight, kappa, sol)
            return sol
    path = [kappa]
    while path[-1] > _KAPPA_START:
        path.append(path[-1] / _KAPPA_RATIO)
    path.reverse()
    t_u, u = _crude_potential(weight, path[0])
    for k in path[:-1]:
        sol = _solve_adaptive(weight, k, t_u, u, final=False)
        t_u, u = sol.grid.t, sol.u
    sol = _solve_adaptive(weight, kappa, t_u, u, final=True)
    if warm:
        _CACHE["last"] = (weight, kappa, sol)
    return sol
