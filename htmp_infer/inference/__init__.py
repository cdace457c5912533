"""Inference engines: from a spectrum and a model to posteriors, evidences and readings.

This subpackage owns everything that runs a model on data: the compiled programs and
mode search (:mod:`~htmp_infer.inference._programs`), the spike cap
(:mod:`~htmp_infer.inference.spike_caps`), the quadrature evidence
(:mod:`~htmp_infer.inference.evidence`) and the exact grid posterior
(:mod:`~htmp_infer.inference.grid`), NUTS (:mod:`~htmp_infer.inference.nuts`), posterior
predictive replicates, diagnostics, summaries, the public :func:`~htmp_infer.fit`
(:mod:`~htmp_infer.inference.fit`) and :func:`~htmp_infer.compare`
(:mod:`~htmp_infer.inference.comparison`) with what one spectrum identifies and the
phase posterior, and the hierarchical fit over the layers of one network. How a
posterior is drawn (method, lengths, seed, replicates) is one
:class:`~htmp_infer.inference.options.SamplerOptions`, shared by ``fit``,
``compare``, the scan and the CLI. Models are resolved by name in
:mod:`~htmp_infer.inference.registry`.
"""

import htmp_infer._x64  # noqa: F401  (float64 before any JAX array)
