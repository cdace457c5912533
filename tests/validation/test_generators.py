"""Tests of the non-model generators in htmp_infer.validation.generators.

Each law is checked by a statistic whose sampling spread is known in closed form;
the tolerances are stated in standard errors with the false-failure rate of a fresh
seed (``HTMP_TEST_SEED_SHIFT`` moves the seeds, see tests/conftest.py).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from htmp_infer.errors import ArgumentError, HTMPError
from htmp_infer.networks.bundle import SpectraBundle
from htmp_infer.spectrum import Spectrum, matrix_eigenvalues
from htmp_infer.validation.generators import (
    GENERATORS,
    floored_eigenvalues,
    gaussian,
    haar_orthogonal,
    low_rank_plus_noise,
    power_law_covariance,
    power_law_eigenvalues,
    spectrum_of,
    student_t,
    well_conditioned,
)

MINILM = Path(__file__).resolve().parents[2] / "data" / "minilm_spectra.npz"

CALLS = {
    "gaussian": lambda rng, n, m: gaussian(rng, n, m),
    "power_law_covariance": lambda rng, n, m: power_law_covariance(rng, n, m, 1.0),
    "student_t": lambda rng, n, m: student_t(rng, n, m, 3),
    "low_rank_plus_noise": lambda rng, n, m: low_rank_plus_noise(rng, n, m, 5, 0.1),
}


def _rng(seed: int, shift: int) -> np.random.Generator:
    return np.random.default_rng(seed + 1000 * shift)


@pytest.mark.parametrize("name", sorted(CALLS))
@pytest.mark.parametrize("shape", [(12, 30), (30, 12), (16, 16)])
def test_shape_and_seed(name: str, shape: tuple[int, int]) -> None:
    call = CALLS[name]
    a = call(np.random.default_rng(3), *shape)
    b = call(np.random.default_rng(3), *shape)
    c = call(np.random.default_rng(4), *shape)
    assert a.shape == shape and a.dtype == np.float64
    assert np.array_equal(a, b)
    assert not np.allclose(a, c)
    assert np.all(np.isfinite(a))


def test_registry_names_the_four_generators() -> None:
    assert set(GENERATORS) == set(CALLS)


def test_gaussian_moments(seed_shift: int) -> None:
    # N = 60 000 entries: sample mean has se 1/sqrt(N), sample variance se
    # sqrt(2/N); |z| < 5 fails with probability 6e-7 each.
    w = gaussian(_rng(11, seed_shift), 200, 300)
    x = w.ravel()
    assert abs(x.mean()) < 5 / math.sqrt(x.size)
    assert abs(x.var() - 1.0) < 5 * math.sqrt(2 / x.size)
    assert stats.kstest(x, "norm").pvalue > 1e-4


def test_student_t_law(seed_shift: int) -> None:
    # The rescaled entries are Student-t(3): KS against the t(3) law with scale
    # sqrt(1/3) (p > 1e-4 fails with probability 1e-4 under the law). The sample
    # variance of t(3) has no standard error (infinite fourth moment), so the unit
    # variance is checked at df = 10: excess kurtosis 6/(df-4) = 1, so the sample
    # variance has se sqrt((kurtosis - 1)/N) = sqrt(3/N).
    x = student_t(_rng(12, seed_shift), 200, 300, df=3).ravel()
    assert stats.kstest(x, stats.t(3, scale=math.sqrt(1 / 3)).cdf).pvalue > 1e-4
    # not Gaussian: KS against N(0, 1) rejects decisively (the t(3) law is peaked)
    assert stats.kstest(x, "norm").pvalue < 1e-10
    y = student_t(_rng(13, seed_shift), 200, 300, df=10).ravel()
    assert abs(y.var() - 1.0) < 5 * math.sqrt(3 / y.size)


def test_power_law_population_eigenvalues() -> None:
    lam = power_law_eigenvalues(50, 1.5)
    assert lam.mean() == pytest.approx(1.0, rel=1e-14)
    j = np.arange(1, 51)
    assert np.allclose(lam / lam[0], j**-1.5, rtol=1e-14)
    assert np.all(np.diff(lam) < 0)


def test_power_law_covariance_columns(seed_shift: int) -> None:
    # Tall W (n = 20 000 rows, m = 40): column j's mean square s_j estimates
    # sigma_j with relative se sqrt(2/n), so z_j = (s_j/sigma_j - 1)/sqrt(2/n) is
    # ~N(0, 1); max over 40 columns |z| < 4.5 fails with probability 40 * 6.8e-6.
    # The 780 column correlations are ~N(0, 1/n): max |r| sqrt(n) < 5.3 fails with
    # probability 780 * 1.2e-7 ~ 1e-4.
    n, m = 20_000, 40
    w = power_law_covariance(_rng(14, seed_shift), n, m, exponent=1.0)
    sigma = power_law_eigenvalues(m, 1.0)
    s = (w**2).mean(axis=0)
    z = (s / sigma - 1.0) / math.sqrt(2 / n)
    assert np.max(np.abs(z)) < 4.5
    r = np.corrcoef(w, rowvar=False)[np.triu_indices(m, 1)]
    assert np.max(np.abs(r)) * math.sqrt(n) < 5.3


def test_power_law_covariance_is_not_white(seed_shift: int) -> None:
    # The same test on a Gaussian matrix of the same shape fails: the generator's
    # column variances are not those of white noise (sigma_1 = 40/H_40 = 9.3).
    w = gaussian(_rng(15, seed_shift), 20_000, 40)
    s = (w**2).mean(axis=0)
    sigma = power_law_eigenvalues(40, 1.0)
    assert np.max(np.abs((s / sigma - 1.0) / math.sqrt(2 / 20_000))) > 100


@pytest.mark.parametrize(("n", "m", "rank"), [(96, 96, 75), (60, 150, 20)])
def test_low_rank_plus_noise(seed_shift: int, n: int, m: int, rank: int) -> None:
    # Exactly `rank` singular values of order one, then a gap to the noise. Below
    # the gap, W ~ sigma P_L Z P_R (perturbation of the signal's subspaces is
    # O(sigma / s_r) = O(1e-6)), whose sum of squares is sigma^2 chi^2 with
    # (n - r)(m - r) degrees of freedom: relative se sqrt(2/dof) (<= 6.8%),
    # tolerance 5 se.
    noise = 1e-6
    w = low_rank_plus_noise(_rng(16, seed_shift), n, m, rank, noise)
    sv = np.linalg.svd(w, compute_uv=False)
    assert sv[rank - 1] > 1e3 * sv[rank]
    assert np.linalg.matrix_rank(w, tol=1e3 * noise * math.sqrt(m)) == rank
    dof = (n - rank) * (m - rank)
    ratio = float(np.sum(sv[rank:] ** 2)) / (noise**2 * dof)
    assert abs(ratio - 1.0) < 5 * math.sqrt(2 / dof)


def test_low_rank_signal_has_unit_entry_variance(seed_shift: int) -> None:
    # Rank r = 4 at 8 x 8: the diagonal entries a_i . b_i / 2 use disjoint rows of
    # A and columns of B, so they are independent, with variance 1 and fourth
    # moment (9r + 3r(r - 1)) / r^2 = 4.5; the sample variance of R = 8000 of them
    # has se sqrt(3.5 / R). (Without the 1/sqrt(r) the variance would be 4.)
    rng = _rng(17, seed_shift)
    x = np.concatenate(
        [np.diag(low_rank_plus_noise(rng, 8, 8, 4, 1e-9)) for _ in range(1000)]
    )
    assert abs(x.var() - 1.0) < 5 * math.sqrt(3.5 / x.size)


def test_haar_orthogonal_is_orthogonal_and_uniform(seed_shift: int) -> None:
    rng = _rng(18, seed_shift)
    q = haar_orthogonal(rng, 50)
    assert np.allclose(q.T @ q, np.eye(50), atol=1e-12)
    # Under Haar measure Q[0, 0] is symmetric with variance 1/n; LAPACK's raw QR
    # (no sign fix) gives Q[0, 0] < 0 always, mean about -0.5 at n = 3. Over
    # R = 3000 draws the mean has se 1/sqrt(3R); tolerance 5 se.
    q00 = np.array([haar_orthogonal(rng, 3)[0, 0] for _ in range(3000)])
    assert abs(q00.mean()) < 5 / math.sqrt(3 * q00.size)
    assert abs((q00**2).mean() - 1 / 3) < 0.03


def test_well_conditioned_keeps_a_clean_spectrum() -> None:
    # The first MLP matrix of MiniLM (384 x 1536) has smallest eigenvalue 10% of
    # the mean: it clears the 1% floor and is kept exactly.
    layer = SpectraBundle.load(MINILM).layers[6]
    assert layer.name == "encoder.layer.0.intermediate.dense.weight"
    lam = np.asarray(layer.eigenvalues, dtype=np.float64)
    w = well_conditioned(np.random.default_rng(5), lam)
    assert w.shape == (384, 384)
    assert np.allclose(matrix_eigenvalues(w), np.sort(lam), rtol=1e-9)
    spec = spectrum_of(w, name="wc")
    assert spec.n == 384 and spec.gamma == 1.0 and spec.name == "wc"


def test_well_conditioned_floors_small_eigenvalues() -> None:
    lam = np.concatenate([np.logspace(-9, -3, 20), np.linspace(0.5, 2.0, 80)])
    w = well_conditioned(np.random.default_rng(6), lam, floor=0.01)
    got = matrix_eigenvalues(w)
    assert got[0] >= 0.01 * got.mean() * (1 - 1e-10)
    # the floor is the fixed point: exactly f * mean of the result, met by the
    # 20 raised values; the others are untouched
    mu = floored_eigenvalues(lam, 0.01)
    assert mu[0] == pytest.approx(0.01 * mu.mean(), rel=1e-12)
    assert np.array_equal(mu[20:], lam[20:])
    assert np.allclose(got, np.sort(mu), rtol=1e-9)


def test_spectrum_of_matches_from_matrix() -> None:
    w = gaussian(np.random.default_rng(7), 40, 100)
    a, b = spectrum_of(w), Spectrum.from_matrix(w)
    assert np.array_equal(a.eigenvalues, b.eigenvalues) and a.n_cols == b.n_cols == 100


def test_rank_collapse_control_is_a_valid_spectrum() -> None:
    # The controls' 384 x 384 rank-300 matrix with 1e-6 noise keeps all 384
    # eigenvalues (none is a numerical zero) and is accepted as a spectrum.
    w = low_rank_plus_noise(np.random.default_rng(8), 384, 384, 300, 1e-6)
    spec = spectrum_of(w)
    assert spec.n == 384 and spec.n_zero == 0
    lam = spec.eigenvalues
    assert lam[83] / lam.mean() < 1e-9 < lam[84] / lam.mean()


BAD = [
    (lambda: gaussian(0, 3, 3), "rng must be"),  # type: ignore[arg-type]
    (lambda: gaussian(np.random.default_rng(), 0, 3), "n must be >= 1"),
    (lambda: gaussian(np.random.default_rng(), 3, 2.5), "m must be an integer"),  # type: ignore[arg-type]
    (lambda: student_t(np.random.default_rng(), 3, 3, df=2), "df must be"),
    (lambda: power_law_eigenvalues(5, 0.0), "exponent must be"),
    (lambda: power_law_eigenvalues(5, float("nan")), "exponent must be"),
    (
        lambda: low_rank_plus_noise(np.random.default_rng(), 3, 4, 4, 0.1),
        "rank must be <= min",
    ),
    (lambda: low_rank_plus_noise(np.random.default_rng(), 3, 4, 2, 0.0), "noise"),
    (lambda: well_conditioned(np.random.default_rng(), [1.0]), "at least 2"),
    (lambda: well_conditioned(np.random.default_rng(), [1.0, -1.0]), "non-negative"),
    (lambda: well_conditioned(np.random.default_rng(), [1.0, 2.0], 1.0), "floor"),
]


@pytest.mark.parametrize(("call", "match"), BAD)
def test_bad_arguments_are_refused(call, match: str) -> None:
    with pytest.raises(ArgumentError, match=match) as info:
        call()
    assert isinstance(info.value, ValueError) and isinstance(info.value, HTMPError)
