"""Validation against simulation and against peers.

This subpackage owns simulation-based calibration and mechanism recovery of the
registered models (:mod:`~htmp_infer.validation.calibration`) and the peer estimators
that other tools compute, re-implemented here (:mod:`~htmp_infer.validation.peers`:
WeightWatcher's Hill + KS power-law α, the paper's moment estimator, ...).
"""
