import numpy as np
import pytest

from htmp_infer import Spectrum, SpectrumError
from htmp_infer._numerics import log_abs_vandermonde
from htmp_infer.spectrum import matrix_eigenvalues


def test_from_eigenvalues_shape_conventions():
    s = Spectrum.from_eigenvalues([3.0, 1.0, 2.0], gamma=0.5)
    assert s.n == 3 and s.n_cols == 6 and s.gamma == 0.5
    assert np.all(np.diff(s.eigenvalues) > 0)
    s2 = Spectrum.from_eigenvalues([3.0, 1.0, 2.0], n_cols=12)
    assert s2.gamma == 0.25
    with pytest.raises(SpectrumError, match="shape is unknown"):
        Spectrum.from_eigenvalues([1.0, 2.0])
    with pytest.raises(SpectrumError, match="disagree"):
        Spectrum.from_eigenvalues([1.0, 2.0], gamma=0.5, n_cols=5)
    with pytest.raises(SpectrumError, match=r"\(0, 1\]"):
        Spectrum.from_eigenvalues([1.0, 2.0], gamma=1.5)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([], "empty"),
        ([1.0], "at least 2"),
        ([1.0, np.nan], "NaN"),
        ([1.0, np.inf], "inf"),
        ([1.0, -2.0], "negative"),
        ([1.0, 2.0, 2.0], "tied"),
        ([[1.0, 2.0], [3.0, 4.0]], "1-D"),
        (["a", "b"], "real numbers"),
    ],
)
def test_bad_eigenvalues_raise_one_clear_error(values, message):
    with pytest.raises(SpectrumError, match=message):
        Spectrum.from_eigenvalues(values, gamma=0.5)


def test_zeros_are_removed_and_counted():
    with pytest.warns(UserWarning, match="removed 2 zero"):
        s = Spectrum.from_eigenvalues([0.0, 0.0, 1.0, 2.0, 3.0], n_cols=10)
    assert s.n == 3 and s.n_zero == 2 and s.n_cols == 10


def test_from_matrix_uses_squared_singular_values_either_orientation():
    rng = np.random.default_rng(0)
    w = rng.standard_normal((30, 70))
    s = Spectrum.from_matrix(w)
    s_t = Spectrum.from_matrix(w.T)
    ref = np.sort(np.linalg.eigvalsh(w @ w.T))
    np.testing.assert_allclose(s.eigenvalues, ref, rtol=1e-10)
    np.testing.assert_allclose(s_t.eigenvalues, ref, rtol=1e-10)
    assert (s.n, s.n_cols) == (30, 70) and s.n_zero == 0


def test_rank_deficient_matrix_zeros_removed_and_counted():
    rng = np.random.default_rng(1)
    w = rng.standard_normal((20, 5)) @ rng.standard_normal((5, 40))  # rank 5
    with pytest.warns(UserWarning, match="removed 15 zero"):
        s = Spectrum.from_matrix(w)
    assert s.n == 5 and s.n_zero == 15 and s.n_cols == 40


@pytest.mark.parametrize(
    ("matrix", "message"),
    [
        (np.ones(5), "2-D"),
        (np.ones((1, 5)), "at least 2 x 2"),
        (np.array([[1.0, np.nan], [0.0, 1.0]]), "NaN"),
    ],
)
def test_bad_matrices(matrix, message):
    with pytest.raises(SpectrumError, match=message):
        Spectrum.from_matrix(matrix)


def test_log_vandermonde_matches_pairwise_sum_and_is_cached():
    rng = np.random.default_rng(2)
    x = rng.gamma(0.5, size=2500)  # > one block of 1024 rows
    i, j = np.triu_indices(x.size, 1)
    naive = np.sum(np.log(np.abs(x[i] - x[j])))
    s = Spectrum.from_eigenvalues(x, gamma=0.5)
    # float64 summation of 3e6 terms: relative error well below 1e-12
    assert s.log_vandermonde == pytest.approx(naive, rel=1e-12)
    assert log_abs_vandermonde([1.0, 1.0, 2.0]) == -np.inf
    assert s.stats.log_vandermonde is s.log_vandermonde or (
        s.stats.log_vandermonde == s.log_vandermonde
    )
    assert s.stats.total == pytest.approx(x.sum(), rel=1e-14)


@pytest.mark.parametrize("suffix", [".npy", ".npz", ".txt", ".csv"])
def test_load_round_trip(tmp_path, suffix):
    x = np.array([0.5, 1.25, 2.0, 4.5])
    path = tmp_path / f"eig{suffix}"
    if suffix == ".npy":
        np.save(path, x)
    elif suffix == ".npz":
        np.savez(path, eigenvalues=x, n_cols=8.0)
    elif suffix == ".txt":
        np.savetxt(path, x)
    else:
        path.write_text(",".join(map(str, x)) + "\n")
    kwargs = {} if suffix == ".npz" else {"gamma": 0.5}
    s = Spectrum.load(path, **kwargs)
    np.testing.assert_array_equal(s.eigenvalues, x)
    assert s.n_cols == 8.0


def test_load_errors(tmp_path):
    with pytest.raises(SpectrumError, match="no such file"):
        Spectrum.load(tmp_path / "missing.npy", gamma=0.5)
    bad = tmp_path / "bad.npy"
    bad.write_bytes(b"not a numpy file")
    with pytest.raises(SpectrumError, match="unreadable"):
        Spectrum.load(bad, gamma=0.5)
    odd = tmp_path / "eig.json"
    odd.write_text("[1, 2]")
    with pytest.raises(SpectrumError, match="unsupported file type"):
        Spectrum.load(odd, gamma=0.5)
    nogamma = tmp_path / "eig.npy"
    np.save(nogamma, np.array([1.0, 2.0]))
    with pytest.raises(SpectrumError, match="shape is unknown"):
        Spectrum.load(nogamma)
    text = tmp_path / "eig.txt"
    text.write_text("1.0\nabc\n")
    with pytest.raises(SpectrumError, match="not a table of numbers"):
        Spectrum.load(text, gamma=0.5)


@pytest.mark.parametrize("shape", [(1000, 40), (40, 1000), (161, 80)])
def test_tall_matrices_go_through_blocked_qr_exactly(shape):
    """Blocked Householder QR then SVD of R equals the dense float64 SVD.

    Both are backward stable in float64; with singular values spread over 3
    decades the relative agreement is ~1e-15, so 1e-12 has a wide margin.
    """
    rng = np.random.default_rng(5)
    w = rng.normal(size=shape).astype(np.float32)
    w *= np.logspace(0, 3, w.shape[1]).astype(np.float32)[None, :]
    lam = matrix_eigenvalues(w)
    ref = np.sort(np.linalg.svd(w.astype(np.float64), compute_uv=False) ** 2)
    np.testing.assert_allclose(lam, ref, rtol=1e-12)
