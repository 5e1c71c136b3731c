"""The argument checks that losses, readouts and metrics share (torchmetrics style: one home, and each public
function and Module there takes ``validate_args``; ``validate_args=False`` skips them in a hot loop whose inputs
are known good).

- :func:`check_out_seq`: a time-major output sequence ``out_seq`` [T, N, C], T >= 1, C >= 1.
- :func:`check_target`: class indices [N] or soft targets [N, C] that match it.
- :func:`check_values`: finite outputs, indices in [0, C), soft targets that are probabilities. These read
  values, so they stay on the device: on the CPU they raise at once, on a GPU they raise a deferred flag
  (:mod:`bsnn_lightning.engine.checks`) that is read once per logging interval, never syncing the host.
- :func:`check_inputs`: all three, plus a non-empty batch, as a loss needs them.
- :func:`check_real`: a real number (not a bool) for a hyperparameter.

Every error names what was expected and what was given.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import torch
from torch import Tensor

from .engine import checks

__all__ = ["check_inputs", "check_out_seq", "check_real", "check_target", "check_values", "format_shape"]

INTEGER_DTYPES = (torch.int64, torch.int32, torch.int16, torch.int8, torch.uint8)


def format_shape(shape: Sequence[int]) -> str:
    """A shape as the error messages write it.

    >>> format_shape(torch.Size([32, 10]))
    '[32, 10]'
    """
    return "[" + ", ".join(str(int(s)) for s in shape) + "]"


def check_out_seq(out_seq: Tensor, *, floating: bool = True) -> None:
    """Raise unless ``out_seq`` is a [T, N, C] tensor with T >= 1 and C >= 1.

    With ``floating=True`` the dtype must be floating point; otherwise any real dtype but ``bool`` is accepted
    (e.g. spike counts). N = 0 is allowed here; the callers that need a non-empty batch check it themselves.

    >>> check_out_seq(torch.zeros(4, 2, 3))
    >>> check_out_seq(torch.zeros(2, 3))
    Traceback (most recent call last):
    ...
    ValueError: expected out_seq of shape [T, N, C], got [2, 3]
    """
    if not isinstance(out_seq, Tensor):
        raise TypeError(f"expected out_seq to be a torch.Tensor of shape [T, N, C], got {type(out_seq).__name__}")
    if out_seq.ndim != 3:
        raise ValueError(f"expected out_seq of shape [T, N, C], got {format_shape(out_seq.shape)}")
    if out_seq.shape[0] == 0:
        raise ValueError(
            f"expected out_seq with at least one time step (T >= 1), got shape {format_shape(out_seq.shape)}"
        )
    if out_seq.shape[2] == 0:
        raise ValueError(f"expected out_seq with at least one class (C >= 1), got shape {format_shape(out_seq.shape)}")
    dtype = out_seq.dtype
    if floating and not dtype.is_floating_point:
        raise TypeError(f"expected a floating-point out_seq, got dtype {dtype}")
    if dtype == torch.bool or dtype.is_complex:
        raise TypeError(f"expected a real-valued (non-bool) out_seq, got dtype {dtype}")


def check_target(out_seq: Tensor, target: Tensor) -> Tensor:
    """Check the shape and dtype of ``target`` against a checked ``out_seq`` [T, N, C]: integer class indices
    [N] (returned as int64) or floating soft targets [N, C] (returned as they are).

    >>> check_target(torch.zeros(4, 2, 3), torch.tensor([0, 2], dtype=torch.int32)).dtype
    torch.int64
    >>> check_target(torch.zeros(4, 2, 3), torch.tensor([0, 2, 1]))
    Traceback (most recent call last):
    ...
    ValueError: expected target of shape [N] = [2] to match out_seq [T, N, C] = [4, 2, 3], got [3]
    """
    if not isinstance(target, Tensor):
        raise TypeError(f"expected target to be a torch.Tensor of class indices [N], got {type(target).__name__}")
    batch = out_seq.shape[1]
    if target.ndim == 2 and target.is_floating_point():  # soft targets [N, C]
        if tuple(target.shape) != (batch, out_seq.shape[2]):
            raise ValueError(
                f"expected soft targets of shape [N, C] = [{batch}, {out_seq.shape[2]}] to match out_seq "
                f"[T, N, C] = {format_shape(out_seq.shape)}, got {format_shape(target.shape)}"
            )
        return target
    if target.ndim != 1 or target.shape[0] != batch:
        raise ValueError(
            f"expected target of shape [N] = [{batch}] to match out_seq [T, N, C] = "
            f"{format_shape(out_seq.shape)}, got {format_shape(target.shape)}"
        )
    if target.dtype not in INTEGER_DTYPES:
        raise TypeError(
            f"expected an integer target of class indices (int64) [N], or floating soft targets [N, C], "
            f"got dtype {target.dtype} with shape {format_shape(target.shape)}"
        )
    return target.long()


def check_values(out_seq: Tensor, target: Tensor) -> None:
    """Raise on a non-finite ``out_seq`` or targets outside [0, C) (soft targets: rows that are not finite,
    non-negative and summing to 1). On the CPU at once (one read of two flags); on a GPU the flags stay on the
    device until the next deferred check (:mod:`bsnn_lightning.engine.checks`), so a step never waits for it.

    >>> check_values(torch.zeros(1, 2, 3), torch.tensor([0, 2]))
    >>> check_values(torch.zeros(1, 2, 3), torch.tensor([0, 3]))
    Traceback (most recent call last):
    ...
    ValueError: expected target class indices in [0, C) = [0, 3), got values in [0, 3]
    """
    classes = out_seq.shape[2]
    if target.is_floating_point():  # soft targets: rows of probabilities
        soft = target.detach()
        bad_rows = (
            ~torch.isfinite(soft).all(dim=1) | (soft < 0).any(dim=1) | ((soft.sum(dim=1) - 1).abs() > 1e-3)
        ).any()
        flags = torch.stack([~torch.isfinite(out_seq.detach()).all(), bad_rows])
    else:
        flags = torch.stack([~torch.isfinite(out_seq.detach()).all(), ((target < 0) | (target >= classes)).any()])
    if checks.resolve("auto", out_seq.device) == "defer":
        checks.defer("the loss's out_seq (NaN or Inf) or its targets (outside [0, C) or not probabilities)", flags.any())
        return
    non_finite, out_of_range = flags.tolist()
    if non_finite:
        count = int((~torch.isfinite(out_seq.detach())).sum())
        raise ValueError(f"expected a finite out_seq, got {count} non-finite value(s) (nan or inf)")
    if out_of_range and target.is_floating_point():
        sums = target.detach().sum(dim=1)
        raise ValueError(
            "expected soft targets with rows of finite, non-negative probabilities summing to 1, "
            f"got row sums in [{float(sums.min())}, {float(sums.max())}] and minimum {float(target.min())}"
        )
    if out_of_range:
        raise ValueError(
            f"expected target class indices in [0, C) = [0, {classes}), "
            f"got values in [{int(target.min())}, {int(target.max())}]"
        )


def check_inputs(out_seq: Tensor, target: Tensor) -> Tensor:
    """What a loss needs: :func:`check_out_seq` (floating), :func:`check_target`, a non-empty batch (N >= 1) and
    :func:`check_values`. Returns int64 class indices, or the soft targets.

    >>> check_inputs(torch.zeros(4, 2, 3), torch.tensor([0, 2]))
    tensor([0, 2])
    >>> check_inputs(torch.zeros(4, 0, 3), torch.tensor([], dtype=torch.long))
    Traceback (most recent call last):
    ...
    ValueError: expected a non-empty batch (N >= 1), got out_seq of shape [4, 0, 3]
    """
    check_out_seq(out_seq)
    target = check_target(out_seq, target)
    if out_seq.shape[1] == 0:
        raise ValueError(f"expected a non-empty batch (N >= 1), got out_seq of shape {format_shape(out_seq.shape)}")
    check_values(out_seq, target)
    return target


def check_real(name: str, value: float) -> None:
    """Raise unless ``value`` is a real number (a bool is not).

    >>> check_real("lam", 0.5)
    >>> check_real("lam", True)
    Traceback (most recent call last):
    ...
    TypeError: expected lam to be a real number, got bool
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"expected {name} to be a real number, got {type(value).__name__}")
