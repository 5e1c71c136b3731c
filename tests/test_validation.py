"""The shared argument checks (bsnn_lightning.validation) and the ``validate_args`` switch of the losses, readouts
and metrics: skipping the checks changes no result on good inputs, and the value checks never read the device."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from bsnn_lightning import losses, metrics, readouts, validation
from bsnn_lightning.engine import checks

FUNCTIONS = [
    losses.rate_cross_entropy, losses.lts_cross_entropy, losses.rate_mse, losses.tet, losses.label_smoothed_tet,
    metrics.per_step_accuracy,
]  # fmt: skip
READOUT_FUNCTIONS = [readouts.mean_over_time, readouts.last_time_step, readouts.per_step]


@st.composite
def outputs_and_targets(draw):
    steps, batch, classes = draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 5))
    seed = draw(st.integers(0, 2**16))
    generator = torch.Generator().manual_seed(seed)
    out_seq = torch.randn(steps, batch, classes, generator=generator)
    if draw(st.booleans()):
        target = torch.randint(0, classes, (batch,), generator=generator, dtype=draw(st.sampled_from([torch.int64, torch.int32])))
    else:
        target = torch.softmax(torch.randn(batch, classes, generator=generator), dim=1)
    return out_seq, target


@settings(max_examples=30, deadline=None)
@given(inputs=outputs_and_targets())
def test_skipping_the_checks_changes_no_result_on_good_inputs(inputs):
    out_seq, target = inputs
    for function in FUNCTIONS:
        if function is metrics.per_step_accuracy and target.is_floating_point():
            continue  # accuracy scores class indices
        checked = function(out_seq, target)
        assert torch.equal(function(out_seq, target, validate_args=False), checked), function.__name__
    for function in READOUT_FUNCTIONS:
        assert torch.equal(function(out_seq, validate_args=False), function(out_seq))


@pytest.mark.parametrize("module", [
    losses.RateCrossEntropy, losses.LTSCrossEntropy, losses.RateMSE, losses.TETLoss, losses.LabelSmoothedTETLoss,
])  # fmt: skip
def test_a_loss_module_without_checks_lets_a_nan_through_and_says_so_in_its_repr(module):
    bad = torch.full((2, 3, 4), math.nan)
    target = torch.tensor([0, 1, 3])
    with pytest.raises(ValueError, match=r"expected a finite out_seq, got 24 non-finite value\(s\)"):
        module()(bad, target)
    unchecked = module(validate_args=False)
    assert torch.isnan(unchecked(bad, target)) and "validate_args=False" in repr(unchecked)
    assert "validate_args" not in repr(module())


def test_readouts_and_the_metric_without_checks():
    with pytest.raises(ValueError, match=r"expected out_seq of shape \[T, N, C\], got \[2, 3\]"):
        readouts.get_readout("mean")(torch.zeros(2, 3))
    assert readouts.get_readout("mean", validate_args=False)(torch.zeros(2, 3)).shape == (3,)  # unchecked: as torch
    metric = metrics.PerStepAccuracy(validate_args=False)
    metric.update(torch.tensor([[[0.0, 1.0]], [[1.0, 0.0]]]), torch.tensor([1]))
    assert metric.compute().tolist() == [1.0, 0.0]
    with pytest.raises(ValueError, match="unknown mode 'last'"):  # a host-side string check stays on
        metrics.per_step_accuracy(torch.zeros(1, 1, 2), torch.tensor([0]), mode="last", validate_args=False)


def test_the_value_checks_stay_on_the_device():
    """On a device other than the CPU the value checks only raise a deferred flag: on the meta device, whose
    tensors hold no value to read, a host read would fail."""
    checks.clear()
    out_seq = torch.empty(2, 3, 4, device="meta")
    target = torch.empty(3, dtype=torch.long, device="meta")
    validation.check_values(out_seq, target)
    validation.check_inputs(out_seq, target)
    validation.check_values(out_seq, torch.empty(3, 4, device="meta"))  # soft targets
    assert checks.pending() == 1  # one flag, kept under one key
    checks.clear()


def test_the_checks_name_what_was_expected_and_what_was_given():
    out_seq = torch.zeros(3, 2, 4)
    with pytest.raises(TypeError, match="expected a floating-point out_seq, got dtype torch.int64"):
        validation.check_out_seq(out_seq.long())
    validation.check_out_seq(out_seq.long(), floating=False)
    with pytest.raises(ValueError, match=r"expected soft targets of shape \[N, C\] = \[2, 4\] .* got \[2, 3\]"):
        validation.check_target(out_seq, torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"expected soft targets with rows .* summing to 1, got row sums in \[0.0, 0.0\]"):
        validation.check_values(out_seq, torch.zeros(2, 4))
    with pytest.raises(TypeError, match="expected phi to be a real number, got str"):
        validation.check_real("phi", "1")
