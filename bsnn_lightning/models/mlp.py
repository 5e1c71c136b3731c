"""A fully connected spiking network: ``[T, N, ...] -> [T, N, num_classes]``.

Frames are flattened per time step, pass through spiking hidden layers, and a linear layer reads
logits at every step. By default the hidden layers get BSNN dynamics (Zhang, Zhang & Zhou, JMLR
2021): one learnable eigenvalue per neuron, spread over ``(-0.8, 0)`` and kept inside ``(-1, 0.2)``
(:func:`bsnn_neuron`; see :class:`~bsnn_lightning.BifurcationNeuron` and ``docs/methods.md``).
"""

from __future__ import annotations

from torch import nn

from ..neurons import BifurcationNeuron, EngineNeuron
from .layers import TimeDistributed
from .neuron_factory import NeuronFactory, neuron_maker

__all__ = ["SpikingMLP", "bsnn_neuron"]


def bsnn_neuron() -> BifurcationNeuron:
    """``BifurcationNeuron(structure="diagonal", eigen_init=(-0.8, 0.0), bounds=(-1.0, 0.2), v_reset=None)``
    (threshold 1, ATan surrogate): the default neuron of :class:`SpikingMLP`.

    >>> neuron = bsnn_neuron()
    >>> neuron.materialize((4,))  # one eigenvalue per neuron, drawn in eigen_init
    >>> neuron.eigenvalues.shape, bool(((neuron.eigenvalues >= -0.8) & (neuron.eigenvalues <= 0.0)).all())
    (torch.Size([4]), True)
    """
    return BifurcationNeuron(structure="diagonal", eigen_init=(-0.8, 0.0), bounds=(-1.0, 0.2), v_reset=None)


class SpikingMLP(nn.Module):
    """``Flatten -> (Linear -> spiking neuron) x len(hidden) -> Linear`` at every time step.

    Args:
        in_features: features of one flattened step (``2 * 34 * 34`` for N-MNIST frames).
        hidden: widths of the spiking hidden layers.
        num_classes: outputs.
        dropout: dropout before each linear layer after the first.
        neuron: the spiking neuron, a zero-argument callable making one neuron module per hidden
            layer (e.g. ``functools.partial(LIFNeuron, tau=2.0, v_reset=None)``, or
            ``functools.partial(BifurcationNeuron, structure="coupled", imp="neuron")``; in YAML
            ``class_path``/``init_args``; see :mod:`bsnn_lightning.models.neuron_factory`). None:
            :func:`bsnn_neuron`. A neuron of this package (:class:`~bsnn_lightning.EngineNeuron`) made
            without a ``shape`` is given its layer's, ``(width,)``, at once, so that its per-neuron
            parameters (eigenvalues, IMP) exist before an optimizer is built.

    >>> import torch
    >>> _ = torch.manual_seed(0)
    >>> net = SpikingMLP(in_features=2 * 8 * 8, hidden=(16,), num_classes=3)
    >>> net(torch.rand(2, 1, 2, 8, 8)).shape  # each step flattened to 128 features
    torch.Size([2, 1, 3])
    >>> type(net.layers[2]).__name__, net.layers[2].eigenvalues.shape  # sized for its layer already
    ('BifurcationNeuron', torch.Size([16]))
    """

    def __init__(
        self,
        in_features: int = 2 * 34 * 34,
        hidden: tuple[int, ...] = (800,),
        num_classes: int = 10,
        dropout: float = 0.0,
        neuron: NeuronFactory | None = None,
    ) -> None:
        super().__init__()
        make_neuron = neuron_maker(neuron, bsnn_neuron)
        layers: list[nn.Module] = [TimeDistributed(nn.Flatten())]
        previous = in_features
        for i, width in enumerate(hidden):
            if dropout and i:
                layers.append(TimeDistributed(nn.Dropout(dropout)))
            layers.append(TimeDistributed(nn.Linear(previous, width)))
            spiking = make_neuron()
            if isinstance(spiking, EngineNeuron):
                if spiking.sample_shape is None:
                    spiking.materialize((width,))
                elif tuple(spiking.sample_shape) != (width,):
                    raise ValueError(
                        f"expected the neuron of hidden layer {i} to be built for samples of shape [{width}] "
                        f"(the layer's width), got one built for {list(spiking.sample_shape)}"
                    )
            layers.append(spiking)
            previous = width
        if dropout and hidden:
            layers.append(TimeDistributed(nn.Dropout(dropout)))
        layers.append(TimeDistributed(nn.Linear(previous, num_classes)))
        self.layers = nn.Sequential(*layers)

    def forward(self, x):
        if x.dim() < 3:
            raise ValueError(f"expected x of shape [T, N, ...], got {list(x.shape)}")
        return self.layers(x)
