"""The hierarchical model over the layers of one network
(htmp_infer.models.hierarchical)."""

import functools
import math
import time

import jax
import numpy as np
import pandas as pd
import pytest
from arviz_stats import ess
from numpyro.infer.util import log_density
from scipy import stats

import htmp_infer.models.hierarchical as hier
import htmp_infer.models.htmp as htmp
from htmp_infer import HTMPError, Spectrum
from htmp_infer.ensembles.sampling import sample_htmp
from htmp_infer.inference import hierarchy
from htmp_infer.inference.hierarchy import fit_layers


def _layer(seed, n, kappa, gamma, name):
    lam = sample_htmp(seed, n, kappa, gamma=gamma, scale=3.0)
    return Spectrum.from_eigenvalues(lam, gamma=gamma, name=name)


@pytest.fixture(scope="module")
def small():
    """Five layers of two sizes N (one with two aspect ratios), a kind of one layer.

    N <= 64 keeps the density cheap to compile (direct Selberg sums).
    """
    spectra = [
        _layer(1, 60, 1.5, 0.5, "a0"),
        _layer(2, 40, 8.0, 0.25, "b0"),
        _layer(3, 60, 2.0, 0.5, "a1"),
        _layer(4, 60, 30.0, 1.0, "b1"),
        _layer(5, 40, 5.0, 0.25, "emb"),
    ]
    return spectra, [0, 1, 0, 1, 2], [0, 0, 3, 3, None]


POINT = {
    "mu": 1.1,
    "log_sigma_a": -0.4,
    "b": 0.7,
    "log_tau": -0.9,
    "u": np.array([0.3, -1.2, 0.8]),
    "log_kappa": np.array([0.2, 2.5, 0.9, 3.1, -0.7]),
}


@pytest.fixture(scope="module")
def htmp_likelihoods(small):
    """Each layer's likelihood under htmp_infer.models.htmp at POINT's log-kappa."""
    out = []
    for spectrum, log_kappa in zip(small[0], POINT["log_kappa"], strict=True):
        program = functools.partial(htmp.model, **htmp.static_kwargs(spectrum))
        density = jax.jit(lambda d, z, p=program: log_density(p, (), d, z)[0])
        with_prior = density(htmp.data_kwargs(spectrum), {"log_kappa": log_kappa})
        prior = stats.norm.logpdf(log_kappa, htmp.LOG_KAPPA_LOC, htmp.LOG_KAPPA_SCALE)
        out.append(float(with_prior) - prior)
    return np.array(out)


def test_relative_depth_scales_blocks_and_centres_missing():
    np.testing.assert_allclose(
        hier.relative_depth([2, None, 4, 6]), [0.0, 0.5, 0.5, 1.0]
    )
    np.testing.assert_allclose(hier.relative_depth([3, 3, None]), [0.5, 0.5, 0.5])


@pytest.mark.parametrize(
    ("layer_df", "one_kind"), [(4.0, False), (None, False), (4.0, True)]
)
def test_joint_density_is_htmp_per_layer_plus_priors(
    small, htmp_likelihoods, layer_df, one_kind
):
    spectra, kind, depths = small
    point = POINT
    if one_kind:  # no contrasts: kind_contrast is absent
        kind, point = [0] * len(spectra), {**POINT, "u": POINT["u"][:1]}
    depth = hier.relative_depth(depths)
    static, data = hier.inputs(spectra, kind, depth)
    # one vmap per size N; M is traced (layer 3 is square, layers 0 and 2 not)
    assert static["members"] == ((0, 2, 3), (1, 4))
    program = functools.partial(hier.model, layer_df=layer_df, **static)
    # NUTS samples other coordinates (a shift and a rotation of mu, u: unit
    # Jacobian), so the density there must be the generative story's, unchanged
    latent = hier.to_latent(point, static["n_kinds"])
    sampled = {"b", "log_sigma_a", "log_tau", "log_kappa", "kind_mean_z"}
    sampled |= {"mean_group_log_kappa"} | (set() if one_kind else {"kind_contrast"})
    assert set(latent) == sampled

    def density(d, z):
        joint, trace = log_density(program, (), d, z)
        return joint, trace["mu"]["value"], trace["u"]["value"]

    joint, mu, u = jax.jit(density)(data, latent)
    joint = float(joint)
    # and the reported mu, u are the point's
    assert float(mu) == pytest.approx(point["mu"], abs=1e-12)
    np.testing.assert_allclose(u, point["u"], atol=1e-12)

    sigma_a, tau = math.exp(point["log_sigma_a"]), math.exp(point["log_tau"])
    pred = point["mu"] + sigma_a * point["u"][kind] + point["b"] * depth
    layer_law = (
        stats.norm(pred, tau) if layer_df is None else stats.t(layer_df, pred, tau)
    )
    expected = (
        htmp_likelihoods.sum()
        + stats.norm.logpdf(point["mu"], math.log(4.0), 3.0)
        # half-normal(1) on sigma, carried to log sigma with its Jacobian sigma
        + stats.halfnorm.logpdf(sigma_a)
        + point["log_sigma_a"]
        + stats.halfnorm.logpdf(tau)
        + point["log_tau"]
        + stats.norm.logpdf(point["b"])
        + stats.norm.logpdf(point["u"]).sum()
        + layer_law.logpdf(point["log_kappa"]).sum()
    )
    assert joint == pytest.approx(expected, rel=1e-12, abs=1e-9)


