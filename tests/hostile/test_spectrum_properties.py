"""Properties of the spectrum builders on any float64 input (Hypothesis).

For any array (NaN, inf, negatives, zeros, ties, subnormals, values near the
float64 limits, any shape), ``Spectrum.from_eigenvalues``, ``Spectrum.from_matrix``
and ``Spectrum.load`` either return a spectrum whose sufficient statistics are
finite, or raise an :class:`~htmp_infer.HTMPError`: nothing else.
"""

from __future__ import annotations

import math
import re
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from htmp_infer import HTMPError, Spectrum
from htmp_infer.spectrum import MAX_ASPECT

TINY = float(np.finfo(np.float64).tiny)
SETTINGS = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# every float64, with the hostile ones drawn often: subnormals, the largest
# finite values, zeros, negatives, NaN and inf
EDGES = st.sampled_from(
    [
        *[0.0, -0.0, TINY, TINY / 2, 5e-324, 1e-310, 1e308, 1.7976931348623157e308],
        *[float("nan"), float("inf"), -1.0, 1.0, 2.0],
    ]
)
FLOATS = st.one_of(st.floats(width=64), EDGES)
VECTORS = arrays(np.float64, st.integers(0, 24), elements=FLOATS)
# positive spectra on a random scale: the ones that should mostly be accepted
SCALED = st.tuples(
    arrays(
        np.float64,
        st.integers(2, 24),
        elements=st.floats(1e-3, 1e3),
        unique=True,
    ),
    st.integers(-1100, 1100),
)
SHAPES = st.one_of(
    st.none(),
    st.floats(width=64),
    st.floats(1e-9, 1.0),
    st.sampled_from([0.5, 1.0, 1e-8, 1e-300, 2.0, float("nan")]),
)


def _check(spectrum: Spectrum) -> None:
    """What every accepted spectrum guarantees."""
    lam = spectrum.eigenvalues
    assert lam.dtype == np.float64 and lam.ndim == 1 and lam.size >= 2
    assert np.all(lam >= TINY) and np.all(np.diff(lam) > 0)
    stats = spectrum.stats
    assert all(math.isfinite(v) for v in stats[1:]), stats
    assert math.isfinite(float(np.sum(1.0 / lam)))
    assert spectrum.n <= spectrum.n_cols <= MAX_ASPECT * spectrum.n
    assert 0 < spectrum.gamma <= 1


def _build(values: np.ndarray, gamma: float | None) -> Spectrum | None:
    n_cols = None if gamma is not None else 2.0 * max(values.size, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zeros removed: a warning, not an error
        try:
            return Spectrum.from_eigenvalues(values, gamma=gamma, n_cols=n_cols)
        except HTMPError:
            return None


@SETTINGS
@given(values=VECTORS, gamma=SHAPES)
def test_from_eigenvalues_accepts_valid_or_raises_htmp_error(values, gamma):
    spectrum = _build(values, gamma)
    if spectrum is not None:
        _check(spectrum)


@SETTINGS
@given(scaled=SCALED)
def test_out_of_range_spectra_are_refused_with_a_rescaling_that_works(scaled):
    """Scale a good spectrum by 2**k (exact) anywhere in float64: accepted, or
    refused with a message whose suggested power of two is accepted."""
    base, k = scaled
    with np.errstate(over="ignore"):
        values = np.ldexp(base, k)
    assume(np.all(np.isfinite(values)) and np.all(values > 0))  # not past float64
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            _check(Spectrum.from_eigenvalues(values, gamma=0.5))
    except HTMPError as exc:
        suggestion = re.search(r"multiply them by 2\*\*(-?\d+)", str(exc))
        if suggestion is None:
            assert (
                "spread" in str(exc) or "tied" in str(exc) or "2 positive" in str(exc)
            ), exc
            return
        fixed = np.ldexp(values, int(suggestion.group(1)))
        _check(Spectrum.from_eigenvalues(fixed, gamma=0.5))


@SETTINGS
@given(
    matrix=arrays(
        np.float64,
        st.tuples(st.integers(0, 7), st.integers(0, 7)),
        elements=FLOATS,
    )
)
def test_from_matrix_accepts_valid_or_raises_htmp_error(matrix):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            spectrum = Spectrum.from_matrix(matrix)
        except HTMPError:
            return
    _check(spectrum)
    assert spectrum.n + spectrum.n_zero == min(matrix.shape)


@pytest.fixture(scope="module")
def folder():
    with tempfile.TemporaryDirectory() as d:
        yield Path(d)


@SETTINGS
@given(
    values=arrays(
        st.sampled_from([np.float64, np.float32, np.int64, np.float16]),
        st.integers(0, 12),
    ),
    suffix=st.sampled_from([".npy", ".npz", ".txt", ".csv"]),
    gamma=SHAPES,
)
def test_load_accepts_valid_or_raises_htmp_error(folder, values, suffix, gamma):
    path = folder / f"eig{suffix}"
    if suffix == ".npy":
        np.save(path, values)
    elif suffix == ".npz":
        np.savez(
            path, eigenvalues=values, gamma=np.float64(0.5 if gamma is None else gamma)
        )
    else:
        np.savetxt(path, values.astype(np.float64), delimiter=",")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            spectrum = Spectrum.load(path, gamma=None if suffix == ".npz" else gamma)
        except HTMPError:
            return
    _check(spectrum)


@SETTINGS
@given(data=st.binary(max_size=300), suffix=st.sampled_from([".npy", ".npz", ".txt"]))
def test_load_of_arbitrary_bytes_raises_only_htmp_error(folder, data, suffix):
    path = folder / f"junk{suffix}"
    path.write_bytes(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            spectrum = Spectrum.load(path, gamma=0.5)
        except HTMPError:
            return
    _check(spectrum)
