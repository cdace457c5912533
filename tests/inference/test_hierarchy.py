"""The hierarchical model over the layers of one network
(htmp_infer.models.hierarchical)."""

import functools
import math
import time

import jax
import numpy as np
import pandas as pd
import pytest
from numpyro.infer.util import log_density
from scipy import stats

import htmp_infer.models.hierarchical as hier
import htmp_infer.models.htmp as htmp
from htmp_infer import HTMPError, Spectrum
from htmp_infer.ensembles.sampling import sample_htmp
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


@pytest.mark.parametrize("layer_df", [4.0, None])
def test_joint_density_is_htmp_per_layer_plus_priors(small, htmp_likelihoods, layer_df):
    spectra, kind, depths = small
    depth = hier.relative_depth(depths)
    static, data = hier.inputs(spectra, kind, depth)
    # one vmap per size N; M is traced (layer 3 is square, layers 0 and 2 not)
    assert static["members"] == ((0, 2, 3), (1, 4))
    program = functools.partial(hier.model, layer_df=layer_df, **static)
    joint = float(jax.jit(lambda d, z: log_density(program, (), d, z)[0])(data, POINT))

    sigma_a, tau = math.exp(POINT["log_sigma_a"]), math.exp(POINT["log_tau"])
    pred = POINT["mu"] + sigma_a * POINT["u"][kind] + POINT["b"] * depth
    layer_law = (
        stats.norm(pred, tau) if layer_df is None else stats.t(layer_df, pred, tau)
    )
    expected = (
        htmp_likelihoods.sum()
        + stats.norm.logpdf(POINT["mu"], math.log(4.0), 3.0)
        # half-normal(1) on sigma, carried to log sigma with its Jacobian sigma
        + stats.halfnorm.logpdf(sigma_a)
        + POINT["log_sigma_a"]
        + stats.halfnorm.logpdf(tau)
        + POINT["log_tau"]
        + stats.norm.logpdf(POINT["b"])
        + stats.norm.logpdf(POINT["u"]).sum()
        + layer_law.logpdf(POINT["log_kappa"]).sum()
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


@pytest.fixture(scope="module")
def network():
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
        spectra, kinds, depths, seed=3, chains=2, warmup=300, draws=400, progress=False
    )
    print(f"fit_layers on {2 * BLOCKS} layers: {time.perf_counter() - t0:.1f} s")
    return result


@pytest.mark.slow
def test_recovery_of_kinds_and_the_planted_outlier(network):
    with pd.option_context("display.width", 200, "display.max_columns", 12):
        print(network.groups, network.standouts, sep="\n")
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
    # are correlated through the shared kind centre: tolerate one.
    assert len(flagged) <= 2
    # 1.01 is the bar for production-length chains; with 2 chains x 400 draws the
    # rank-normalised r-hat estimate itself scatters by ~0.01, so 1.03 is the bar
    # that still catches chains stuck in different modes (r-hat >> 1.1).
    assert network.tree.attrs["diag_r_hat_max"] < 1.03
    assert network.tree.attrs["diag_divergences"] == 0


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Estimated shape parameter of Pareto")  # outlier
def test_tree_has_one_log_likelihood_term_per_layer(network):
    from arviz_stats import loo

    tree = network.tree
    ll = tree["log_likelihood"]["eigenvalues"]
    assert ll.dims == ("chain", "draw", "layer") and ll.shape == (2, 400, 2 * BLOCKS)
    assert list(tree["posterior"]["group_log_kappa"].coords["kind"]) == ["attn", "mlp"]
    assert tree["posterior"]["kappa"].dims == ("chain", "draw", "layer")
    assert tree["constant_data"]["layer_kind"].values[1] == "mlp"
    assert np.isfinite(loo(tree, pointwise=True).elpd)
