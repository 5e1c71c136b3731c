"""A small convolutional SNN: the quickstart's network (and the report's)."""

from __future__ import annotations

import torch
from torch import nn

from .layers import TimeDistributed, check_frames, pooled_features
from .neuron_factory import NeuronFactory, neuron_maker, soft_reset_lif

__all__ = ["SpikingConvNet"]


class SpikingConvNet(nn.Module):
    """``[T, N, C, H, W] -> [T, N, num_classes]``: an optional average pooling of the input, conv-BN-neuron-
    maxpool blocks, a spiking hidden layer, a linear read-out of logits at every step.

    Args:
        in_channels: input channels (2 for ON/OFF event frames, 1 for static images).
        num_classes: number of classes.
        channels: output channels of each conv block (each block halves H and W).
        hidden: width of the spiking fully connected layer (0 for none).
        input_size: (H, W) of the input, to size the first linear layer.
        input_pool: side of an average pooling applied to the input first (1 = none; 2 takes
            34 x 34 frames to 17 x 17, as the report's network does).
        dropout: dropout before the read-out.
        neuron: the spiking neuron, a zero-argument callable making one neuron module per spiking
            layer (e.g. ``functools.partial(LIFNeuron, tau=2.0, v_reset=None)``; in YAML
            ``class_path``/``init_args``; see :mod:`bsnn_lightning.models.neuron_factory`). None:
            :func:`~bsnn_lightning.models.neuron_factory.soft_reset_lif`, ``LIFNeuron(tau=2.0, v_reset=None)``.

    >>> import bsnn_lightning as bl
    >>> _ = torch.manual_seed(0)
    >>> net = SpikingConvNet(in_channels=2, num_classes=3, channels=(4,), hidden=8, input_size=(8, 8))
    >>> net(torch.rand(2, 1, 2, 8, 8)).shape  # [T, N, C, H, W] -> logits at every step
    torch.Size([2, 1, 3])
    >>> bl.reset_states(net)  # the neurons keep their membrane until reset: do it before the next sequence
    >>> net(torch.rand(1, 2, 8, 8))
    Traceback (most recent call last):
        ...
    ValueError: expected x of shape [T, N, C, H, W], got [1, 2, 8, 8]
    """

    def __init__(
        self,
        in_channels: int = 2,
        num_classes: int = 10,
        channels: tuple[int, ...] = (16, 32),
        hidden: int = 128,
        input_size: tuple[int, int] = (34, 34),
        input_pool: int = 1,
        dropout: float = 0.0,
        neuron: NeuronFactory | None = None,
    ) -> None:
        super().__init__()
        if isinstance(input_pool, bool) or not isinstance(input_pool, int) or input_pool < 1:
            raise ValueError(f"expected input_pool to be an int >= 1 (1 = no input pooling), got {input_pool!r}")
        make_neuron = neuron_maker(neuron, soft_reset_lif)
        layers: list[nn.Module] = []
        features = pooled_features(in_channels, channels, input_size, input_pool)
        if input_pool > 1:
            layers.append(TimeDistributed(nn.AvgPool2d(input_pool)))
        previous = in_channels
        for width in channels:
            layers.append(TimeDistributed(nn.Conv2d(previous, width, 3, padding=1, bias=False), nn.BatchNorm2d(width)))
            layers.append(make_neuron())
            layers.append(TimeDistributed(nn.MaxPool2d(2)))
            previous = width
        layers.append(TimeDistributed(nn.Flatten()))
        if hidden:
            layers += [TimeDistributed(nn.Linear(features, hidden)), make_neuron()]
            features = hidden
        if dropout:
            layers.append(TimeDistributed(nn.Dropout(dropout)))
        layers.append(TimeDistributed(nn.Linear(features, num_classes)))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_frames(x)
        return self.layers(x)