@pytest.mark.parametrize(
    ("n_spectra", "kinds", "depths", "match"),
    [
        (1, ["a"], [0], "at least 2 layers"),
        (2, ["a"], [0, 1], "one kind and one depth per layer"),
        (2, ["a", "b"], [0, 1, 2], "one kind and one depth per layer"),
    ],
)
def test_bad_layer_lists_raise(small, n_spectra, kinds, depths, match):
    with pytest.raises(HTMPError, match=match):
        fit_layers(small[0][:n_spectra], kinds, depths, progress=False)


def test_bad_settings_raise(small):
    spectra = small[0][:2]
    with pytest.raises(HTMPError, match="chains"):
        fit_layers(spectra, ["a", "a"], [0, 1], chains=0, progress=False)
    with pytest.raises(HTMPError, match="layer_df"):
        fit_layers(spectra, ["a", "a"], [0, 1], layer_df=0.0, progress=False)


# Four blocks, each with an attention layer (64 x 64) and an MLP layer (48 x 192):
# attention kappa ~ 1.5, MLP kappa ~ 20, with log-sd 0.1 jitter centred within each
# kind (so the kind's true centre is exactly its kappa), and the attention layer of
# block 2 planted at kappa = 200.
TRUTH = {"attn": 1.5, "mlp": 20.0}
SHAPES = {"attn": (64, 1.0), "mlp": (48, 0.25)}  # N <= 64: cheap direct sums
BLOCKS = 4
OUTLIER = "attn_2"


# Run lengths of the network fit. The r-hat bar is 1.03 and its false-failure rate is
# a function of the ESS (_rhat_false_failure). At 2 chains x 400 draws (ESS 200-250)
# it was 1-3% per quantity, and the test failed on another CPU (r-hat 1.044). At
# these lengths the smallest ESS over 12 runs (seeds 1-6, native and
# --xla_cpu_max_isa=AVX) was 581-1018, r-hat 1.0037-1.0104: a rate of 6e-5 or less
# for the lowest-ESS quantity, 2e-4 or less summed over all of them.
CHAINS, WARMUP, DRAWS = 4, 500, 600
RHAT_BAR = 1.03


def _rhat_false_failure(ess, chains, draws, bar=RHAT_BAR):
    """Chance that the rank-normalised split r-hat of a chain that mixes exceeds bar.

    With m = 2 * chains half-chains of n = draws / 2 draws and a total effective
    sample size ESS, the half-chain means scatter with variance m sigma^2 / ESS,
    so r-hat^2 = 1 - 1/n + (m / ESS) chi2_{m-1} / (m - 1) to first order (Gelman
    and Rubin 1992; Vehtari et al. 2021). ArviZ's r-hat is the larger of the bulk
    and the folded (tail) r-hat, whence the factor 2 (a union bound). Checked
    against AR(1) chains and arviz_stats.rhat: 2 x 400 draws at ESS 208 give 0.020
    by simulation and 0.032 here, 4 x 1000 at ESS 410 give 0.003 and 0.004.
    """
    m, n = 2 * chains, draws // 2
    threshold = (m - 1) * (bar**2 - 1 + 1 / n) * np.asarray(ess) / m
    return 2 * stats.chi2.sf(threshold, m - 1)


