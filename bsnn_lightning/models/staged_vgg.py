"""The IMP paper's VGG-11 for 128 x 128 event frames, as its released code builds it (amazing-cls ``VGG11``
backbone, ``SpikeGlobalAveragePooling`` neck, ``TETLinearClsHead``): ``[T, N, C, H, W] -> [T, N, num_classes]``.

Four stages of ``Conv3x3 (with bias) -> BatchNorm -> neuron`` blocks, ``stages=(1, 1, 2, 4)`` blocks of
``widths=(64, 128, 256, 512)`` channels, a 2 x 2 average pooling after every stage but the last, then the
mean of the last spikes over H and W and one linear layer applied at every time step (logits per step, as
TET-style losses need them; a prediction is the mean over steps).
"""

from __future__ import annotations

from torch import nn

from ..neurons import LIFNeuron
from .layers import TimeDistributed, check_frames
from .neuron_factory import NeuronFactory, fit_neuron, neuron_maker

__all__ = ["StagedVGG", "imp_vgg_lif"]


def imp_vgg_lif() -> LIFNeuron:
    """The released IMP configs' neuron settings on this package's LIF: ``LIFNeuron(tau=2.0, v_reset=None,
    detach_reset=True, surrogate="sigmoid:4")`` (SpikingJelly ``LIFNode`` defaults otherwise: threshold 1,
    ``decay_input=True``); the default neuron of :class:`StagedVGG`.

    >>> import torch
    >>> neuron = imp_vgg_lif()  # h = v + (x - v) / 2: 0.75, 1.125 (spike, keep 0.125), 0.8125, 1.15625
    >>> neuron(torch.full((4, 1, 1), 1.5)).flatten().tolist(), neuron.surrogate
    ([0.0, 1.0, 0.0, 1.0], Surrogate(name='sigmoid', alpha=4.0))
    """
    return LIFNeuron(tau=2.0, v_reset=None, detach_reset=True, surrogate="sigmoid:4")


class StagedVGG(nn.Module):
    """A VGG given as stages of conv blocks (the IMP paper's VGG-11 by default; see the module docstring).

    Args:
        in_channels: 2 for ON/OFF event frames.
        num_classes: outputs of the per-step linear head.
        stages: conv blocks in each stage.
        widths: output channels of each stage's blocks.
        conv_bias: whether the convolutions have a bias (the released code's do).
        pool: ``"avg"`` or ``"max"``, the 2 x 2 pooling after every stage but the last.
        head_std: the head's weights start N(0, head_std^2) and its bias at 0 (the released head's
            initialisation); None keeps PyTorch's default initialisation of ``nn.Linear``.
        input_size: ``(H, W)`` of the frames, if known: a neuron of this package with a per-neuron or
            per-channel IMP then gets its layer's shape at construction; None leaves that to a dry run
            (:class:`~bsnn_lightning.callbacks.ConvertNeurons` or :func:`~bsnn_lightning.materialize`).
        neuron: the spiking neuron, a zero-argument callable making one neuron module per conv block (in
            YAML ``class_path``/``init_args``; see :mod:`bsnn_lightning.models.neuron_factory`), e.g.
            SpikingJelly's ``neuron.LIFNode`` with ``step_mode="m"``. None: :func:`imp_vgg_lif`.

    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> net = StagedVGG(num_classes=3, stages=(1, 2), widths=(4, 8))  # 1 block of 4 channels, pool, 2 of 8
    >>> net(torch.rand(2, 1, 2, 8, 8)).shape  # [T, N, C, H, W] -> logits at every step
    torch.Size([2, 1, 3])
    >>> StagedVGG(stages=(1, 1), widths=(4,))
    Traceback (most recent call last):
        ...
    ValueError: expected one width per stage, got stages [1, 1] and widths [4]
    """

    def __init__(
        self,
        in_channels: int = 2,
        num_classes: int = 10,
        stages: tuple[int, ...] = (1, 1, 2, 4),
        widths: tuple[int, ...] = (64, 128, 256, 512),
        conv_bias: bool = True,
        pool: str = "avg",
        head_std: float | None = 0.01,
        input_size: tuple[int, int] | None = None,
        neuron: NeuronFactory | None = None,
    ) -> None:
        super().__init__()
        stages, widths = tuple(stages), tuple(widths)
        if not stages or len(stages) != len(widths):
            raise ValueError(f"expected one width per stage, got stages {list(stages)} and widths {list(widths)}")
        if not all(isinstance(n, int) and n >= 1 for n in stages) or not all(isinstance(w, int) and w >= 1 for w in widths):
            raise ValueError(f"expected stages and widths of ints >= 1, got {list(stages)} and {list(widths)}")
        if pool not in ("avg", "max"):
            raise ValueError(f"expected pool 'avg' or 'max', got {pool!r}")
        if head_std is not None and not head_std > 0:
            raise ValueError(f"expected head_std > 0 or None, got {head_std}")
        size = None if input_size is None else (int(input_size[0]), int(input_size[1]))
        if size is not None and (size[0] >> (len(stages) - 1) < 1 or size[1] >> (len(stages) - 1) < 1):
            raise ValueError(f"input_size {tuple(input_size)} is too small for {len(stages) - 1} 2 x 2 poolings")
        make_neuron = neuron_maker(neuron, imp_vgg_lif)
        layers: list[nn.Module] = []
        previous = in_channels
        for index, (blocks, width) in enumerate(zip(stages, widths)):
            for block in range(blocks):
                conv = nn.Conv2d(previous, width, 3, padding=1, bias=conv_bias)
                layers.append(TimeDistributed(conv, nn.BatchNorm2d(width)))
                shape = None if size is None else (width, *size)
                layers.append(fit_neuron(make_neuron(), shape, f"stage {index + 1}, block {block + 1}"))
                previous = width
            if index < len(stages) - 1:
                layers.append(TimeDistributed(nn.AvgPool2d(2) if pool == "avg" else nn.MaxPool2d(2)))
                size = None if size is None else (size[0] // 2, size[1] // 2)
        self.features = nn.Sequential(*layers)
        linear = nn.Linear(previous, num_classes)
        if head_std is not None:
            nn.init.normal_(linear.weight, 0.0, head_std)
            nn.init.zeros_(linear.bias)
        self.head = TimeDistributed(nn.AdaptiveAvgPool2d(1), nn.Flatten(), linear)

    def forward(self, x):
        check_frames(x)
        return self.head(self.features(x))
