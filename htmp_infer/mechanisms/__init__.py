"""The pieces every mechanism model is built of, and the models' protocol.

This subpackage owns the bulk log-likelihoods of the mechanisms, one per spike count
(:mod:`~htmp_infer.mechanisms.bulk`), the spike component shared by all of them and
its adaptive cap (:mod:`~htmp_infer.mechanisms.spikes`), and the typed protocol that
each NumPyro program in :mod:`htmp_infer.models` follows
(:mod:`~htmp_infer.mechanisms.protocol`). The models import it; it never imports them.
"""

import htmp_infer._x64  # noqa: F401  (float64 before any JAX array)
