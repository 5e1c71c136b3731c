"""The quickstart network built from snnTorch's and from SpikingJelly's own modules.

Each is written the way that library's tutorials write it, with no bsnn_lightning neuron inside: the
``ConvertNeurons`` callback (or ``bsnn_lightning.convert``) is what brings the engine, the bifurcation
dynamics and the IMP to them. Both map ``[T, N, C, H, W]`` to logits ``[T, N, num_classes]``.
"""

from __future__ import annotations

import torch
from torch import nn

from .layers import check_frames, pooled_features


class SnnTorchConvNet(nn.Module):
    """conv-BN-``snntorch.Leaky``-pool blocks, a spiking hidden layer and a linear read-out, as an
    ``nn.Sequential`` of ``init_hidden=True`` neurons called once per time step (snnTorch's way).

    After ``convert(..., step_mode="m")`` the same ``Sequential`` takes the whole sequence in one call, and
    :meth:`forward` hands it over at once.

    Args:
        beta: membrane decay (0.5 is SpikingJelly's tau = 2).
        reset_mechanism: snnTorch's ``"subtract"`` (soft), ``"zero"`` or ``"none"``.

    Converted to the engine's LIF (same equations), it gives the library's spikes and logits bit for bit:

    >>> import bsnn_lightning as bl
    >>> _ = torch.manual_seed(0)
    >>> net = SnnTorchConvNet(in_channels=2, num_classes=3, channels=(4,), hidden=8, input_size=(8, 8))
    >>> x = torch.rand(2, 1, 2, 8, 8)  # [T, N, C, H, W]
    >>> native = net(x)  # snnTorch's loop: one call of the Sequential per step
    >>> bl.reset_states(net)
    >>> _ = bl.convert(net, "lif", step_mode="m", backend="torch")  # in place; "auto" picks the fast backend
    >>> native.shape, torch.equal(net(x), native)
    (torch.Size([2, 1, 3]), True)
    """

    def __init__(
        self,
        in_channels: int = 2,
        num_classes: int = 10,
        channels: tuple[int, ...] = (16, 32),
        hidden: int = 128,
        input_size: tuple[int, int] = (34, 34),
        beta: float = 0.5,
        threshold: float = 1.0,
        reset_mechanism: str = "subtract",
    ) -> None:
        super().__init__()
        import snntorch as snn

        def leaky():
            return snn.Leaky(beta=beta, threshold=threshold, init_hidden=True, reset_mechanism=reset_mechanism)

        layers: list[nn.Module] = []
        previous = in_channels
        for width in channels:
            layers += [nn.Conv2d(previous, width, 3, padding=1, bias=False), nn.BatchNorm2d(width), leaky(), nn.MaxPool2d(2)]
            previous = width
        layers += [nn.Flatten(), nn.Linear(pooled_features(in_channels, channels, input_size), hidden), leaky(), nn.Linear(hidden, num_classes)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_frames(x)
        if _runs_sequences(self.net):
            return self.net(x)
        return torch.stack([self.net(x[t]) for t in range(x.shape[0])])


class SpikingJellyConvNet(nn.Module):
    """The same network from ``spikingjelly.activation_based`` layers and ``LIFNode``s in multi-step mode.

    Args:
        tau, v_reset, detach_reset: ``LIFNode`` settings (``v_reset=None`` is the soft reset).

    Converted to the engine's LIF (same equations), its neurons give the library's spikes bit for bit:

    >>> import bsnn_lightning as bl
    >>> _ = torch.manual_seed(0)
    >>> net = SpikingJellyConvNet(in_channels=2, num_classes=3, channels=(4,), hidden=8, input_size=(8, 8))
    >>> x = torch.rand(2, 1, 2, 8, 8)  # [T, N, C, H, W]
    >>> net(x).shape
    torch.Size([2, 1, 3])
    >>> block = net.net[:3]  # conv, batch norm, LIFNode
    >>> bl.reset_states(net)
    >>> native = block(x)  # SpikingJelly's multi-step LIFNode
    >>> bl.reset_states(net)
    >>> _ = bl.convert(net, "lif", backend="torch")  # in place; "auto" picks the fast backend
    >>> int(native.sum()), torch.equal(block(x), native)
    (15, True)
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
        detach_reset: bool = False,
    ) -> None:
        super().__init__()
        from spikingjelly.activation_based import functional, layer, neuron, surrogate

        def lif():
            return neuron.LIFNode(tau=tau, v_reset=v_reset, detach_reset=detach_reset, surrogate_function=surrogate.ATan())

        layers: list[nn.Module] = []
        previous = in_channels
        for width in channels:
            layers += [layer.Conv2d(previous, width, 3, padding=1, bias=False), layer.BatchNorm2d(width), lif(), layer.MaxPool2d(2)]
            previous = width
        layers += [layer.Flatten(), layer.Linear(pooled_features(in_channels, channels, input_size), hidden), lif(), layer.Linear(hidden, num_classes)]
        self.net = nn.Sequential(*layers)
        functional.set_step_mode(self.net, "m")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        check_frames(x)
        return self.net(x)


def _runs_sequences(net: nn.Module) -> bool:
    """True once a conversion has put the snnTorch neurons in sequence mode (``step_mode="m"``)."""
    return any(getattr(getattr(m, "bsnn_settings", None), "step_mode", None) == "m" for m in net.modules())
