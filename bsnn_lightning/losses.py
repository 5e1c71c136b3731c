"""Training objectives for time-major SNN outputs ``out_seq`` [T, N, C] and targets.

Targets are integer class indices [N], or soft targets [N, C] (floating point, each row a
probability distribution: what mixup and cutmix produce, see :mod:`bsnn_lightning.data.mixing`);
every loss here accepts both, and with one-hot soft targets gives the same value as with indices.

Each loss is a function plus an :class:`torch.nn.Module` built on it (torchmetrics style).
Every Module carries ``readout``, the name of the readout in :mod:`bsnn_lightning.readouts`
whose prediction matches what the loss trains, so a classifier can predict consistently:

* :func:`rate_cross_entropy` / :class:`RateCrossEntropy` -- ``CE(mean_t O_t, y)``; readout ``"mean"``.
* :func:`lts_cross_entropy` / :class:`LTSCrossEntropy` -- ``CE(O_T, y)``; readout ``"lts"``.
* :func:`tet` / :class:`TETLoss` -- TET (Deng et al., ICLR 2022); readout ``"mean"``.
* :func:`label_smoothed_tet` / :class:`LabelSmoothedTETLoss` -- TET on label-smoothed targets
  (Shen et al., NeurIPS 2024); readout ``"mean"``.
* :func:`rate_mse` / :class:`RateMSE` -- ``MSE(mean_t O_t, onehot(y))`` on firing rates, the loss of
  SpikingJelly's DVS128 Gesture tutorial; readout ``"mean"``.

``CE`` is the batch-mean cross entropy. References:

* S. Deng, Y. Li, S. Zhang, S. Gu, "Temporal Efficient Training of Spiking Neural Network via
  Gradient Re-weighting", ICLR 2022 (TET).
* H. Shen, Q. Zheng, H. Wang, G. Pan, "Rethinking the Membrane Dynamics and Optimization
  Objectives of Spiking Neural Networks", NeurIPS 2024 (LTS readout, label-smoothed TET).

All inputs are validated (:mod:`bsnn_lightning.validation`) and bad ones raise; nothing is silently fixed.
The value checks (finite ``out_seq``, targets in [0, C)) raise at once on the CPU and stay on the device
elsewhere (a deferred flag, read once per logging interval), so they never sync the host. Every function
and Module takes ``validate_args`` (default True); ``validate_args=False`` skips all the checks of a call,
for a hot loop whose inputs are known good.
"""

from __future__ import annotations

import inspect
import math
from typing import Callable

import torch.nn.functional as F
from torch import Tensor, nn

from bsnn_lightning.readouts import last_time_step, mean_over_time
from bsnn_lightning.validation import check_inputs, check_real

__all__ = [
    "LOSSES",
    "LTSCrossEntropy",
    "LabelSmoothedTETLoss",
    "RateCrossEntropy",
    "RateMSE",
    "TETLoss",
    "get_loss",
    "label_smoothed_tet",
    "lts_cross_entropy",
    "rate_cross_entropy",
    "tet",
]


def rate_cross_entropy(out_seq: Tensor, target: Tensor, *, validate_args: bool = True) -> Tensor:
    """Cross entropy on the rate (mean-over-time) readout.

    ``L = (1 / N) * sum_n CE(mean_t O[t, n], y_n)``

    Args:
        out_seq: finite floating-point outputs [T, N, C], T >= 1, N >= 1.
        target: integer class indices [N] in [0, C).

    Example:
        >>> import torch
        >>> out_seq = torch.zeros(2, 1, 4)  # uniform over 4 classes
        >>> round(rate_cross_entropy(out_seq, torch.tensor([3])).item(), 4)  # log 4
        1.3863
    """
    target = _prepared(out_seq, target, validate_args)
    return F.cross_entropy(mean_over_time(out_seq, validate_args=False), target)


