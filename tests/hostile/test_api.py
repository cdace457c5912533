"""Hostile arguments of the Python API: ``hi.fit``, ``hi.compare``, ``Spectrum``.

Every bad argument raises, before any work, an :class:`~htmp_infer.HTMPError`
that is also a ``ValueError`` (or, for something that is not a spectrum, a
``TypeError``) and names the argument.
"""

from __future__ import annotations

import re
import time

import numpy as np
import pytest

import htmp_infer as hi
from htmp_infer.ensembles.sampling import sample_htmp
from htmp_infer.errors import ArgumentError, HTMPError, SpectrumError, SpectrumTypeError

LAM = sample_htmp(0, 30, 2.0, gamma=0.5)
SPECTRUM = hi.Spectrum.from_eigenvalues(LAM, gamma=0.5)


@pytest.mark.parametrize("entry", [hi.fit, hi.compare], ids=["fit", "compare"])
@pytest.mark.parametrize(
    "value",
    [LAM, list(LAM), None, "eig.npz", {"eigenvalues": LAM}],
    ids=["ndarray", "list", "None", "a path", "a dict"],
)
def test_not_a_spectrum_is_a_type_error_saying_how_to_build_one(entry, value):
    with pytest.raises(SpectrumTypeError, match=r"Spectrum\.from_eigenvalues") as exc:
        entry(value)
    assert isinstance(exc.value, TypeError) and isinstance(exc.value, HTMPError)


# (id, keyword arguments, the argument named in the message)
RUN_CASES: list[tuple[str, dict[str, object], str]] = [
    ("chains 0", {"chains": 0}, "chains"),
    ("chains negative", {"chains": -2}, "chains"),
    ("chains float", {"chains": 2.5}, "chains"),
    ("chains bool", {"chains": True}, "chains"),
    ("chains str", {"chains": "4"}, "chains"),
    ("chains absurd", {"chains": 10**6}, "chains"),
    ("draws 0", {"draws": 0}, "draws"),
    ("draws None", {"draws": None}, "draws"),
    ("draws absurd", {"draws": 10**9}, "warmup + draws"),
    ("warmup negative", {"warmup": -1}, "warmup"),
    ("warmup float", {"warmup": 10.0}, "warmup"),
    ("seed negative", {"seed": -1}, "seed"),
    ("seed 2**32", {"seed": 2**32}, "seed"),
    ("seed float", {"seed": 0.5}, "seed"),
    ("seed str", {"seed": "0"}, "seed"),
    ("seed array", {"seed": np.array([1, 2])}, "seed"),
    ("ppc_draws negative", {"ppc_draws": -1}, "ppc_draws"),
    ("ppc_draws absurd", {"ppc_draws": 10**7}, "ppc_draws"),
    ("method unknown", {"method": "hmc"}, "method"),
    ("method None", {"method": None}, "method"),
]


@pytest.mark.parametrize("entry", [hi.fit, hi.compare], ids=["fit", "compare"])
@pytest.mark.parametrize(
    ("kwargs", "name"), [pytest.param(k, n, id=i) for i, k, n in RUN_CASES]
)
def test_run_arguments_are_range_checked_before_work(entry, kwargs, name):
    t0 = time.perf_counter()
    with pytest.raises(ArgumentError, match=re.escape(name)) as exc:
        entry(SPECTRUM, progress=False, **kwargs)
    assert isinstance(exc.value, ValueError)
    assert time.perf_counter() - t0 < 5  # refused up front, nothing fitted


@pytest.mark.parametrize(
    ("model", "match"),
    [("nope", "unknown model"), (3, "model must be"), (None, "model must be")],
)
def test_fit_model_name(model, match):
    with pytest.raises(ArgumentError, match=match):
        hi.fit(SPECTRUM, model, progress=False)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"models": ["mp", "nope"]}, "nope"),
        ({"models": []}, "models is empty"),
        ({"models": ["htmp", "htmp"]}, "more than once"),
        ({"models": [1]}, "model in models"),
        ({"models": 5}, "list of model names"),
        ({"fit_models": ["nope"]}, "fit_models"),
        ({"fit_models": "nope"}, "nope"),
    ],
    ids=["unknown", "empty", "twice", "not a name", "not a list", "fits", "fits str"],
)
def test_compare_model_lists(kwargs, match):
    with pytest.raises(ArgumentError, match=match):
        hi.compare(SPECTRUM, progress=False, **kwargs)


def test_fit_grid_must_be_a_grid_posterior():
    with pytest.raises(ArgumentError, match="grid"):
        hi.fit(SPECTRUM, method="grid", grid="not a grid", progress=False)  # type: ignore[arg-type]


# (id, keyword arguments of from_eigenvalues, a piece of the message)
SHAPE_CASES: list[tuple[str, dict[str, object], str]] = [
    ("gamma str", {"gamma": "0.5"}, "gamma must be a real number"),
    ("gamma bool", {"gamma": True}, "gamma must be a real number"),
    ("gamma vector", {"gamma": np.array([0.5, 0.5])}, "gamma must be a real number"),
    ("gamma NaN", {"gamma": float("nan")}, "gamma must be a finite"),
    ("gamma 0", {"gamma": 0.0}, "(0, 1]"),
    ("gamma tiny", {"gamma": 1e-300}, "below 1e-08"),
    ("n_cols inf", {"n_cols": float("inf")}, "n_cols must be a finite"),
    ("n_cols beyond float", {"n_cols": 10**400}, "too large"),
    ("n_cols below N", {"n_cols": 3}, "n_cols must be >= N"),
    ("n_cols astronomical", {"n_cols": 1e20}, "1e+08"),
    ("neither", {}, "shape is unknown"),
    ("name not a str", {"gamma": 0.5, "name": 3}, "name"),
]


