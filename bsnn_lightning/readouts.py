"""Readouts: turn a time-major output sequence ``out_seq`` [T, N, C] into predictions.

Three rules, each as a function and as an :class:`torch.nn.Module`:

* ``"mean"`` -- :func:`mean_over_time` (rate readout), ``mean_t O_t`` -> [N, C].
* ``"lts"`` -- :func:`last_time_step`, the LTS readout of Shen, Zheng, Wang & Pan,
  "Rethinking the Membrane Dynamics and Optimization Objectives of Spiking Neural Networks",
  NeurIPS 2024: static tasks read (and train) on the last time step only, ``O_T`` -> [N, C].
* ``"per_step"`` -- :func:`per_step`, the whole sequence [T, N, C] unchanged (validated).

:func:`get_readout` builds a readout Module by name. The shape checks here are shared with
:mod:`bsnn_lightning.losses` and :mod:`bsnn_lightning.metrics`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = [
    "READOUTS",
    "LastTimeStep",
    "MeanOverTime",
    "PerStep",
    "get_readout",
    "last_time_step",
    "mean_over_time",
    "per_step",
]


def mean_over_time(out_seq: Tensor) -> Tensor:
    """Rate readout: the mean of the outputs over time.

    ``R[n, c] = (1 / T) * sum_t O[t, n, c]``

    Args:
        out_seq: floating-point outputs of shape [T, N, C], T >= 1.

    Returns:
        Tensor of shape [N, C].

    Example:
        >>> out_seq = torch.tensor([[[1.0, 3.0]], [[3.0, -1.0]]])  # T=2, N=1, C=2
        >>> mean_over_time(out_seq)
        tensor([[2., 1.]])
    """
    _check_out_seq(out_seq)
    return out_seq.mean(dim=0)


def last_time_step(out_seq: Tensor) -> Tensor:
    """LTS readout (Shen et al., NeurIPS 2024): the output at the last time step only.

    ``R[n, c] = O[T-1, n, c]`` (0-based), so earlier time steps get no gradient.

    Args:
        out_seq: floating-point outputs of shape [T, N, C], T >= 1.

    Returns:
        Tensor of shape [N, C].

    Example:
        >>> out_seq = torch.tensor([[[1.0, 3.0]], [[3.0, -1.0]]])  # T=2, N=1, C=2
        >>> last_time_step(out_seq)
        tensor([[ 3., -1.]])
    """
    _check_out_seq(out_seq)
    return out_seq[-1]


def per_step(out_seq: Tensor) -> Tensor:
    """Per-step readout: the validated sequence itself, ``R[t, n, c] = O[t, n, c]``.

    Args:
        out_seq: floating-point outputs of shape [T, N, C], T >= 1.

    Returns:
        ``out_seq`` unchanged (the same tensor object), shape [T, N, C].

    Example:
        >>> out_seq = torch.zeros(4, 2, 3)
        >>> per_step(out_seq) is out_seq
        True
    """
    _check_out_seq(out_seq)
    return out_seq


class MeanOverTime(nn.Module):
    """Module form of :func:`mean_over_time`: [T, N, C] -> [N, C]."""

    name = "mean"

    def forward(self, out_seq: Tensor) -> Tensor:
        return mean_over_time(out_seq)


class LastTimeStep(nn.Module):
    """Module form of :func:`last_time_step` (LTS readout): [T, N, C] -> [N, C]."""

    name = "lts"

    def forward(self, out_seq: Tensor) -> Tensor:
        return last_time_step(out_seq)


class PerStep(nn.Module):
    """Module form of :func:`per_step`: [T, N, C] -> [T, N, C] (identity, validated)."""

    name = "per_step"

    def forward(self, out_seq: Tensor) -> Tensor:
        return per_step(out_seq)


READOUTS: dict[str, type[nn.Module]] = {
    "mean": MeanOverTime,
    "lts": LastTimeStep,
    "per_step": PerStep,
}


def get_readout(name: str) -> nn.Module:
    """Build the readout Module registered under ``name`` ("mean", "lts" or "per_step").

    Example:
        >>> get_readout("lts")
        LastTimeStep()
        >>> get_readout("last")
        Traceback (most recent call last):
        ...
        ValueError: unknown readout 'last'; known readouts: 'mean', 'lts', 'per_step'
    """
    if not isinstance(name, str):
        raise TypeError(f"expected the readout name as a str, got {type(name).__name__}")
    if name not in READOUTS:
        known = ", ".join(repr(k) for k in READOUTS)
        raise ValueError(f"unknown readout {name!r}; known readouts: {known}")
    return READOUTS[name]()


# --------------------------------------------------------------------------- helpers


def _fmt_shape(shape: Sequence[int]) -> str:
    """``torch.Size([32, 10])`` -> ``"[32, 10]"``."""
    return "[" + ", ".join(str(int(s)) for s in shape) + "]"


def _check_out_seq(out_seq: Tensor, *, floating: bool = True) -> None:
    """Raise unless ``out_seq`` is a [T, N, C] tensor with T >= 1 and C >= 1.

    With ``floating=True`` the dtype must be floating point; otherwise any real dtype but
    ``bool`` is accepted (e.g. spike counts). N = 0 is allowed here; the callers that need a
    non-empty batch check it themselves.
    """
    if not isinstance(out_seq, Tensor):
        raise TypeError(f"expected out_seq to be a torch.Tensor of shape [T, N, C], got {type(out_seq).__name__}")
    if out_seq.ndim != 3:
        raise ValueError(f"expected out_seq of shape [T, N, C], got {_fmt_shape(out_seq.shape)}")
    if out_seq.shape[0] == 0:
        raise ValueError(
            f"expected out_seq with at least one time step (T >= 1), got shape {_fmt_shape(out_seq.shape)}"
        )
    if out_seq.shape[2] == 0:
        raise ValueError(f"expected out_seq with at least one class (C >= 1), got shape {_fmt_shape(out_seq.shape)}")
    dtype = out_seq.dtype
    if floating and not dtype.is_floating_point:
        raise TypeError(f"expected a floating-point out_seq, got dtype {dtype}")
    if dtype == torch.bool or dtype.is_complex:
        raise TypeError(f"expected a real-valued (non-bool) out_seq, got dtype {dtype}")
