"""Per-time-step accuracy of time-major SNN outputs ``out_seq`` [T, N, C].

Two modes, for every t in 0 .. T-1:

* ``"instant"``: ``acc[t] = (1 / N) * sum_n [argmax_c O[t, n, c] == y_n]``
* ``"cumulative"``: ``acc[t] = (1 / N) * sum_n [argmax_c (1 / (t + 1)) * sum_{s <= t} O[s, n, c] == y_n]``

So the last instant step is the LTS prediction and the last cumulative step is the rate
(mean-over-time) prediction. :func:`per_step_accuracy` scores one batch;
:class:`PerStepAccuracy` accumulates over batches (and DDP ranks) as a torchmetrics Metric.
Ties in argmax go to the first maximal class (``torch.argmax``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric

from bsnn_lightning.validation import (
    check_out_seq,
    check_target,
    check_values,
    format_shape,
)

__all__ = ["MODES", "PerStepAccuracy", "per_step_accuracy"]

MODES = ("instant", "cumulative")


def per_step_accuracy(out_seq: Tensor, target: Tensor, mode: str = "instant", *, validate_args: bool = True) -> Tensor:
    """Accuracy of the prediction at every time step of one batch.

    Args:
        out_seq: finite real outputs [T, N, C] (T >= 1, N >= 1); integer spike counts are fine.
        target: integer class indices [N] in [0, C).
        mode: ``"instant"`` (argmax O_t) or ``"cumulative"`` (argmax of mean_{s<=t} O_s).
        validate_args: check the arguments (False skips the checks, for a hot loop).

    Returns:
        float tensor [T].

    Example:
        >>> out_seq = torch.tensor([[[1.0, 0.0], [1.0, 0.0]],
        ...                         [[0.0, 3.0], [0.0, 0.5]]])  # T=2, N=2, C=2
        >>> target = torch.tensor([1, 1])
        >>> per_step_accuracy(out_seq, target)
        tensor([0., 1.])
        >>> per_step_accuracy(out_seq, target, mode="cumulative")  # means at t=1: (.5, 1.5), (.5, .25)
        tensor([0.0000, 0.5000])
    """
    correct = _correct_per_step(out_seq, target, mode, validate_args)
    batch = out_seq.shape[1]
    if batch == 0:
        raise ValueError(f"expected a non-empty batch (N >= 1), got out_seq of shape {format_shape(out_seq.shape)}")
    return correct.float() / batch


class PerStepAccuracy(Metric):
    """Accumulated per-time-step accuracy (see :func:`per_step_accuracy` for the equations).

    ``compute()`` returns ``correct[t] / total`` over every sample seen, a float tensor [T];
    before any sample it is all zeros (torchmetrics also warns).

    The number of time steps T is fixed by ``num_steps`` when given, else by the first
    ``update`` after construction or ``reset()``; an update with another T raises. States are
    summed across processes (``dist_reduce_fx="sum"``). Under DDP with ``num_steps=None``,
    every rank must have seen at least one batch before ``compute()``; pass ``num_steps``
    when some rank may see none.

    Args:
        mode: ``"instant"`` or ``"cumulative"``.
        num_steps: T, if known up front (optional).
        validate_args: check each update's arguments (False skips the checks, for a hot loop).
        kwargs: passed to :class:`torchmetrics.Metric`.

    Example:
        >>> metric = PerStepAccuracy(mode="instant")
        >>> target = torch.tensor([1, 1])
        >>> metric.update(torch.tensor([[[1.0, 0.0], [1.0, 0.0]], [[0.0, 3.0], [0.0, 0.5]]]), target)
        >>> metric.update(torch.tensor([[[0.0, 1.0], [1.0, 0.0]], [[0.0, 3.0], [2.0, 0.5]]]), target)
        >>> metric.compute()
        tensor([0.2500, 0.7500])
    """

    is_differentiable = False
    higher_is_better = True
    # The lazily sized state ([0] until the first update fixes T) cannot be merged by the
    # additive shortcut of torchmetrics' reduce-state forward, so forward uses the full update.
    full_state_update = True

    correct: Tensor
    total: Tensor

    def __init__(
        self, mode: str = "instant", num_steps: int | None = None, validate_args: bool = True, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        _check_mode(mode)
        if num_steps is not None and (
            isinstance(num_steps, bool) or not isinstance(num_steps, int) or num_steps < 1
        ):
            raise ValueError(f"expected num_steps to be None or an int >= 1, got {num_steps!r}")
        self.mode = mode
        self.num_steps = num_steps
        self.validate_args = validate_args
        self.add_state("correct", default=torch.zeros(num_steps or 0, dtype=torch.long), dist_reduce_fx="sum")
        self.add_state("total", default=torch.zeros((), dtype=torch.long), dist_reduce_fx="sum")

    def update(self, out_seq: Tensor, target: Tensor) -> None:
        """Add the per-step correct counts of one batch ([T, N, C] outputs, [N] targets)."""
        correct = _correct_per_step(out_seq, target, self.mode, self.validate_args)
        self._check_steps(correct.numel())
        if self.correct.numel() == 0:  # first update since construction / reset: fix T
            self.correct = self.correct.new_zeros(correct.numel())
        self.correct += correct.to(self.correct.device)
        self.total += out_seq.shape[1]

    def compute(self) -> Tensor:
        """Accuracy per time step, float tensor [T]."""
        return self.correct.float() / self.total.clamp(min=1).float()

    def merge_state(self, incoming_state: dict[str, Any] | Metric) -> None:
        """Add another PerStepAccuracy's (or a state dict's) counts, after checking T and mode."""
        if isinstance(incoming_state, Metric):
            if not isinstance(incoming_state, PerStepAccuracy):
                raise ValueError(
                    f"expected incoming state from a PerStepAccuracy, got {type(incoming_state).__name__}"
                )
            if incoming_state.mode != self.mode:
                raise ValueError(f"cannot merge mode {incoming_state.mode!r} into mode {self.mode!r}")
            incoming_state = incoming_state.metric_state
        if not isinstance(incoming_state, dict) or not {"correct", "total"} <= incoming_state.keys():
            raise ValueError("expected incoming state to be a PerStepAccuracy or a dict with 'correct' and 'total'")
        other = incoming_state["correct"]
        if other.numel() == 0:
            return
        self._check_steps(other.numel())
        if self.correct.numel() == 0:
            self.correct = self.correct.new_zeros(other.numel())
        self.correct += other.to(self.correct.device)
        self.total += incoming_state["total"].to(self.total.device)
        self._computed = None

    def _check_steps(self, steps: int) -> None:
        expected = self.correct.numel()
        if expected and steps != expected:
            fixed_by = "num_steps" if self.num_steps is not None else "the first update"
            raise ValueError(
                f"expected out_seq with T = {expected} time steps (fixed by {fixed_by}), got T = {steps}; "
                "call reset() to start over with another T"
            )


# --------------------------------------------------------------------------- helpers


def _correct_per_step(out_seq: Tensor, target: Tensor, mode: str, validate_args: bool) -> Tensor:
    """Inputs, checked unless ``validate_args`` is False -> number of correct predictions at each time step,
    int64 [T]."""
    _check_mode(mode)  # a host-side check of a string: kept, so that no mode is silently read as another
    if validate_args:
        check_out_seq(out_seq, floating=False)
        target = check_target(out_seq, target)
        check_values(out_seq, target)
    out_seq = out_seq.detach()
    if mode == "cumulative":
        steps = out_seq.shape[0]
        counts = torch.arange(1, steps + 1, device=out_seq.device).view(steps, 1, 1)
        out_seq = out_seq.cumsum(dim=0) / counts
    pred = out_seq.argmax(dim=2)  # [T, N]
    return (pred == target.unsqueeze(0)).sum(dim=1)


def _check_mode(mode: str) -> None:
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; expected one of: {', '.join(repr(m) for m in MODES)}")
