import os

os.environ.setdefault("MPLBACKEND", "Agg")

import htmp_infer  # noqa: F401  (enables float64 before any test builds arrays)