def lts_cross_entropy(out_seq: Tensor, target: Tensor, *, validate_args: bool = True) -> Tensor:
    """Cross entropy on the last time step only (LTS, Shen et al., NeurIPS 2024).

    ``L = (1 / N) * sum_n CE(O[T-1, n], y_n)``; steps 0 .. T-2 get exactly zero gradient.

    Example:
        >>> import torch
        >>> out_seq = torch.tensor([[[9.0, 0.0]], [[0.0, 0.0]]])  # T=2, N=1, C=2
        >>> round(lts_cross_entropy(out_seq, torch.tensor([1])).item(), 4)  # log 2; step 0 unused
        0.6931
    """
    target = _prepared(out_seq, target, validate_args)
    return F.cross_entropy(last_time_step(out_seq, validate_args=False), target)


def rate_mse(out_seq: Tensor, target: Tensor, *, validate_args: bool = True) -> Tensor:
    """Mean squared error between the rate readout and the one-hot target (SpikingJelly's DVS tutorials).

    ``L = (1 / (N C)) * sum_{n,c} (mean_t O[t, n, c] - onehot(y_n)[c])^2``; with soft targets [N, C]
    the soft target replaces ``onehot(y_n)``.

    Example:
        >>> import torch
        >>> out_seq = torch.tensor([[[1.0, 0.0]], [[0.0, 0.0]]])  # rates (0.5, 0)
        >>> rate_mse(out_seq, torch.tensor([0])).item()  # ((0.5 - 1)^2 + 0^2) / 2
        0.125
    """
    target = _prepared(out_seq, target, validate_args)
    rates = mean_over_time(out_seq, validate_args=False)
    probs = target if target.is_floating_point() else F.one_hot(target, out_seq.shape[2]).to(rates.dtype)
    return F.mse_loss(rates, probs.to(rates.dtype))


def tet(
    out_seq: Tensor, target: Tensor, lam: float = 1e-3, phi: float = 1.0, *, validate_args: bool = True
) -> Tensor:
    """Temporal Efficient Training loss (Deng et al., ICLR 2022).

    ``L = (1 - lam) * (1 / T) * sum_t CE(O_t, y) + lam * (1 / (T N C)) * sum_{t,n,c} (O[t, n, c] - phi)^2``

    The second term is the MSE between every output logit and the constant ``phi``.

    Args:
        out_seq: finite floating-point outputs [T, N, C], T >= 1, N >= 1.
        target: integer class indices [N] in [0, C).
        lam: weight of the MSE term, in [0, 1].
        phi: the constant the logits are pulled towards (finite).

    Example:
        >>> import torch
        >>> out_seq = torch.zeros(3, 2, 4)
        >>> target = torch.tensor([0, 1])
        >>> round(tet(out_seq, target, lam=0.5).item(), 4)  # 0.5 * log 4 + 0.5 * (0 - 1)^2
        1.1931
    """
    target = _prepared(out_seq, target, validate_args)
    if validate_args:
        _check_lam(lam)
        _check_phi(phi)
    return _tet_objective(out_seq, target, lam=lam, phi=phi, epsilon=0.0)


def label_smoothed_tet(
    out_seq: Tensor,
    target: Tensor,
    epsilon: float = 0.01,
    lam: float = 0.0,
    phi: float = 1.0,
    *,
    validate_args: bool = True,
) -> Tensor:
    """TET with label-smoothed targets (Shen et al., NeurIPS 2024).

    ``L = (1 - lam) * (1 / T) * sum_t CE(O_t, y~) + lam * (1 / (T N C)) * sum_{t,n,c} (O[t, n, c] - phi)^2``

    with ``y~ = (1 - epsilon) * onehot(y) + epsilon / K`` (K = C classes) and
    ``CE(O_t, y~) = -(1 / N) * sum_n sum_c y~[n, c] * log_softmax(O[t, n])[c]``.
    The paper's configs use ``epsilon = 0.01`` and drop the MSE term (``lam = 0``, the default);
    with ``lam > 0`` it is combined exactly as in :func:`tet`.

    Args:
        out_seq: finite floating-point outputs [T, N, C], T >= 1, N >= 1.
        target: integer class indices [N] in [0, C).
        epsilon: smoothing mass, in [0, 1).
        lam: weight of the MSE term, in [0, 1].
        phi: the constant of the MSE term (finite).

    Example:
        >>> import torch
        >>> out_seq = torch.tensor([[[0.0, math.log(3.0)]]])  # T=1, N=1, C=2: p = (1/4, 3/4)
        >>> y = torch.tensor([1])
        >>> round(label_smoothed_tet(out_seq, y, epsilon=0.5).item(), 4)  # -(3/4 log 3/4 + 1/4 log 1/4)
        0.5623
    """
    target = _prepared(out_seq, target, validate_args)
    if validate_args:
        _check_epsilon(epsilon)
        _check_lam(lam)
        _check_phi(phi)
    return _tet_objective(out_seq, target, lam=lam, phi=phi, epsilon=epsilon)