@pytest.fixture(scope="module")
def network(seed_shift):
    rng = np.random.default_rng(2024)
    jitter = rng.normal(0.0, 0.1, size=(BLOCKS, 2))
    jitter -= jitter.mean(axis=0)
    spectra, kinds, depths = [], [], []
    for block in range(BLOCKS):
        for j, kind in enumerate(TRUTH):
            name = f"{kind}_{block}"
            kappa = (
                200.0 if name == OUTLIER else TRUTH[kind] * math.exp(jitter[block, j])
            )
            n, gamma = SHAPES[kind]
            spectra.append(_layer(rng, n, kappa, gamma, name))
            kinds.append(kind)
            depths.append(block)
    t0 = time.perf_counter()
    result = fit_layers(
        spectra,
        kinds,
        depths,
        seed=3 + seed_shift,
        chains=CHAINS,
        warmup=WARMUP,
        draws=DRAWS,
        progress=False,
    )
    print(f"fit_layers on {2 * BLOCKS} layers: {time.perf_counter() - t0:.1f} s")
    return result


@pytest.mark.slow
def test_recovery_of_kinds_and_the_planted_outlier(network):
    with pd.option_context("display.width", 200, "display.max_columns", 12):
        print(network.groups, network.standouts, sep="\n")
    # The 90% intervals are those of a fixed data set; only their Monte Carlo error
    # moves with the seed or the CPU. Over the 12 runs above, attn's q05 was
    # 1.26-1.36 (truth 1.5; log-sd 0.025 across runs, so 4.5 sd away) and mlp's
    # q95 26.4-28.8 (truth 20, 10 sd away).
    for kind, kappa in TRUTH.items():
        row = network.groups.loc[kind]
        assert row["n_layers"] == BLOCKS
        assert row["kappa_q05"] < kappa < row["kappa_q95"], kind
    flagged = network.standouts.index[network.standouts["stands_out"]]
    assert OUTLIER in flagged
    assert network.standouts.index[0] == OUTLIER  # sorted by |deviation|
    # Every other layer deviates only by its 0.1 jitter plus its estimation error
    # (log-kappa posterior sd 0.1-0.3 at these N), well inside the t scale tau
    # learnt from them, so a flag is a 90%-interval false positive. The intervals
    # are correlated through the shared kind centre: tolerate one. Measured: the
    # closest, attn_3, has its q95 at 0.11-0.17 above 0 (deviation sd 0.6-0.9; a
    # 5% quantile's Monte Carlo sd ~0.06 at ESS ~700), so it is flagged in a few
    # per cent of runs; the next closest ends 0.45 from 0, 7 Monte Carlo sd.
    assert len(flagged) <= 2
    # r-hat < 1.03 catches chains stuck in different modes or regions (r-hat 1.07
    # when one chain of two sat at small tau for 200 draws). Its false-failure rate
    # for chains that do mix, from each diagnosed quantity's ESS, summed:
    attrs = network.tree.attrs
    post = network.tree["posterior"].dataset[hierarchy._DIAGNOSED]
    bulk, tail = ess(post, method="bulk"), ess(post, method="tail")
    ess_min = np.concatenate(
        [np.minimum(bulk[v].values, tail[v].values).ravel() for v in post.data_vars]
    )
    false_failure = float(_rhat_false_failure(ess_min, CHAINS, DRAWS).sum())
    print(
        f"r-hat {attrs['diag_r_hat_max']:.4f}, min ESS {ess_min.min():.0f}, "
        f"false-failure rate of the r-hat bar {false_failure:.1e}"
    )
    assert attrs["diag_r_hat_max"] < RHAT_BAR, f"false-failure rate {false_failure:.1e}"
    assert attrs["diag_divergences"] == 0


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Estimated shape parameter of Pareto")  # outlier
def test_tree_has_one_log_likelihood_term_per_layer(network):
    from arviz_stats import loo

    tree = network.tree
    ll = tree["log_likelihood"]["eigenvalues"]
    assert ll.dims == ("chain", "draw", "layer") and ll.shape == (
        CHAINS,
        DRAWS,
        2 * BLOCKS,
    )
    assert list(tree["posterior"]["group_log_kappa"].coords["kind"]) == ["attn", "mlp"]
    assert tree["posterior"]["kappa"].dims == ("chain", "draw", "layer")
    assert tree["constant_data"]["layer_kind"].values[1] == "mlp"
    assert np.isfinite(loo(tree, pointwise=True).elpd)
