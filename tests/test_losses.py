"""Tests for bsnn_lightning.losses against cross entropies worked out with plain math."""

import doctest
import math

import pytest
import torch

from bsnn_lightning import losses
from bsnn_lightning.losses import (
    LOSSES,
    LabelSmoothedTETLoss,
    LTSCrossEntropy,
    RateCrossEntropy,
    TETLoss,
    get_loss,
    label_smoothed_tet,
    lts_cross_entropy,
    rate_cross_entropy,
    tet,
)
from bsnn_lightning.readouts import READOUTS

# T=2, N=2, C=3, as nested lists so the references below use no torch.
OUT_LIST = [
    [[1.0, 2.0, 3.0], [0.0, -1.0, 4.0]],
    [[3.0, 0.0, -1.0], [2.0, 1.0, 0.0]],
]
TARGET_LIST = [0, 2]


def out_seq(requires_grad=False):
    return torch.tensor(OUT_LIST, dtype=torch.float64, requires_grad=requires_grad)


def target():
    return torch.tensor(TARGET_LIST)


# ----------------------------------------------------------------- plain-math references


def log_softmax(row):
    m = max(row)
    lse = m + math.log(sum(math.exp(v - m) for v in row))
    return [v - lse for v in row]


def soft_ce(row, dist):
    """-sum_c dist[c] * log_softmax(row)[c]."""
    return -sum(p * lp for p, lp in zip(dist, log_softmax(row)))


def hard_ce(row, y):
    return -log_softmax(row)[y]


def smoothed(y, classes, eps):
    return [(1 - eps) * (c == y) + eps / classes for c in range(classes)]


def batch_mean(values):
    return sum(values) / len(values)


def ref_per_step_ce(out, ys, eps=0.0):
    classes = len(out[0][0])
    return batch_mean(
        [batch_mean([soft_ce(row, smoothed(y, classes, eps)) for row, y in zip(step, ys)]) for step in out]
    )


def ref_mse(out, phi):
    values = [v for step in out for row in step for v in row]
    return batch_mean([(v - phi) ** 2 for v in values])


# ----------------------------------------------------------------- worked numbers


def test_worked_cross_entropy_numbers():
    # Row [1, 2, 3] with target 0: log(e + e^2 + e^3) - 1 = 3 + log(1 + e^-1 + e^-2) - 1.
    assert hard_ce([1.0, 2.0, 3.0], 0) == pytest.approx(2.40760596, abs=1e-8)
    # Mean over time of sample 0 is [2, 1, 1]: CE = log(e^2 + 2e) - 2.
    assert hard_ce([2.0, 1.0, 1.0], 0) == pytest.approx(math.log(math.e**2 + 2 * math.e) - 2)


def test_rate_cross_entropy_by_hand():
    mean_rows = [[2.0, 1.0, 1.0], [1.0, 0.0, 2.0]]
    expected = batch_mean([hard_ce(r, y) for r, y in zip(mean_rows, TARGET_LIST)])
    assert rate_cross_entropy(out_seq(), target()).item() == pytest.approx(expected, abs=1e-12)


def test_lts_cross_entropy_by_hand():
    expected = batch_mean([hard_ce(r, y) for r, y in zip(OUT_LIST[-1], TARGET_LIST)])
    assert lts_cross_entropy(out_seq(), target()).item() == pytest.approx(expected, abs=1e-12)


def test_lts_uses_only_last_step():
    out = out_seq(requires_grad=True)
    changed = out_seq()
    changed[0] = torch.tensor([[50.0, -7.0, 0.5], [-3.0, 9.0, 1.0]], dtype=torch.float64)
    loss = lts_cross_entropy(out, target())
    assert loss.item() == lts_cross_entropy(changed, target()).item()
    loss.backward()
    assert torch.equal(out.grad[0], torch.zeros(2, 3, dtype=torch.float64))
    assert out.grad[-1].abs().sum() > 0


def test_tet_with_lam_zero_is_mean_per_step_ce():
    assert tet(out_seq(), target(), lam=0.0).item() == pytest.approx(ref_per_step_ce(OUT_LIST, TARGET_LIST), abs=1e-12)


@pytest.mark.parametrize(("lam", "phi"), [(1e-3, 1.0), (0.25, -0.5), (1.0, 2.0)])
def test_tet_mse_term_by_hand(lam, phi):
    expected = (1 - lam) * ref_per_step_ce(OUT_LIST, TARGET_LIST) + lam * ref_mse(OUT_LIST, phi)
    assert tet(out_seq(), target(), lam=lam, phi=phi).item() == pytest.approx(expected, abs=1e-12)


