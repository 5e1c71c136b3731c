"""Tests for bsnn_lightning.readouts: mean / LTS / per-step readouts and their registry."""

import doctest

import pytest
import torch

from bsnn_lightning import readouts
from bsnn_lightning.readouts import (
    READOUTS,
    LastTimeStep,
    MeanOverTime,
    PerStep,
    get_readout,
    last_time_step,
    mean_over_time,
    per_step,
)

# T=2, N=2, C=3
OUT = torch.tensor(
    [
        [[1.0, 2.0, 3.0], [0.0, -1.0, 4.0]],
        [[3.0, 0.0, -1.0], [2.0, 1.0, 0.0]],
    ]
)


def test_mean_over_time_by_hand():
    expected = torch.tensor([[2.0, 1.0, 1.0], [1.0, 0.0, 2.0]])
    assert torch.equal(mean_over_time(OUT), expected)


def test_last_time_step_by_hand():
    assert torch.equal(last_time_step(OUT), torch.tensor([[3.0, 0.0, -1.0], [2.0, 1.0, 0.0]]))


def test_last_time_step_ignores_earlier_steps_and_their_gradient():
    out = OUT.clone().requires_grad_(True)
    changed = OUT.clone()
    changed[0] = 100.0
    assert torch.equal(last_time_step(out), last_time_step(changed))
    last_time_step(out).sum().backward()
    assert torch.equal(out.grad[0], torch.zeros(2, 3))
    assert torch.equal(out.grad[1], torch.ones(2, 3))


def test_per_step_is_identity():
    assert per_step(OUT) is OUT


def test_single_time_step():
    one = OUT[:1]
    assert torch.equal(mean_over_time(one), one[0])
    assert torch.equal(last_time_step(one), one[0])


@pytest.mark.parametrize(
    ("module", "fn"),
    [(MeanOverTime(), mean_over_time), (LastTimeStep(), last_time_step), (PerStep(), per_step)],
)
def test_modules_equal_functions(module, fn):
    assert torch.equal(module(OUT), fn(OUT))


def test_registry():
    assert isinstance(get_readout("mean"), MeanOverTime)
    assert isinstance(get_readout("lts"), LastTimeStep)
    assert isinstance(get_readout("per_step"), PerStep)
    for name, cls in READOUTS.items():
        assert cls.name == name


def test_registry_unknown_name_lists_known():
    with pytest.raises(ValueError, match=r"unknown readout 'rate'; known readouts: 'mean', 'lts', 'per_step'"):
        get_readout("rate")
    with pytest.raises(TypeError, match="readout name as a str"):
        get_readout(None)


@pytest.mark.parametrize("fn", [mean_over_time, last_time_step, per_step])
@pytest.mark.parametrize(
    ("bad", "error", "message"),
    [
        (torch.zeros(32, 10), ValueError, r"expected out_seq of shape \[T, N, C\], got \[32, 10\]"),
        (torch.zeros(2, 3, 4, 5), ValueError, r"expected out_seq of shape \[T, N, C\], got \[2, 3, 4, 5\]"),
        (torch.zeros(0, 3, 4), ValueError, r"at least one time step \(T >= 1\), got shape \[0, 3, 4\]"),
        (torch.zeros(2, 3, 0), ValueError, r"at least one class \(C >= 1\), got shape \[2, 3, 0\]"),
        (torch.zeros(2, 3, 4, dtype=torch.long), TypeError, r"floating-point out_seq, got dtype torch.int64"),
        ([[[1.0]]], TypeError, r"torch.Tensor of shape \[T, N, C\], got list"),
    ],
)
def test_bad_inputs_raise(fn, bad, error, message):
    with pytest.raises(error, match=message):
        fn(bad)


def test_doctests():
    result = doctest.testmod(readouts, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
