import os

os.environ.setdefault("MPLBACKEND", "Agg")
# Keep the suite hermetic: the CLI's persistent JAX compilation cache stays off.
os.environ["HTMP_INFER_JAX_CACHE"] = ""
os.environ["HTMP_INFER_CACHE"] = ""  # and so does the spectrum cache

import htmp_infer._x64  # noqa: F401  (float64 before any test builds arrays)