def test_mse_term_alone_by_hand():
    # lam = 1 leaves only the MSE: values 1,2,3,0,-1,4,3,0,-1,2,1,0 against phi = 1.
    squares = [0, 1, 4, 1, 4, 9, 4, 1, 4, 1, 0, 1]
    assert tet(out_seq(), target(), lam=1.0, phi=1.0).item() == pytest.approx(sum(squares) / 12)


def test_tet_default_arguments():
    expected = (1 - 1e-3) * ref_per_step_ce(OUT_LIST, TARGET_LIST) + 1e-3 * ref_mse(OUT_LIST, 1.0)
    assert tet(out_seq(), target()).item() == pytest.approx(expected, abs=1e-12)


def test_label_smoothed_tet_eps_zero_lam_zero_is_mean_per_step_ce():
    value = label_smoothed_tet(out_seq(), target(), epsilon=0.0, lam=0.0).item()
    assert value == pytest.approx(ref_per_step_ce(OUT_LIST, TARGET_LIST), abs=1e-12)


@pytest.mark.parametrize("eps", [0.01, 0.1, 0.5])
def test_label_smoothing_matches_hand_built_targets(eps):
    # y~ = (1 - eps) onehot(y) + eps / K with K = 3, written out for sample 0 (y = 0).
    assert smoothed(0, 3, eps) == pytest.approx([1 - eps + eps / 3, eps / 3, eps / 3])
    expected = ref_per_step_ce(OUT_LIST, TARGET_LIST, eps=eps)
    assert label_smoothed_tet(out_seq(), target(), epsilon=eps).item() == pytest.approx(expected, abs=1e-12)


def test_label_smoothed_tet_default_is_eps_001_without_mse():
    expected = ref_per_step_ce(OUT_LIST, TARGET_LIST, eps=0.01)
    assert label_smoothed_tet(out_seq(), target()).item() == pytest.approx(expected, abs=1e-12)


def test_label_smoothed_tet_with_mse_combines_as_tet():
    eps, lam, phi = 0.1, 0.2, 0.5
    expected = (1 - lam) * ref_per_step_ce(OUT_LIST, TARGET_LIST, eps=eps) + lam * ref_mse(OUT_LIST, phi)
    value = label_smoothed_tet(out_seq(), target(), epsilon=eps, lam=lam, phi=phi).item()
    assert value == pytest.approx(expected, abs=1e-12)


def test_float32_and_int32_target():
    value = tet(out_seq().float(), target().int(), lam=0.0).item()
    assert value == pytest.approx(ref_per_step_ce(OUT_LIST, TARGET_LIST), rel=1e-6)


FUNCTIONS = [
    rate_cross_entropy,
    lts_cross_entropy,
    tet,
    lambda o, t: tet(o, t, lam=0.3, phi=-1.0),
    label_smoothed_tet,
    lambda o, t: label_smoothed_tet(o, t, epsilon=0.2, lam=0.1, phi=2.0),
]


@pytest.mark.parametrize("fn", FUNCTIONS)
def test_gradients_flow_and_are_finite(fn):
    out = torch.randn(4, 5, 6, requires_grad=True)
    loss = fn(out, torch.tensor([0, 5, 2, 3, 1]))
    assert loss.ndim == 0
    loss.backward()
    assert out.grad is not None
    assert torch.isfinite(out.grad).all()
    assert out.grad.abs().sum() > 0


@pytest.mark.parametrize(
    ("module", "fn"),
    [
        (RateCrossEntropy(), rate_cross_entropy),
        (LTSCrossEntropy(), lts_cross_entropy),
        (TETLoss(), tet),
        (TETLoss(lam=0.3, phi=-1.0), lambda o, t: tet(o, t, lam=0.3, phi=-1.0)),
        (LabelSmoothedTETLoss(), label_smoothed_tet),
        (
            LabelSmoothedTETLoss(epsilon=0.2, lam=0.1, phi=2.0),
            lambda o, t: label_smoothed_tet(o, t, epsilon=0.2, lam=0.1, phi=2.0),
        ),
    ],
)
def test_modules_equal_functions(module, fn):
    assert torch.equal(module(out_seq(), target()), fn(out_seq(), target()))


def test_readout_attribute():
    assert RateCrossEntropy.readout == "mean"
    assert LTSCrossEntropy.readout == "lts"
    assert TETLoss.readout == "mean"
    assert LabelSmoothedTETLoss.readout == "mean"
    for cls in LOSSES.values():
        assert cls.readout in READOUTS


def test_registry():
    assert isinstance(get_loss("ce"), RateCrossEntropy)
    assert isinstance(get_loss("rate_ce"), RateCrossEntropy)
    assert isinstance(get_loss("lts"), LTSCrossEntropy)
    loss = get_loss("tet", lam=0.05, phi=0.5)
    assert isinstance(loss, TETLoss) and (loss.lam, loss.phi) == (0.05, 0.5)
    loss = get_loss("tets", epsilon=0.1)
    assert isinstance(loss, LabelSmoothedTETLoss) and loss.epsilon == 0.1
    assert isinstance(get_loss("label_smoothed_tet"), LabelSmoothedTETLoss)