class _LossModule(nn.Module):
    """The Module form of a loss function: ``forward`` calls the class's ``function`` with the Module's
    :meth:`_settings` and ``validate_args``; the repr shows the settings."""

    readout: str
    function: Callable[..., Tensor]

    def __init__(self, validate_args: bool = True) -> None:
        super().__init__()
        self.validate_args = validate_args

    def _settings(self) -> dict[str, float]:
        """The function's keyword arguments besides ``validate_args`` (none by default)."""
        return {}

    def forward(self, out_seq: Tensor, target: Tensor) -> Tensor:
        return self.function(out_seq, target, **self._settings(), validate_args=self.validate_args)

    def extra_repr(self) -> str:
        shown = [f"{name}={value}" for name, value in self._settings().items()]
        return ", ".join(shown if self.validate_args else [*shown, "validate_args=False"])


class RateCrossEntropy(_LossModule):
    """Module form of :func:`rate_cross_entropy`; predicts with the ``"mean"`` readout.

    >>> import torch
    >>> round(RateCrossEntropy()(torch.zeros(2, 1, 4), torch.tensor([3])).item(), 4)  # log 4
    1.3863
    """

    readout = "mean"
    function = staticmethod(rate_cross_entropy)


class LTSCrossEntropy(_LossModule):
    """Module form of :func:`lts_cross_entropy`; predicts with the ``"lts"`` readout.

    >>> import torch
    >>> loss = LTSCrossEntropy(validate_args=False)  # for a loop whose inputs are known good
    >>> loss, round(loss(torch.zeros(3, 1, 2), torch.tensor([0])).item(), 4)
    (LTSCrossEntropy(validate_args=False), 0.6931)
    """

    readout = "lts"
    function = staticmethod(lts_cross_entropy)


class RateMSE(_LossModule):
    """Module form of :func:`rate_mse`; predicts with the ``"mean"`` readout.

    >>> import torch
    >>> RateMSE()(torch.tensor([[[1.0, 0.0]], [[0.0, 0.0]]]), torch.tensor([0])).item()
    0.125
    """

    readout = "mean"
    function = staticmethod(rate_mse)


class TETLoss(_LossModule):
    """Module form of :func:`tet`; predicts with the ``"mean"`` readout.

    Example:
        >>> TETLoss()
        TETLoss(lam=0.001, phi=1.0)
    """

    readout = "mean"
    function = staticmethod(tet)

    def __init__(self, lam: float = 1e-3, phi: float = 1.0, validate_args: bool = True) -> None:
        _check_lam(lam)
        _check_phi(phi)
        super().__init__(validate_args)
        self.lam = lam
        self.phi = phi

    def _settings(self) -> dict[str, float]:
        return {"lam": self.lam, "phi": self.phi}