@pytest.mark.parametrize(
    ("kwargs", "match"), [pytest.param(k, m, id=i) for i, k, m in SHAPE_CASES]
)
def test_from_eigenvalues_shape_arguments(kwargs, match):
    with pytest.raises(SpectrumError, match=re.escape(match)):
        hi.Spectrum.from_eigenvalues(LAM, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ("1 2 3", "numbers"),
        ([[1.0, 2.0], [3.0]], "1-D array of numbers"),
        (np.arange(1.0, 1_000_002.0), "at most 1000000"),
        (LAM * 1e-310, "subnormal"),
        (LAM * 1e307, "overflows"),
    ],
    ids=["a string", "ragged", "too many", "subnormal", "overflow"],
)
def test_from_eigenvalues_values(values, match):
    with pytest.raises(SpectrumError, match=match):
        hi.Spectrum.from_eigenvalues(values, gamma=0.5)


@pytest.mark.parametrize(
    ("matrix", "match"),
    [
        (np.full((4, 6), 1e300) + np.eye(4, 6) * 1e299, "overflow"),
        (np.random.default_rng(0).normal(size=(4, 6)) * 1e-160, "underflow"),
        (np.zeros((4, 6)), "all zeros"),
        (np.ones((4, 6)) * 1j, "real"),
        ([[1.0, 2.0], [3.0]], "2-D array of numbers"),
    ],
    ids=["overflow", "underflow", "zeros", "complex", "ragged"],
)
def test_from_matrix(matrix, match):
    with pytest.raises(SpectrumError, match=match):
        hi.Spectrum.from_matrix(matrix)


@pytest.mark.parametrize(
    ("args", "kwargs", "match"),
    [
        ((LAM[::-1].copy(), 60.0), {}, "sorted"),
        ((list(LAM), 60.0), {}, "float64 numpy array"),
        ((LAM.astype(np.float32), 60.0), {}, "float64"),
        ((np.r_[-1.0, LAM], 60.0), {}, "positive"),
        ((LAM, 10.0), {}, "n_cols must be >= N"),
        ((LAM, float("nan")), {}, "n_cols"),
        ((LAM, 60.0), {"max_spikes": -1}, "max_spikes"),
        ((LAM, 60.0), {"n_zero": 1.5}, "n_zero"),
        ((LAM, 60.0), {"name": None}, "name"),
        ((LAM * 1e-310, 60.0), {}, "subnormal"),
    ],
    ids=[
        "unsorted",
        "a list",
        "float32",
        "negative",
        "n_cols small",
        "n_cols NaN",
        "max_spikes",
        "n_zero",
        "name",
        "subnormal",
    ],
)
def test_spectrum_constructor_refuses_what_no_builder_makes(args, kwargs, match):
    with pytest.raises(SpectrumError, match=match):
        hi.Spectrum(*args, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"key": -1}, "key must be in"),
        ({"key": 2**32}, "key must be in"),
        ({"n": 10**9}, "n must be in"),
        ({"n": 0}, "n must be in"),
        ({"n": 30.0}, "n must be an integer"),
        ({"kappa": 0.0}, "kappa must be > 0"),
        ({"kappa": float("nan")}, "kappa must be a finite"),
        ({"scale": float("inf")}, "scale must be a finite"),
        ({"gamma": 2.0}, r"\(0, 1\]"),
    ],
    ids=[
        *["seed -1", "seed 2**32", "n 1e9", "n 0", "n float"],
        *["kappa 0", "kappa NaN", "scale inf", "gamma 2"],
    ],
)
def test_sample_htmp_arguments(kwargs, match):
    args = {"key": 0, "n": 30, "kappa": 2.0, "gamma": 0.5, **kwargs}
    with pytest.raises(HTMPError, match=match) as exc:
        sample_htmp(args.pop("key"), args.pop("n"), args.pop("kappa"), **args)
    assert isinstance(exc.value, ValueError)


@pytest.mark.filterwarnings("ignore::htmp_infer.errors.EvidenceWarning")
def test_an_accepted_spectrum_fits_at_both_ends_of_float64():
    """The range rule is what the likelihood needs: a spectrum scaled to the top
    (sum just below 2**1023) and to the bottom (smallest value just above the
    smallest normal float64) of float64 gives the same kappa draws as at scale 1
    (the likelihood is scale-free; scaling by a power of two is exact)."""
    tiny = np.finfo(np.float64).tiny
    top_k = int(np.floor(1022 - np.log2(LAM.sum())))
    low_k = int(np.ceil(np.log2(tiny / LAM.min())))
    ref = hi.fit(
        SPECTRUM, method="grid", chains=1, draws=50, ppc_draws=0, progress=False
    )
    for k in (top_k, low_k):
        scaled = hi.Spectrum.from_eigenvalues(np.ldexp(LAM, k), gamma=0.5)
        dt = hi.fit(
            scaled, method="grid", chains=1, draws=50, ppc_draws=0, progress=False
        )
        np.testing.assert_allclose(
            dt["posterior"]["kappa"].values, ref["posterior"]["kappa"].values, rtol=1e-6
        )
