import os

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
# Keep the suite hermetic: the CLI's persistent JAX compilation cache stays off.
os.environ["HTMP_INFER_JAX_CACHE"] = ""
os.environ["HTMP_INFER_CACHE"] = ""  # and so does the spectrum cache

import htmp_infer._x64  # noqa: F401  (float64 before any test builds arrays)

SEED_SHIFT_ENV = "HTMP_TEST_SEED_SHIFT"


@pytest.fixture(scope="session")
def seed_shift() -> int:
    """Integer added to the sampler seeds of the statistical tests that take it.

    ``HTMP_TEST_SEED_SHIFT=1 pytest ...`` reruns those tests on other chains, as
    another CPU's SIMD path would (seeds fix the bits on one machine only): a test
    that passes at shift 0 but fails at a few others sits on the edge of its
    tolerance. The data of a test stay fixed; only its MCMC seeds move.
    """
    raw = os.environ.get(SEED_SHIFT_ENV, "0")
    try:
        return int(raw)
    except ValueError:
        message = f"{SEED_SHIFT_ENV} must be an integer, got {raw!r}"
        raise pytest.UsageError(message) from None
