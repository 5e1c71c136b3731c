"""Tests for bsnn_lightning.metrics: per-time-step accuracy, functional and accumulated."""

import doctest

import pytest
import torch

from bsnn_lightning import metrics
from bsnn_lightning.metrics import PerStepAccuracy, per_step_accuracy
from bsnn_lightning.readouts import last_time_step, mean_over_time

# T=3, N=2, C=3. Predictions worked out by hand below.
OUT_A = torch.tensor(
    [
        [[5.0, 0.0, 0.0], [0.0, 0.0, 1.0]],  # instant argmax: 0, 2
        [[0.0, 6.0, 0.0], [0.0, 3.0, 0.0]],  # instant argmax: 1, 1
        [[0.0, 7.0, 0.0], [4.0, 0.0, 0.0]],  # instant argmax: 1, 0
    ]
)
TARGET_A = torch.tensor([1, 2])
# cumulative sums: sample 0: [5,0,0] [5,6,0] [5,13,0] -> 0, 1, 1
#                  sample 1: [0,0,1] [0,3,1] [4,3,1]  -> 2, 1, 0
INSTANT_A = [0.5, 0.5, 0.5]  # correct: (0+1)/2, (1+0)/2, (1+0)/2
CUMULATIVE_A = [0.5, 0.5, 0.5]  # correct: (0+1)/2, (1+0)/2, (1+0)/2

OUT_B = torch.tensor(
    [
        [[0.0, 0.0, 2.0]],  # instant 2
        [[3.0, 0.0, 0.0]],  # instant 0
        [[3.0, 0.0, 0.0]],  # instant 0
    ]
)  # cumulative sums: [0,0,2] [3,0,2] [6,0,2] -> 2, 0, 0
TARGET_B = torch.tensor([2])


def test_instant_by_hand():
    assert per_step_accuracy(OUT_A, TARGET_A).tolist() == INSTANT_A
    assert per_step_accuracy(OUT_B, TARGET_B).tolist() == [1.0, 0.0, 0.0]


def test_cumulative_by_hand():
    assert per_step_accuracy(OUT_A, TARGET_A, mode="cumulative").tolist() == CUMULATIVE_A
    assert per_step_accuracy(OUT_B, TARGET_B, mode="cumulative").tolist() == [1.0, 0.0, 0.0]


def test_instant_and_cumulative_differ():
    out = torch.tensor([[[9.0, 0.0]], [[0.0, 1.0]]])  # t=1: instant -> 1, mean (4.5, 0.5) -> 0
    target = torch.tensor([1])
    assert per_step_accuracy(out, target).tolist() == [0.0, 1.0]
    assert per_step_accuracy(out, target, mode="cumulative").tolist() == [0.0, 0.0]


def test_last_steps_match_readouts():
    torch.manual_seed(0)
    out = torch.randn(5, 64, 10)
    target = torch.randint(0, 10, (64,))
    lts_acc = (last_time_step(out).argmax(1) == target).float().mean()
    rate_acc = (mean_over_time(out).argmax(1) == target).float().mean()
    assert per_step_accuracy(out, target)[-1] == lts_acc
    assert per_step_accuracy(out, target, mode="cumulative")[-1] == rate_acc


def test_integer_spike_counts_accepted():
    counts = torch.tensor([[[0, 1]], [[2, 1]]])
    assert per_step_accuracy(counts, torch.tensor([0]), mode="cumulative").tolist() == [0.0, 1.0]


@pytest.mark.parametrize("mode", ["instant", "cumulative"])
def test_metric_two_batches_equals_concatenation(mode):
    metric = PerStepAccuracy(mode=mode)
    metric.update(OUT_A, TARGET_A)
    metric.update(OUT_B, TARGET_B)
    expected = per_step_accuracy(torch.cat([OUT_A, OUT_B], dim=1), torch.cat([TARGET_A, TARGET_B]), mode=mode)
    assert torch.equal(metric.compute(), expected)


def test_metric_by_hand_values():
    metric = PerStepAccuracy()
    metric.update(OUT_A, TARGET_A)
    metric.update(OUT_B, TARGET_B)
    # correct counts: [1 + 1, 1 + 0, 1 + 0] over 3 samples
    assert metric.compute().tolist() == pytest.approx([2 / 3, 1 / 3, 1 / 3])


def test_metric_forward_returns_batch_value_and_accumulates():
    metric = PerStepAccuracy()
    assert metric(OUT_A, TARGET_A).tolist() == INSTANT_A
    assert metric(OUT_B, TARGET_B).tolist() == [1.0, 0.0, 0.0]
    assert metric.compute().tolist() == pytest.approx([2 / 3, 1 / 3, 1 / 3])
    with pytest.raises(ValueError, match="T = 3 time steps"):
        metric(OUT_A[:1], TARGET_A)


