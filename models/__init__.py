"""NumPyro programs and their priors (one model per module).

Each model module exposes:

- ``model(eigenvalues, *, n, n_cols, log_vandermonde)``: the NumPyro program;
- ``static_kwargs(spectrum)`` / ``data_kwargs(spectrum)``: its static and traced
  arguments for one :class:`htmp_infer.Spectrum`;
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