def test_registry_errors():
    with pytest.raises(ValueError, match=r"unknown loss 'mse'; known losses: 'ce', 'rate_ce', 'lts', 'tet'"):
        get_loss("mse")
    with pytest.raises(TypeError, match=r"loss 'ce' \(RateCrossEntropy\) accepts validate_args;"):
        get_loss("ce", lam=0.1)
    with pytest.raises(TypeError, match=r"loss 'tet' \(TETLoss\) accepts lam, phi, validate_args;"):
        get_loss("tet", epsilon=0.1)
    with pytest.raises(ValueError, match=r"expected lam in \[0, 1\], got 2"):
        get_loss("tet", lam=2)


OK_OUT = torch.zeros(2, 4, 3)
OK_TARGET = torch.tensor([0, 1, 2, 0])


def _nan_out():
    out = torch.zeros(2, 4, 3)
    out[1, 2, 0] = float("nan")
    out[0, 0, 1] = float("inf")
    return out


BAD_INPUTS = [
    (torch.zeros(32, 10), OK_TARGET, ValueError, r"expected out_seq of shape \[T, N, C\], got \[32, 10\]"),
    (torch.zeros(0, 4, 3), OK_TARGET, ValueError, r"at least one time step \(T >= 1\), got shape \[0, 4, 3\]"),
    (torch.zeros(2, 0, 3), torch.zeros(0, dtype=torch.long), ValueError, r"non-empty batch \(N >= 1\)"),
    (OK_OUT, OK_TARGET[:3], ValueError, r"expected target of shape \[N\] = \[4\] .* got \[3\]"),
    (OK_OUT, OK_TARGET.view(4, 1), ValueError, r"expected target of shape \[N\] = \[4\] .* got \[4, 1\]"),
    (OK_OUT, OK_TARGET.float(), TypeError, r"integer target .* got dtype torch.float32"),
    (OK_OUT, OK_TARGET.bool(), TypeError, r"integer target .* got dtype torch.bool"),
    (OK_OUT, torch.tensor([0, 1, 3, 0]), ValueError, r"in \[0, C\) = \[0, 3\), got values in \[0, 3\]"),
    (OK_OUT, torch.tensor([0, -1, 2, 0]), ValueError, r"in \[0, C\) = \[0, 3\), got values in \[-1, 2\]"),
    (_nan_out(), OK_TARGET, ValueError, r"finite out_seq, got 2 non-finite value\(s\)"),
    (OK_OUT.long(), OK_TARGET, TypeError, r"floating-point out_seq, got dtype torch.int64"),
    (OK_OUT, [0, 1, 2, 0], TypeError, r"target to be a torch.Tensor"),
]


@pytest.mark.parametrize("fn", FUNCTIONS[:1] + FUNCTIONS[1:3] + FUNCTIONS[4:5])
@pytest.mark.parametrize(("out", "tgt", "error", "message"), BAD_INPUTS)
def test_bad_inputs_raise(fn, out, tgt, error, message):
    with pytest.raises(error, match=message):
        fn(out, tgt)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"epsilon": 1.0}, ValueError, r"expected epsilon in \[0, 1\), got 1.0"),
        ({"epsilon": -0.1}, ValueError, r"expected epsilon in \[0, 1\), got -0.1"),
        ({"epsilon": float("nan")}, ValueError, r"expected epsilon in \[0, 1\), got nan"),
        ({"lam": 1.5}, ValueError, r"expected lam in \[0, 1\], got 1.5"),
        ({"lam": -1e-3}, ValueError, r"expected lam in \[0, 1\], got -0.001"),
        ({"phi": float("inf")}, ValueError, r"expected a finite phi, got inf"),
        ({"lam": "0.1"}, TypeError, r"expected lam to be a real number, got str"),
        ({"epsilon": torch.tensor(0.1)}, TypeError, r"expected epsilon to be a real number, got Tensor"),
    ],
)
def test_bad_hyperparameters_raise(kwargs, error, message):
    with pytest.raises(error, match=message):
        label_smoothed_tet(OK_OUT, OK_TARGET, **kwargs)
    with pytest.raises(error, match=message):
        LabelSmoothedTETLoss(**kwargs)
    if "epsilon" not in kwargs:
        with pytest.raises(error, match=message):
            tet(OK_OUT, OK_TARGET, **kwargs)
        with pytest.raises(error, match=message):
            TETLoss(**kwargs)


def test_doctests():
    result = doctest.testmod(losses, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
