"""A small convolutional SNN: the quickstart's network."""

from __future__ import annotations

import torch
from torch import nn

from ..neurons import LIFNeuron


class TimeDistributed(nn.Module):
    """Apply a stateless module to every time step at once: ``[T, N, ...] -> [T, N, ...]``.

    The time and batch dimensions are merged, so convolutions, pooling and batch norm run as one call
    (batch norm then normalises over time and batch together, as SpikingJelly's ``SeqToANNContainer``
    and the TET/IMP code do).
    """

    def __init__(self, *modules: nn.Module) -> None:
        super().__init__()
        self.module = modules[0] if len(modules) == 1 else nn.Sequential(*modules)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        steps, batch = x.shape[:2]
        y = self.module(x.reshape(steps * batch, *x.shape[2:]))
        return y.reshape(steps, batch, *y.shape[1:])


class SpikingConvNet(nn.Module):
    """``[T, N, C, H, W] -> [T, N, num_classes]``: conv-BN-LIF-pool blocks, a spiking hidden layer, a
    linear read-out of logits at every step.

    Args:
        in_channels: input channels (2 for ON/OFF event frames, 1 for static images).
        num_classes: number of classes.
        channels: output channels of each conv block (each block halves H and W).
        hidden: width of the spiking fully connected layer (0 for none).
        input_size: (H, W) of the input, to size the first linear layer.
        tau, v_reset, threshold, surrogate, detach_reset: LIF neuron settings (see
            :class:`bsnn_lightning.LIFNeuron`; ``v_reset=None`` is the soft reset).
        dropout: dropout before the read-out.
    """

    def __init__(
        self,
        in_channels: int = 2,
        num_classes: int = 10,
        channels: tuple[int, ...] = (16, 32),
        hidden: int = 128,
        input_size: tuple[int, int] = (34, 34),
        tau: float = 2.0,
        v_reset: float | None = None,
        threshold: float = 1.0,
        surrogate: str = "atan",
        detach_reset: bool = False,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        neuron = dict(tau=tau, v_reset=v_reset, threshold=threshold, surrogate=surrogate, detach_reset=detach_reset)
        layers: list[nn.Module] = []
        features = pooled_features(in_channels, channels, input_size)
        previous = in_channels
        for width in channels:
            layers.append(TimeDistributed(nn.Conv2d(previous, width, 3, padding=1, bias=False), nn.BatchNorm2d(width)))
            layers.append(LIFNeuron(**neuron))
            layers.append(TimeDistributed(nn.MaxPool2d(2)))
            previous = width
        layers.append(TimeDistributed(nn.Flatten()))
        if hidden:
            layers += [TimeDistributed(nn.Linear(features, hidden)), LIFNeuron(**neuron)]
            features = hidden
        if dropout:
            layers.append(TimeDistributed(nn.Dropout(dropout)))
        layers.append(TimeDistributed(nn.Linear(features, num_classes)))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_frames(x)
        return self.layers(x)


def check_frames(x: torch.Tensor) -> None:
    """Event-frame sequences are 5-D: ``[T, N, C, H, W]``."""
    if x.dim() != 5:
        raise ValueError(f"expected x of shape [T, N, C, H, W], got {list(x.shape)}")


def pooled_features(in_channels: int, channels: tuple[int, ...], input_size: tuple[int, int]) -> int:
    """Flattened features after one 2x2 pooling per conv block of ``channels`` on ``input_size`` (H, W)."""
    h, w = input_size
    for _ in channels:
        h, w = h // 2, w // 2
    if h < 1 or w < 1:
        raise ValueError(f"input_size {input_size} is too small for {len(channels)} pooling blocks")
    return (channels[-1] if channels else in_channels) * h * w
