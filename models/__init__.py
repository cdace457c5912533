"""NumPyro programs and their priors (one model per module).

Each model module exposes:

- ``model(eigenvalues, *, sizes, table, n_cols, ...)``: the NumPyro program;
- ``static_kwargs(spectrum)`` / ``data_kwargs(spectrum)``: its static arguments
  (the shapes: bulk sizes per spike count) and traced ones (the data, its
  statistics and the matrix's :math:`M`) for one :class:`htmp_infer.Spectrum`;
- ``postprocess(rng, samples, spectrum)``: exact draws of the collapsed parameters;
- ``simulate(rng, params, spectrum)``: a replicated spectrum for posterior
  predictive checks.
"""

REGISTRY = {
    "mp": "models.mp",
    "htmp": "models.htmp",
    "inverse_htmp": "models.inverse_htmp",
    "temperature": "models.temperature",
    "data": "models.data",
}
