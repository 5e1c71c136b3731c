"""Layers and shape helpers the networks of :mod:`bsnn_lightning.models` share."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["TimeDistributed", "TimeScaledBatchNorm2d", "check_frames", "pooled_features"]


class TimeDistributed(nn.Module):
    """Apply a stateless module to every time step at once: ``[T, N, ...] -> [T, N, ...]``.

    The time and batch dimensions are merged, so convolutions, pooling and batch norm run as one call
    (batch norm then normalises over time and batch together, as SpikingJelly's ``SeqToANNContainer``
    and the TET/IMP code do).

    >>> layer = TimeDistributed(nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4))
    >>> layer(torch.rand(3, 5, 2, 8, 8)).shape  # T=3 and N=5 run as one batch of 15
    torch.Size([3, 5, 4, 8, 8])
    """

    def __init__(self, *modules: nn.Module) -> None:
        super().__init__()
        self.module = modules[0] if len(modules) == 1 else nn.Sequential(*modules)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        steps, batch = x.shape[:2]
        y = self.module(x.reshape(steps * batch, *x.shape[2:]))
        return y.reshape(steps, batch, *y.shape[1:])


class TimeScaledBatchNorm2d(nn.BatchNorm2d):
    """Batch norm over time and batch together, then one learnable scale per time step:
    ``[T, N, C, H, W] -> BN(x)[t] * time_scale[t]`` (``time_scale`` starts at 1).

    The normalisation of the IMP paper's 48 x 48 networks (their ``TEBN``, after Duan et al.'s temporal
    effective batch normalisation): as :class:`TimeDistributed` batch norm, times a factor per step. It is a
    ``BatchNorm2d`` (so parameter grouping counts ``time_scale`` with the norm's own parameters) that takes
    sequences of exactly ``time_steps`` steps.

    >>> norm = TimeScaledBatchNorm2d(4, time_steps=2)
    >>> norm(torch.rand(2, 3, 4, 8, 8)).shape, norm.time_scale.flatten().tolist()
    (torch.Size([2, 3, 4, 8, 8]), [1.0, 1.0])
    >>> norm(torch.rand(3, 3, 4, 8, 8))
    Traceback (most recent call last):
        ...
    ValueError: expected x of shape [T=2, N, C, H, W] (one scale per step), got [3, 3, 4, 8, 8]
    """

    def __init__(self, num_features: int, time_steps: int, **kwargs) -> None:
        super().__init__(num_features, **kwargs)
        if isinstance(time_steps, bool) or not isinstance(time_steps, int) or time_steps < 1:
            raise ValueError(f"expected time_steps to be an int >= 1, got {time_steps!r}")
        self.time_steps = time_steps
        self.time_scale = nn.Parameter(torch.ones(time_steps, 1, 1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 5 or x.shape[0] != self.time_steps:
            raise ValueError(
                f"expected x of shape [T={self.time_steps}, N, C, H, W] (one scale per step), got {list(x.shape)}"
            )
        steps, batch = x.shape[:2]
        y = super().forward(x.reshape(steps * batch, *x.shape[2:]))
        return y.reshape(x.shape) * self.time_scale

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, time_steps={self.time_steps}"


def check_frames(x: torch.Tensor) -> None:
    """Event-frame sequences are 5-D: ``[T, N, C, H, W]``.

    >>> check_frames(torch.zeros(2, 1, 2, 8, 8))
    >>> check_frames(torch.zeros(1, 2, 8, 8))
    Traceback (most recent call last):
        ...
    ValueError: expected x of shape [T, N, C, H, W], got [1, 2, 8, 8]
    """
    if x.dim() != 5:
        raise ValueError(f"expected x of shape [T, N, C, H, W], got {list(x.shape)}")


def halvable_size(input_size: tuple[int, int], halvings: int, layers: str) -> tuple[int, int]:
    """``(H, W)`` of ``input_size``, checked to be divisible by ``2 ** halvings`` so that ``layers`` (named in the
    error, e.g. "five 2 x 2 poolings") halve it exactly.

    >>> halvable_size((48, 32), 4, "four 2 x 2 poolings")
    (48, 32)
    >>> halvable_size((48, 40), 4, "four 2 x 2 poolings")
    Traceback (most recent call last):
        ...
    ValueError: expected input_size divisible by 16 (four 2 x 2 poolings), got (48, 40)
    """
    height, width = input_size
    factor = 2**halvings
    if height % factor or width % factor:
        raise ValueError(f"expected input_size divisible by {factor} ({layers}), got {tuple(input_size)}")
    return height, width


def pooled_features(
    in_channels: int, channels: tuple[int, ...], input_size: tuple[int, int], input_pool: int = 1
) -> int:
    """Flattened features after an ``input_pool`` x ``input_pool`` pooling of the input (1 = none), then one
    2x2 pooling per conv block of ``channels``, on ``input_size`` (H, W).

    >>> pooled_features(2, (16, 32), (34, 34))  # 34 -> 17 -> 8: 32 channels of 8 x 8
    2048
    >>> pooled_features(2, (16, 32), (34, 34), input_pool=2)  # 34 -> 17 -> 8 -> 4
    512
    >>> pooled_features(2, (16, 32), (2, 2))
    Traceback (most recent call last):
        ...
    ValueError: input_size (2, 2) is too small for 2 pooling blocks
    """
    h, w = input_size
    h, w = h // input_pool, w // input_pool
    for _ in channels:
        h, w = h // 2, w // 2
    if h < 1 or w < 1:
        pooling = f"an input pooling of {input_pool} and " if input_pool > 1 else ""
        raise ValueError(f"input_size {input_size} is too small for {pooling}{len(channels)} pooling blocks")
    return (channels[-1] if channels else in_channels) * h * w
