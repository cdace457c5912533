"""One mechanism each: the sampler options, the spike-cap loop, the error policy.

Fast: nothing here fits a model.
"""

from __future__ import annotations

import dataclasses
import typing

import numpy as np
import pytest

import htmp_infer as hi
from htmp_infer.cli._args import SAMPLER_FIELDS, sampler_options
from htmp_infer.cli.app import _parser
from htmp_infer.errors import ArgumentError, HTMPError
from htmp_infer.inference._grid_rule import HigherNode
from htmp_infer.inference.comparison import weights_of
from htmp_infer.inference.options import SamplerArgs, SamplerOptions
from htmp_infer.limit import htmp_tail_exponents, kappa_to_delta
from htmp_infer.mechanisms.spikes import CAP_MASS, adapt_cap, cap_for, spike_limit
from htmp_infer.networks.scan import ScanArgumentError, ScanOptions
from htmp_infer.validation.peers import kappa_to_alpha


def test_one_default_method_everywhere() -> None:
    assert SamplerOptions().method == ScanOptions().method == "grid"
    for command in (["fit", "x", "--out", "o.nc"], ["compare", "x", "--out", "o.nc"]):
        args = _parser().parse_args(command)
        assert sampler_options(args, SamplerOptions) == SamplerOptions()
    args = _parser().parse_args(["scan", "x", "--out", "o"])
    assert sampler_options(args, ScanOptions) == ScanOptions()


def test_keyword_arguments_are_the_fields() -> None:
    fields = [f.name for f in dataclasses.fields(SamplerOptions)]
    assert list(typing.get_type_hints(SamplerArgs)) == fields == list(SAMPLER_FIELDS)


def test_the_three_subcommands_take_the_same_flags() -> None:
    argv = "--method nuts --chains 3 --draws 7 --warmup 5 --seed 9 --ppc-draws 0"
    want = SamplerOptions("nuts", 3, 7, 5, 9, 0)
    for command in (["fit", "x", "--out", "o.nc"], ["compare", "x", "--out", "o.nc"]):
        args = _parser().parse_args([*command, *argv.split()])
        assert sampler_options(args, SamplerOptions) == want
    args = _parser().parse_args(["scan", "x", "--out", "o", *argv.split()])
    scan = sampler_options(args, ScanOptions, models=("htmp",))
    assert SamplerOptions(**{k: getattr(scan, k) for k in SAMPLER_FIELDS}) == want


@pytest.mark.parametrize(
    ("flag", "match"),
    [
        ("--ppc-draws 20000", "--ppc-draws must be <= 10000"),
        ("--method hmc", "--method must be"),
        ("--chains 2000", "--chains must be <= 1024"),
    ],
)
@pytest.mark.parametrize("cls", [SamplerOptions, ScanOptions])
def test_flags_out_of_range_are_named(cls: type, flag: str, match: str) -> None:
    command = ["scan", "x", "--out", "o"] if cls is ScanOptions else ["fit", "x"]
    args = _parser().parse_args([*command, "--out", "o.nc", *flag.split()])
    with pytest.raises(ArgumentError, match=match) as exc:
        sampler_options(args, cls)
    assert isinstance(exc.value, ValueError)


def test_options_are_checked_once_and_normalised() -> None:
    opts = SamplerOptions(chains=np.int64(2), seed=np.uint32(7))
    assert type(opts.chains) is int and type(opts.seed) is int
    assert opts.replace(draws=10).draws == 10
    with pytest.raises(ArgumentError, match="draws"):
        opts.replace(draws=0)
    with pytest.raises(ScanArgumentError, match="warmup"):
        ScanOptions(warmup=-1)
    with pytest.raises(ArgumentError, match="options must be a SamplerOptions"):
        hi.fit(hi.Spectrum.from_eigenvalues(np.arange(1.0, 9.0), gamma=0.5), options=4)  # type: ignore[arg-type]


def test_scan_key_is_stable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Saved layers are reused only under the same key: it depends on the
    options' values (not their Python types) and on the results version, so a
    new version or another model list redoes the layers. (The historical key of
    the version-4 defaults cannot be rebuilt: one of their models was renamed.)"""
    import htmp_infer.networks.scan as scan_module

    key = ScanOptions().key()
    assert key == ScanOptions().key() and len(key) == 16
    monkeypatch.setattr(scan_module, "RESULTS_VERSION", 4)
    assert ScanOptions().key() != key
    monkeypatch.undo()
    assert ScanOptions(models=("mp", "htmp")).key() != key
    same = ScanOptions(models=["mp", "htmp"], seed=np.int64(1))  # type: ignore[arg-type]
    assert same.key() == ScanOptions(models=("mp", "htmp"), seed=1).key()
    assert same.key() != ScanOptions(models=("mp", "htmp"), seed=2).key()


def _profile(mass_above: dict[int, float], n: int) -> np.ndarray:
    """p(k), k = 0..n//4, with ``mass_above[cap]`` above each cap (a step)."""
    p = np.zeros(spike_limit(n) + 1)
    p[0] = 1.0
    for cap, mass in mass_above.items():
        p[cap + 1] += mass
        p[0] -= mass
    return p


def test_adapt_cap_raises_while_the_profile_binds() -> None:
    n = 400  # caps 8, 16, 32, ..., limit 100
    seen: list[int] = []

    def run(cap: int) -> np.ndarray:
        seen.append(cap)
        return _profile({20: 2 * CAP_MASS}, n)  # mass on 21 spikes

    assert adapt_cap(run, 8, n) == 32
    assert seen == [8, 32]  # cap_for jumps over 16, which would still bind
    assert cap_for(_profile({20: 2 * CAP_MASS}, n), 8, n) == 32


def test_adapt_cap_stops_at_the_limit_at_none_and_at_a_fixed_cap() -> None:
    n = 100
    seen: list[int] = []

    def binding(cap: int) -> np.ndarray:
        seen.append(cap)
        return _profile({spike_limit(n) - 1: 0.5}, n)

    assert adapt_cap(binding, 5, n) == spike_limit(n) == seen[-1]
    seen.clear()
    assert adapt_cap(binding, 5, n, limit=5) == 5 and seen == [5]
    assert adapt_cap(lambda cap: None, 5, n) == 5


def test_one_kappa_to_exponent_function() -> None:
    kappa, gamma = np.array([0.5, 2.0, 40.0]), 0.3
    delta = kappa_to_delta(kappa, gamma)
    np.testing.assert_array_equal(delta, kappa * (1.0 - gamma) / (2.0 * gamma))
    for k, d in zip(kappa, delta, strict=True):
        assert kappa_to_alpha(float(k), gamma) == 1.0 + d
        assert htmp_tail_exponents(gamma, float(k)).alpha == 1.0 + d
    with pytest.raises(ArgumentError):
        kappa_to_alpha(-1.0, gamma)


def test_one_weight_function() -> None:
    w = weights_of([0.0, np.log(3.0), -np.inf])
    np.testing.assert_allclose(w, [0.25, 0.75, 0.0])


def test_control_flow_is_not_an_error() -> None:
    assert not issubclass(HigherNode, HTMPError)
    assert issubclass(ArgumentError, HTMPError) and issubclass(
        ArgumentError, ValueError
    )
