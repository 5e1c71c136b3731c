"""A fully connected spiking network: ``[T, N, ...] -> [T, N, num_classes]``.

Frames are flattened per time step, pass through spiking hidden layers, and a linear layer reads
logits at every step. With ``neuron="bifurcation"`` the hidden layers get BSNN dynamics (Zhang,
Zhang & Zhou, JMLR 2021): one learnable eigenvalue per neuron, spread over ``eigen_init`` and kept
inside ``bounds`` (see :class:`~bsnn_lightning.BifurcationNeuron` and ``docs/methods.md``).
"""

from __future__ import annotations

from torch import nn

from ..neurons import BifurcationNeuron, LIFNeuron
from .convnet import TimeDistributed

__all__ = ["SpikingMLP"]


class SpikingMLP(nn.Module):
    """``Flatten -> (Linear -> spiking neuron) x len(hidden) -> Linear`` at every time step.

    Args:
        in_features: features of one flattened step (``2 * 34 * 34`` for N-MNIST frames).
        hidden: widths of the spiking hidden layers.
        num_classes: outputs.
        neuron: ``"bifurcation"`` or ``"lif"``.
        structure: bifurcation structure, ``"diagonal"`` or ``"coupled"``.
        eigen_init, bounds: bifurcation eigenvalue initial spread and clamp.
        tau: LIF time constant (``neuron="lif"``).
        v_reset: ``None`` = soft reset (the default for both), or a hard-reset value.
        threshold, surrogate: firing threshold and surrogate gradient.
        imp: learnable initial membrane potential, ``"neuron"``, ``"channel"`` or ``"layer"``.
        dropout: dropout before each linear layer after the first.
    """

    def __init__(
        self,
        in_features: int = 2 * 34 * 34,
        hidden: tuple[int, ...] = (800,),
        num_classes: int = 10,
        neuron: str = "bifurcation",
        structure: str = "diagonal",
        eigen_init: tuple[float, float] = (-0.8, 0.0),
        bounds: tuple[float, float] = (-1.0, 0.2),
        tau: float = 2.0,
        v_reset: float | None = None,
        threshold: float = 1.0,
        surrogate: str = "atan",
        imp: str | None = None,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if neuron not in ("bifurcation", "lif"):
            raise ValueError(f"expected neuron 'bifurcation' or 'lif', got {neuron!r}")
        layers: list[nn.Module] = [TimeDistributed(nn.Flatten())]
        previous = in_features
        for i, width in enumerate(hidden):
            if dropout and i:
                layers.append(TimeDistributed(nn.Dropout(dropout)))
            layers.append(TimeDistributed(nn.Linear(previous, width)))
            common = dict(v_reset=v_reset, threshold=threshold, surrogate=surrogate, imp=imp, shape=(width,))
            if neuron == "bifurcation":
                layers.append(BifurcationNeuron(structure=structure, eigen_init=tuple(eigen_init), bounds=tuple(bounds), **common))
            else:
                layers.append(LIFNeuron(tau=tau, **common))
            previous = width
        if dropout and hidden:
            layers.append(TimeDistributed(nn.Dropout(dropout)))
        layers.append(TimeDistributed(nn.Linear(previous, num_classes)))
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        if x.dim() < 3:
            raise ValueError(f"expected x of shape [T, N, ...], got {list(x.shape)}")
        return self.layers(x)
