"""SpikingJelly's DVS128 Gesture network (``DVSGestureNet``), built from this package's neurons.

Fang et al.'s network from SpikingJelly's DVS128 Gesture tutorial (``classify_dvsg``; 93.75% test
accuracy at T = 16 with LIF neurons): five ``Conv3x3(no bias) -> BN -> LIF -> MaxPool2d(2)`` blocks
of ``channels`` channels, then ``Dropout(0.5) -> Linear(channels*4*4, 512) -> LIF -> Dropout(0.5)
-> Linear(512, 110) -> LIF`` and a voting layer that averages the 110 output spikes in groups of
10 into 11 class scores per time step. The dropout mask is drawn once per sequence and shared by
all time steps, as SpikingJelly's multi-step ``layer.Dropout`` does. Neurons by default: SpikingJelly's
``LIFNode`` defaults (tau 2, hard reset to 0, ATan surrogate) with ``detach_reset=True``
(:func:`spikingjelly_lif`); another neuron is given as a zero-argument factory, ``neuron``
(:mod:`bsnn_lightning.models.neuron_factory`).
"""

from __future__ import annotations

import torch
from torch import nn

from ..neurons import LIFNeuron
from .layers import TimeDistributed, check_frames, halvable_size
from .neuron_factory import NeuronFactory, neuron_maker

__all__ = ["DVSGestureNet", "SequenceDropout", "VotingLayer", "spikingjelly_lif"]


def spikingjelly_lif() -> LIFNeuron:
    """The tutorial's neuron: ``LIFNeuron(tau=2.0, v_reset=0.0, detach_reset=True)`` (ATan surrogate, threshold 1).

    >>> neuron = spikingjelly_lif()  # h = v + (x - v) / 2: 0.75, 1.125 (spike, reset to 0), 0.75, 1.125
    >>> neuron(torch.full((4, 1, 1), 1.5)).flatten().tolist()
    [0.0, 1.0, 0.0, 1.0]
    """
    return LIFNeuron(tau=2.0, v_reset=0.0, detach_reset=True)


class SequenceDropout(nn.Module):
    """Dropout on ``[T, N, ...]`` with one mask per sequence, shared by every time step.

    >>> _ = torch.manual_seed(0)
    >>> dropout = SequenceDropout(0.5)
    >>> y = dropout(torch.ones(3, 2, 4))  # [T, N, features]
    >>> y[0].tolist(), bool((y == y[0]).all())  # kept values scaled by 1 / (1 - p); the same mask at every step
    ([[0.0, 0.0, 2.0, 0.0], [0.0, 0.0, 2.0, 2.0]], True)
    >>> torch.equal(dropout.eval()(y), y)  # off in evaluation
    True
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"expected dropout p in [0, 1), got {p}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        mask = torch.empty_like(x[0]).bernoulli_(1 - self.p) / (1 - self.p)
        return x * mask

    def extra_repr(self) -> str:
        return f"p={self.p}"


class VotingLayer(nn.Module):
    """``[..., C * size] -> [..., C]``: the mean of each group of ``size`` consecutive outputs.

    >>> VotingLayer(2)(torch.tensor([[1.0, 0.0, 1.0, 1.0, 0.0, 0.0]]))  # 3 classes of 2 voters each
    tensor([[0.5000, 1.0000, 0.0000]])
    >>> VotingLayer(4)(torch.zeros(1, 6))
    Traceback (most recent call last):
        ...
    ValueError: expected a last dimension divisible by the voting size 4, got 6
    """

    def __init__(self, size: int = 10) -> None:
        super().__init__()
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] % self.size:
            raise ValueError(f"expected a last dimension divisible by the voting size {self.size}, got {x.shape[-1]}")
        return x.unflatten(-1, (x.shape[-1] // self.size, self.size)).mean(-1)

    def extra_repr(self) -> str:
        return f"size={self.size}"


class DVSGestureNet(nn.Module):
    """``[T, N, 2, H, W] -> [T, N, num_classes]`` (class scores = voted firing rates per step).

    Args:
        channels: width of the five conv blocks (the tutorial's ``-channels 128``).
        num_classes: 11 gestures.
        voting: output neurons per class.
        input_size: ``(H, W)`` of the frames (128 x 128 in the tutorial); the first linear layer
            takes ``channels * H/32 * W/32`` inputs.
        dropout: dropout probability of both dropout layers.
        neuron: the spiking neuron, a zero-argument callable making one neuron module per spiking
            layer (e.g. ``functools.partial(LIFNeuron, tau=2.0, v_reset=0.0, detach_reset=True)``; in
            YAML ``class_path``/``init_args``; see :mod:`bsnn_lightning.models.neuron_factory`). None:
            :func:`spikingjelly_lif`, the tutorial's.

    >>> _ = torch.manual_seed(0)
    >>> net = DVSGestureNet(channels=4, input_size=(32, 32))  # 32 x 32 frames: five poolings down to 1 x 1
    >>> scores = net(torch.rand(2, 1, 2, 32, 32))  # [T, N, 2, H, W]
    >>> scores.shape, bool(((scores >= 0) & (scores <= 1)).all())  # each: the firing rate of 10 voters
    (torch.Size([2, 1, 11]), True)
    >>> DVSGestureNet(input_size=(48, 48))
    Traceback (most recent call last):
        ...
    ValueError: expected input_size divisible by 32 (five 2 x 2 poolings), got (48, 48)
    """

    def __init__(
        self,
        channels: int = 128,
        num_classes: int = 11,
        voting: int = 10,
        input_size: tuple[int, int] = (128, 128),
        dropout: float = 0.5,
        neuron: NeuronFactory | None = None,
    ) -> None:
        super().__init__()
        height, width = halvable_size(input_size, 5, "five 2 x 2 poolings")
        make_neuron = neuron_maker(neuron, spikingjelly_lif)
        layers: list[nn.Module] = []
        previous = 2
        for _ in range(5):
            layers += [
                TimeDistributed(nn.Conv2d(previous, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels)),
                make_neuron(),
                TimeDistributed(nn.MaxPool2d(2)),
            ]
            previous = channels
        layers += [
            TimeDistributed(nn.Flatten()),
            SequenceDropout(dropout),
            TimeDistributed(nn.Linear(channels * (height // 32) * (width // 32), 512)),
            make_neuron(),
            SequenceDropout(dropout),
            TimeDistributed(nn.Linear(512, num_classes * voting)),
            make_neuron(),
            VotingLayer(voting),
        ]
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_frames(x)
        return self.layers(x)
