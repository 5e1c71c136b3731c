"""Readouts: turn a time-major output sequence ``out_seq`` [T, N, C] into predictions.

Three rules, each as a function and as an :class:`torch.nn.Module`:

* ``"mean"`` -- :func:`mean_over_time` (rate readout), ``mean_t O_t`` -> [N, C].
* ``"lts"`` -- :func:`last_time_step`, the LTS readout of Shen, Zheng, Wang & Pan,
  "Rethinking the Membrane Dynamics and Optimization Objectives of Spiking Neural Networks",
  NeurIPS 2024: static tasks read (and train) on the last time step only, ``O_T`` -> [N, C].
* ``"per_step"`` -- :func:`per_step`, the whole sequence [T, N, C] unchanged (validated).

:func:`get_readout` builds a readout Module by name. The shape check
(:func:`bsnn_lightning.validation.check_out_seq`) is shared with :mod:`bsnn_lightning.losses` and
:mod:`bsnn_lightning.metrics`; ``validate_args=False`` skips it in a hot loop.
"""

from __future__ import annotations

from typing import Callable

from torch import Tensor, nn

from bsnn_lightning.validation import check_out_seq

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


def mean_over_time(out_seq: Tensor, *, validate_args: bool = True) -> Tensor:
    """Rate readout: the mean of the outputs over time, [T, N, C] -> [N, C].

    ``R[n, c] = (1 / T) * sum_t O[t, n, c]``

    Args:
        out_seq: floating-point outputs of shape [T, N, C], T >= 1.
        validate_args: check ``out_seq`` (False skips the check).

    Example:
        >>> import torch
        >>> out_seq = torch.tensor([[[1.0, 3.0]], [[3.0, -1.0]]])  # T=2, N=1, C=2
        >>> mean_over_time(out_seq)
        tensor([[2., 1.]])
    """
    if validate_args:
        check_out_seq(out_seq)
    return out_seq.mean(dim=0)


def last_time_step(out_seq: Tensor, *, validate_args: bool = True) -> Tensor:
    """LTS readout (Shen et al., NeurIPS 2024): the output at the last time step only, [T, N, C] -> [N, C].

    ``R[n, c] = O[T-1, n, c]`` (0-based), so earlier time steps get no gradient.

    Args:
        out_seq: floating-point outputs of shape [T, N, C], T >= 1.
        validate_args: check ``out_seq`` (False skips the check).

    Example:
        >>> import torch
        >>> out_seq = torch.tensor([[[1.0, 3.0]], [[3.0, -1.0]]], requires_grad=True)  # T=2, N=1, C=2
        >>> readout = last_time_step(out_seq)
        >>> readout
        tensor([[ 3., -1.]], grad_fn=<SelectBackward0>)
        >>> readout.sum().backward()
        >>> out_seq.grad[0]  # the earlier step gets no gradient
        tensor([[0., 0.]])
    """
    if validate_args:
        check_out_seq(out_seq)
    return out_seq[-1]


def per_step(out_seq: Tensor, *, validate_args: bool = True) -> Tensor:
    """Per-step readout: the validated sequence itself, ``R[t, n, c] = O[t, n, c]``.

    Args:
        out_seq: floating-point outputs of shape [T, N, C], T >= 1.
        validate_args: check ``out_seq`` (False skips the check).

    Returns:
        ``out_seq`` unchanged (the same tensor object), shape [T, N, C].

    Example:
        >>> import torch
        >>> out_seq = torch.zeros(4, 2, 3)
        >>> per_step(out_seq) is out_seq
        True
    """
    if validate_args:
        check_out_seq(out_seq)
    return out_seq


class _ReadoutModule(nn.Module):
    """The Module form of a readout function: ``forward`` applies the class's ``function`` with the
    Module's ``validate_args``."""

    name: str
    function: Callable[..., Tensor]

    def __init__(self, validate_args: bool = True) -> None:
        super().__init__()
        self.validate_args = validate_args

    def forward(self, out_seq: Tensor) -> Tensor:
        return self.function(out_seq, validate_args=self.validate_args)

    def extra_repr(self) -> str:
        return "" if self.validate_args else "validate_args=False"


class MeanOverTime(_ReadoutModule):
    """Module form of :func:`mean_over_time`: [T, N, C] -> [N, C].

    >>> import torch
    >>> MeanOverTime()(torch.ones(3, 2, 4)).shape
    torch.Size([2, 4])
    """

    name = "mean"
    function = staticmethod(mean_over_time)


class LastTimeStep(_ReadoutModule):
    """Module form of :func:`last_time_step` (LTS readout): [T, N, C] -> [N, C].

    >>> import torch
    >>> LastTimeStep()(torch.arange(6.0).view(3, 1, 2))
    tensor([[4., 5.]])
    """

    name = "lts"
    function = staticmethod(last_time_step)


class PerStep(_ReadoutModule):
    """Module form of :func:`per_step`: [T, N, C] -> [T, N, C] (identity, validated).

    >>> PerStep(validate_args=False)
    PerStep(validate_args=False)
    """

    name = "per_step"
    function = staticmethod(per_step)


READOUTS: dict[str, type[nn.Module]] = {
    "mean": MeanOverTime,
    "lts": LastTimeStep,
    "per_step": PerStep,
}


def get_readout(name: str, validate_args: bool = True) -> nn.Module:
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
    return READOUTS[name](validate_args=validate_args)