class LabelSmoothedTETLoss(_LossModule):
    """Module form of :func:`label_smoothed_tet`; predicts with the ``"mean"`` readout.

    Example:
        >>> LabelSmoothedTETLoss()
        LabelSmoothedTETLoss(epsilon=0.01, lam=0.0, phi=1.0)
    """

    readout = "mean"
    function = staticmethod(label_smoothed_tet)

    def __init__(self, epsilon: float = 0.01, lam: float = 0.0, phi: float = 1.0, validate_args: bool = True) -> None:
        _check_epsilon(epsilon)
        _check_lam(lam)
        _check_phi(phi)
        super().__init__(validate_args)
        self.epsilon = epsilon
        self.lam = lam
        self.phi = phi

    def _settings(self) -> dict[str, float]:
        return {"epsilon": self.epsilon, "lam": self.lam, "phi": self.phi}


LOSSES: dict[str, type[nn.Module]] = {
    "ce": RateCrossEntropy,
    "rate_ce": RateCrossEntropy,
    "lts": LTSCrossEntropy,
    "tet": TETLoss,
    "label_smoothed_tet": LabelSmoothedTETLoss,
    "tets": LabelSmoothedTETLoss,
    "rate_mse": RateMSE,
}


def get_loss(name: str, **kwargs: float) -> nn.Module:
    """Build the loss Module registered under ``name`` with keyword arguments ``kwargs``.

    Names: "ce" / "rate_ce", "rate_mse", "lts", "tet", "label_smoothed_tet" / "tets".

    Example:
        >>> loss = get_loss("tets", epsilon=0.1)
        >>> loss, loss.readout
        (LabelSmoothedTETLoss(epsilon=0.1, lam=0.0, phi=1.0), 'mean')
    """
    if not isinstance(name, str):
        raise TypeError(f"expected the loss name as a str, got {type(name).__name__}")
    if name not in LOSSES:
        known = ", ".join(repr(k) for k in LOSSES)
        raise ValueError(f"unknown loss {name!r}; known losses: {known}")
    cls = LOSSES[name]
    signature = inspect.signature(cls)
    try:
        signature.bind(**kwargs)
    except TypeError as err:
        accepted = ", ".join(signature.parameters) or "no arguments"
        raise TypeError(f"loss {name!r} ({cls.__name__}) accepts {accepted}; {err}") from None
    return cls(**kwargs)


# --------------------------------------------------------------------------- helpers

def _tet_objective(out_seq: Tensor, target: Tensor, *, lam: float, phi: float, epsilon: float) -> Tensor:
    """``(1 - lam) * mean_t CE_eps(O_t, y) + lam * mean (O - phi)^2`` on validated inputs.

    Every step has the same N samples, so the mean over t of the per-step batch means is the
    mean over all T*N rows of the flattened [T*N, C] logits (row t*N + n has target y_n).
    ``F.cross_entropy``'s ``label_smoothing`` uses exactly ``(1 - eps) * onehot + eps / C``.
    """
    steps, batch, classes = out_seq.shape
    repeated = target.repeat(steps, 1) if target.dim() == 2 else target.repeat(steps)
    per_step_ce = F.cross_entropy(
        out_seq.reshape(steps * batch, classes), repeated.to(out_seq.dtype) if target.dim() == 2 else repeated,
        label_smoothing=epsilon,
    )
    if lam == 0:
        return per_step_ce
    mse = (out_seq - phi).square().mean()
    return (1.0 - lam) * per_step_ce + lam * mse


def _prepared(out_seq: Tensor, target: Tensor, validate_args: bool) -> Tensor:
    """The target as the objectives take it: checked with ``out_seq`` (:func:`~bsnn_lightning.validation.check_inputs`),
    or, unchecked, only made int64 if it holds class indices."""
    if validate_args:
        return check_inputs(out_seq, target)
    return target if target.is_floating_point() else target.long()


def _check_epsilon(epsilon: float) -> None:
    check_real("epsilon", epsilon)
    if not 0.0 <= epsilon < 1.0:
        raise ValueError(f"expected epsilon in [0, 1), got {epsilon}")


def _check_lam(lam: float) -> None:
    check_real("lam", lam)
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"expected lam in [0, 1], got {lam}")


def _check_phi(phi: float) -> None:
    check_real("phi", phi)
    if not math.isfinite(phi):
        raise ValueError(f"expected a finite phi, got {phi}")
