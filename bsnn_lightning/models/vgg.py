"""VGG-style spiking networks for event frames: ``[T, N, C, H, W] -> [T, N, num_classes]``.

* :class:`SpikingVGG` -- VGG-11 (and friends) of conv-BN-LIF blocks, the network of the IMP paper's
  DVS recipes (128 x 128 input): LIF with ``tau = 2`` and soft reset by default; the learnable IMP
  is added by :class:`bsnn_lightning.callbacks.ConvertNeurons` (``imp: neuron``) or by the neuron
  (``neuron=functools.partial(LIFNeuron, tau=2.0, v_reset=None, imp="layer")``).
* :class:`VGGSNN` -- TET's VGGSNN for 48 x 48 CIFAR10-DVS frames (Deng et al., ICLR 2022), with TET's
  neuron by default: ``v = 0.5 v + x``, threshold 1, hard reset to 0, triangle surrogate of width 1.

Both read logits from a linear layer at every time step (TET and LTS losses need them per step), and
both take their neuron as ``neuron``, a zero-argument factory (:mod:`bsnn_lightning.models.neuron_factory`).
"""

from __future__ import annotations

from torch import nn

from ..neurons import LIFNeuron
from .layers import TimeDistributed, TimeScaledBatchNorm2d, check_frames, halvable_size
from .neuron_factory import NeuronFactory, fit_neuron, neuron_maker, soft_reset_lif

__all__ = ["VGG_CONFIGS", "SpikingVGG", "VGGSNN", "tet_lif"]

VGG_CONFIGS: dict[str, tuple] = {
    "vgg11": (64, "P", 128, "P", 256, 256, "P", 512, 512, "P", 512, 512, "P"),
    "vgg13": (64, 64, "P", 128, 128, "P", 256, 256, "P", 512, 512, "P", 512, 512, "P"),
    "vgg16": (64, 64, "P", 128, 128, "P", 256, 256, 256, "P", 512, 512, 512, "P", 512, 512, 512, "P"),
}
"""Conv widths per layer, ``"P"`` = a 2 x 2 pooling (Simonyan & Zisserman's configurations A, B, D)."""


def tet_lif() -> LIFNeuron:
    """TET's neuron: ``LIFNeuron(tau=2.0, decay_input=False, v_reset=0.0, surrogate="triangle:1")``.

    >>> import torch
    >>> neuron = tet_lif()  # h = 0.5 v + x: 0.6, 0.9, 1.05 (spike, reset to 0), 0.6
    >>> neuron(torch.full((4, 1, 1), 0.6)).flatten().tolist()
    [0.0, 0.0, 1.0, 0.0]
    """
    return LIFNeuron(tau=2.0, decay_input=False, v_reset=0.0, surrogate="triangle:1")


class SpikingVGG(nn.Module):
    """VGG of ``Conv3x3 -> BatchNorm -> neuron`` layers and 2 x 2 pooling, then global average pooling of
    the last spikes and a linear classifier applied at every time step.

    Args:
        cfg: a key of :data:`VGG_CONFIGS` ("vgg11") or an explicit tuple of widths and ``"P"``.
        in_channels: 2 for ON/OFF event frames.
        num_classes: outputs.
        pool: ``"avg"`` (average pooling of spikes, the usual choice in DVS SNNs) or ``"max"``.
        head_pool: side of the adaptive average pooling before the classifier (1 = global).
        dropout: dropout before the classifier.
        neuron: the spiking neuron, a zero-argument callable making one neuron module per conv layer
            (e.g. ``functools.partial(LIFNeuron, tau=2.0, v_reset=None)``; in YAML ``class_path``/
            ``init_args``; see :mod:`bsnn_lightning.models.neuron_factory`). None: the IMP paper's LIF,
            ``LIFNeuron(tau=2.0, v_reset=None)`` (soft reset). A learnable initial membrane potential
            is a neuron setting: ``imp="layer"`` can be given there; ``"neuron"`` / ``"channel"`` need
            the input shape: use ``ConvertNeurons`` or :func:`bsnn_lightning.convert` with an example input.

    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> net = SpikingVGG(cfg=(4, "P", 8, "P"), in_channels=2, num_classes=3)  # a tiny VGG
    >>> net(torch.rand(2, 1, 2, 8, 8)).shape  # [T, N, C, H, W] -> logits at every step
    torch.Size([2, 1, 3])
    >>> SpikingVGG(cfg="vgg19")
    Traceback (most recent call last):
        ...
    ValueError: expected cfg in ['vgg11', 'vgg13', 'vgg16'] or a tuple, got 'vgg19'
    """

    def __init__(
        self,
        cfg: str | tuple = "vgg11",
        in_channels: int = 2,
        num_classes: int = 10,
        pool: str = "avg",
        head_pool: int = 1,
        dropout: float = 0.0,
        neuron: NeuronFactory | None = None,
    ) -> None:
        super().__init__()
        if isinstance(cfg, str) and cfg not in VGG_CONFIGS:
            raise ValueError(f"expected cfg in {list(VGG_CONFIGS)} or a tuple, got {cfg!r}")
        layers = VGG_CONFIGS[cfg] if isinstance(cfg, str) else tuple(cfg)
        if pool not in ("avg", "max"):
            raise ValueError(f"expected pool 'avg' or 'max', got {pool!r}")
        make_neuron = neuron_maker(neuron, soft_reset_lif)
        blocks: list[nn.Module] = []
        previous = in_channels
        for item in layers:
            if item == "P":
                blocks.append(TimeDistributed(nn.AvgPool2d(2) if pool == "avg" else nn.MaxPool2d(2)))
                continue
            blocks.append(TimeDistributed(nn.Conv2d(previous, item, 3, padding=1, bias=False), nn.BatchNorm2d(item)))
            blocks.append(make_neuron())
            previous = item
        self.features = nn.Sequential(*blocks)
        head: list[nn.Module] = [nn.AdaptiveAvgPool2d(head_pool), nn.Flatten()]
        if dropout:
            head.append(nn.Dropout(dropout))
        head.append(nn.Linear(previous * head_pool * head_pool, num_classes))
        self.classifier = TimeDistributed(*head)

    def forward(self, x):
        check_frames(x)
        return self.classifier(self.features(x))


