"""Whole networks: checkpoints, their weight matrices, the eigen stage and the scan.

This subpackage owns the path from a checkpoint to per-layer readings: lazy readers of
safetensors, PyTorch and NumPy checkpoints (:mod:`~htmp_infer.networks.weights`), the
choice of weight matrices and their kinds (:mod:`~htmp_infer.networks.layers`), the
eigen stage and its cache (:mod:`~htmp_infer.networks.eigen`), spectra bundles
(:mod:`~htmp_infer.networks.bundle`), and the resumable scan
(:mod:`~htmp_infer.networks.scan`) with its output folder, signals and worker pool.
"""
