"""NumPyro programs and their priors (one model per module): ``htmp_infer.models``.

This folder is installed inside the library's namespace, as ``htmp_infer.models``;
it is not a top-level ``models`` package.

Each model module follows :class:`htmp_infer.mechanisms.protocol.MechanismModel`:

- ``model(eigenvalues, *, sizes, table, n_cols, ...)``: the NumPyro program;
- ``static_kwargs(spectrum)`` / ``data_kwargs(spectrum)``: its static arguments
  (the shapes: bulk sizes per spike count) and traced ones (the data, its
  statistics and the matrix's :math:`M`) for one :class:`htmp_infer.Spectrum`;
- ``postprocess(rng, samples, spectrum)``: exact draws of the collapsed parameters;
- ``simulate(rng, params, spectrum)``: a replicated spectrum for posterior
  predictive checks.
"""

REGISTRY = {
    "mp": "htmp_infer.models.mp",
    "htmp": "htmp_infer.models.htmp",
    "inverse_htmp": "htmp_infer.models.inverse_htmp",
    "power_law": "htmp_infer.models.power_law",
    "data": "htmp_infer.models.data",
    "hard_edge": "htmp_infer.models.hard_edge",
}

if __name__ == "models":  # imported from the repository root as a top-level name
    raise ImportError(
        "the models are installed inside the library: import htmp_infer.models"
    )