class VGGSNN(nn.Module):
    """TET's VGGSNN: ``64, 128, P, 256, 256, P, 512, 512, P, 512, 512, P`` conv-BN-LIF layers
    (3 x 3 convolutions with bias, Kaiming-normal fan-out init), average pooling, and one linear
    layer on the flattened ``512 x H/16 x W/16`` spikes at every step.

    The default neuron is TET's (:func:`tet_lif`): ``h_t = 0.5 v_{t-1} + x_t`` (``tau = 2``,
    ``decay_input=False``), spike when ``h_t >= 1`` (TET's code tests ``> 1``; equality has probability
    zero), hard reset to 0, triangle surrogate ``max(0, 1 - |h - 1|)``.

    Two relatives share the layout: TET's ``VGGSNNwoAP`` (``downsample="stride"``: the conv before each
    ``P`` has stride 2 and there is no pooling; the network TET's training script built as first released,
    f9bde41 of 2022-02-09, before 25b4459 of 2024-08-13 switched it to VGGSNN) and the IMP
    paper's 48 x 48 networks (``VGG11R48x48``: ``norm="time_scaled"`` with ``time_steps``, ``dropout=0.25``,
    and their neuron, e.g. with a per-neuron IMP).

    Args:
        input_size: ``(H, W)`` of the frames (48 x 48 in TET); must be divisible by 16.
        downsample: ``"avg"`` (2 x 2 average pooling, VGGSNN) or ``"stride"`` (stride-2 convolutions).
        norm: ``"bn"`` (batch norm over time and batch) or ``"time_scaled"``
            (:class:`~bsnn_lightning.models.layers.TimeScaledBatchNorm2d`, needs ``time_steps``).
        time_steps: T of the input, for ``norm="time_scaled"``.
        dropout: dropout before the classifier, drawn independently at every step (0 = none).
        neuron: the spiking neuron, a zero-argument callable making one neuron module per conv layer
            (in YAML ``class_path``/``init_args``; see :mod:`bsnn_lightning.models.neuron_factory`).
            None: :func:`tet_lif`. A neuron of this package with a per-neuron or per-channel IMP gets its
            layer's sample shape at construction (:func:`~bsnn_lightning.models.neuron_factory.fit_neuron`).

    Its widths are fixed (9.2 million parameters on 16 x 16 frames); on PyTorch's ``meta`` device the shapes
    come out without computing anything:

    >>> import torch
    >>> with torch.device("meta"):
    ...     net = VGGSNN(num_classes=3, input_size=(16, 16))
    ...     out = net(torch.empty(2, 1, 2, 16, 16))  # [T, N, C, H, W]
    >>> out.shape, sum(p.numel() for p in net.parameters())
    (torch.Size([2, 1, 3]), 9226947)
    >>> VGGSNN(input_size=(40, 40))
    Traceback (most recent call last):
        ...
    ValueError: expected input_size divisible by 16 (four 2 x 2 down-samplings), got (40, 40)
    """

    def __init__(
        self,
        in_channels: int = 2,
        num_classes: int = 10,
        input_size: tuple[int, int] = (48, 48),
        downsample: str = "avg",
        norm: str = "bn",
        time_steps: int | None = None,
        dropout: float = 0.0,
        neuron: NeuronFactory | None = None,
    ) -> None:
        super().__init__()
        height, width = halvable_size(input_size, 4, "four 2 x 2 down-samplings")
        if downsample not in ("avg", "stride"):
            raise ValueError(f"expected downsample 'avg' or 'stride', got {downsample!r}")
        if norm not in ("bn", "time_scaled"):
            raise ValueError(f"expected norm 'bn' or 'time_scaled', got {norm!r}")
        if norm == "time_scaled" and time_steps is None:
            raise ValueError("norm='time_scaled' scales each time step: expected time_steps (the input's T), got None")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"expected dropout in [0, 1), got {dropout}")
        make_neuron = neuron_maker(neuron, tet_lif)
        blocks: list[nn.Module] = []
        previous = in_channels
        layout = (64, 128, "P", 256, 256, "P", 512, 512, "P", 512, 512, "P")
        for index, item in enumerate(layout):
            if item == "P":
                if downsample == "avg":
                    blocks.append(TimeDistributed(nn.AvgPool2d(2)))
                    height, width = height // 2, width // 2
                continue
            stride = 2 if downsample == "stride" and layout[index + 1] == "P" else 1
            conv = nn.Conv2d(previous, item, 3, stride=stride, padding=1)
            nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
            if norm == "bn":
                blocks.append(TimeDistributed(conv, nn.BatchNorm2d(item)))
            else:
                blocks += [TimeDistributed(conv), TimeScaledBatchNorm2d(item, time_steps)]
            if stride == 2:
                height, width = height // 2, width // 2
            blocks.append(fit_neuron(make_neuron(), (item, height, width), f"conv layer {len(blocks)}"))
            previous = item
        self.features = nn.Sequential(*blocks)
        head: list[nn.Module] = [nn.Flatten()]
        if dropout:
            head.append(nn.Dropout(dropout))
        head.append(nn.Linear(512 * height * width, num_classes))
        self.classifier = TimeDistributed(*head)

    def forward(self, x):
        check_frames(x)
        return self.classifier(self.features(x))
