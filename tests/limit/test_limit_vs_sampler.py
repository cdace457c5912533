"""The limit law against histograms and empirical CDFs of exact finite-N draws."""

import numpy as np
import pytest
from scipy import stats

from htmp_infer.ensembles.sampling import sample_htmp
from htmp_infer.limit import htmp_cdf, htmp_pdf

CASES = [(0.5, 2.0), (0.3255, 1.9), (0.25, 0.5), (0.5, 20.0)]


@pytest.mark.parametrize(("gamma", "kappa"), CASES)
def test_empirical_cdf_of_exact_draws_matches_limit_cdf(gamma, kappa):
    # 50 spectra of N = 400, pooled (sample_htmp's default scale is the limit law's
    # unit, E x = 1). The finite-N correction to the CDF is O(1/N) = 0.0025 and the
    # Monte Carlo error of the pooled ECDF is below 0.003 (eigenvalue rigidity makes
    # each spectrum's ECDF much less noisy than i.i.d. draws), so 0.01 is a bound
    # that a wrong law (e.g. kappa off by 20%) exceeds.
    x = np.sort(sample_htmp(7, 400, kappa, gamma=gamma, size=50).ravel())
    ecdf = np.arange(1, x.size + 1) / x.size
    grid = x[:: x.size // 400]
    err = np.max(np.abs(htmp_cdf(grid, gamma, kappa) - ecdf[:: x.size // 400]))
    assert err < 0.01
    wrong = np.max(np.abs(htmp_cdf(grid, gamma, 1.2 * kappa) - ecdf[:: x.size // 400]))
    assert wrong > err


@pytest.mark.parametrize(("gamma", "kappa"), CASES)
def test_histogram_of_exact_draws_matches_limit_density(gamma, kappa):
    # Bin probabilities from the density alone (Simpson's rule, 33 nodes per bin),
    # against counts of 50 pooled spectra of N = 400. Pearson's chi-square with 24
    # bins; eigenvalue rigidity makes the counts less variable than multinomial, so
    # the test is conservative: false-failure probability below 1e-3.
    x = sample_htmp(11, 400, kappa, gamma=gamma, size=50).ravel()
    edges = np.quantile(x, np.linspace(0.0, 1.0, 26))[1:-1]
    nodes = np.linspace(edges[:-1], edges[1:], 33)
    weights = np.ones(33)
    weights[1:-1:2], weights[2:-1:2] = 4.0, 2.0
    prob = (htmp_pdf(nodes, gamma, kappa) * weights[:, None]).sum(axis=0)
    prob *= np.diff(edges) / (3 * 32)
    counts, _ = np.histogram(x, bins=edges)
    expected = prob * x.size
    chi2 = float(np.sum((counts - expected) ** 2 / expected))
    assert stats.chi2.sf(chi2, df=counts.size - 1) > 1e-3, chi2