def test_metric_fixes_number_of_steps():
    metric = PerStepAccuracy()
    metric.update(OUT_A, TARGET_A)
    with pytest.raises(
        ValueError, match=r"expected out_seq with T = 3 time steps \(fixed by the first update\), got T = 2"
    ):
        metric.update(OUT_A[:2], TARGET_A)
    metric.reset()
    metric.update(OUT_A[:2], TARGET_A)  # reset forgets T
    assert metric.compute().shape == (2,)


def test_metric_num_steps_given():
    metric = PerStepAccuracy(num_steps=3)
    assert metric.correct.shape == (3,)
    with pytest.raises(ValueError, match=r"\(fixed by num_steps\), got T = 2"):
        metric.update(OUT_A[:2], TARGET_A)
    metric.update(OUT_A, TARGET_A)
    assert metric.compute().tolist() == INSTANT_A


def test_metric_sum_reduction_across_ranks():
    """Simulate a 2-rank all_gather: compute() on synced states sums both ranks' counts."""
    rank1 = PerStepAccuracy()
    rank1.update(OUT_B, TARGET_B)
    peer = {rank1.correct.ndim: rank1.correct, rank1.total.ndim: rank1.total}

    def fake_gather(tensor, group=None):
        return [tensor, peer[tensor.ndim]]

    rank0 = PerStepAccuracy(dist_sync_fn=fake_gather, distributed_available_fn=lambda: True)
    rank0.update(OUT_A, TARGET_A)
    expected = per_step_accuracy(torch.cat([OUT_A, OUT_B], dim=1), torch.cat([TARGET_A, TARGET_B]))
    assert torch.equal(rank0.compute(), expected)
    assert rank0.correct.tolist() == [1, 1, 1]  # local state restored (unsynced) after compute
    assert rank0.total.item() == 2


def test_metric_merge_state():
    a, b = PerStepAccuracy(), PerStepAccuracy()
    a.update(OUT_A, TARGET_A)
    b.update(OUT_B, TARGET_B)
    a.merge_state(b)
    assert a.compute().tolist() == pytest.approx([2 / 3, 1 / 3, 1 / 3])
    with pytest.raises(ValueError, match="T = 3 time steps"):
        a.merge_state({"correct": torch.zeros(2, dtype=torch.long), "total": torch.tensor(1)})
    with pytest.raises(ValueError, match="cannot merge mode 'cumulative'"):
        a.merge_state(PerStepAccuracy(mode="cumulative"))


def test_metric_before_update_is_empty():
    with pytest.warns(UserWarning):
        assert PerStepAccuracy().compute().shape == (0,)


def test_metric_bad_constructor_arguments():
    with pytest.raises(ValueError, match=r"unknown mode 'mean'; expected one of: 'instant', 'cumulative'"):
        PerStepAccuracy(mode="mean")
    with pytest.raises(ValueError, match="num_steps to be None or an int >= 1, got 0"):
        PerStepAccuracy(num_steps=0)


BAD_INPUTS = [
    (torch.zeros(32, 10), TARGET_A, ValueError, r"expected out_seq of shape \[T, N, C\], got \[32, 10\]"),
    (torch.zeros(0, 2, 3), TARGET_A, ValueError, r"at least one time step \(T >= 1\)"),
    (OUT_A, TARGET_B, ValueError, r"expected target of shape \[N\] = \[2\] .* got \[1\]"),
    (OUT_A, TARGET_A.float(), TypeError, r"integer target .* got dtype torch.float32"),
    (OUT_A, torch.tensor([1, 3]), ValueError, r"in \[0, C\) = \[0, 3\), got values in \[1, 3\]"),
    (OUT_A.bool(), TARGET_A, TypeError, r"real-valued \(non-bool\) out_seq"),
    (torch.full((3, 2, 3), float("nan")), TARGET_A, ValueError, r"finite out_seq"),
]


@pytest.mark.parametrize(("out", "tgt", "error", "message"), BAD_INPUTS)
def test_bad_inputs_raise(out, tgt, error, message):
    with pytest.raises(error, match=message):
        per_step_accuracy(out, tgt)
    with pytest.raises(error, match=message):
        PerStepAccuracy().update(out, tgt)


def test_functional_bad_mode_and_empty_batch():
    with pytest.raises(ValueError, match="unknown mode 'last'"):
        per_step_accuracy(OUT_A, TARGET_A, mode="last")
    with pytest.raises(ValueError, match=r"non-empty batch \(N >= 1\)"):
        per_step_accuracy(torch.zeros(3, 0, 3), torch.zeros(0, dtype=torch.long))


def test_doctests():
    result = doctest.testmod(metrics, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
