"""How the networks of :mod:`bsnn_lightning.models` take their spiking neuron: one zero-argument factory.

Every network has one argument for it, ``neuron``: a callable that takes no argument and returns a new
neuron module (an ``nn.Module`` mapping ``[T, N, ...]`` to spikes of the same shape) each time it is
called; the network calls it once per spiking layer. ``None`` gives the network's own default (its
docstring says which). In Python::

    SpikingVGG(neuron=functools.partial(LIFNeuron, tau=2.0, v_reset=None, imp="layer"))
    SpikingConvNet(neuron=lambda: BifurcationNeuron(structure="coupled"))

In a LightningCLI recipe, jsonargparse builds the factory from ``class_path`` / ``init_args`` (the
class is instantiated with those arguments at every call)::

    neuron:
      class_path: bsnn_lightning.LIFNeuron
      init_args:
        tau: 2.0
        v_reset: null
"""

from __future__ import annotations

from typing import Callable

from torch import nn

from ..neurons import EngineNeuron, LIFNeuron

__all__ = ["NeuronFactory", "fit_neuron", "neuron_maker", "soft_reset_lif"]

NeuronFactory = Callable[[], nn.Module]
"""A zero-argument callable returning a new spiking neuron module."""


def soft_reset_lif() -> LIFNeuron:
    """``LIFNeuron(tau=2.0, v_reset=None)``: tau 2, soft reset, threshold 1, ATan surrogate; the default
    neuron of :class:`~bsnn_lightning.models.SpikingConvNet` and :class:`~bsnn_lightning.models.SpikingVGG`.

    >>> import torch
    >>> neuron = soft_reset_lif()
    >>> neuron(torch.full((4, 1, 1), 1.5)).flatten().tolist()  # [T, N, features]
    [0.0, 1.0, 0.0, 1.0]
    >>> neuron.v.flatten().tolist()  # the soft reset subtracts the threshold: 1.15625 - 1
    [0.15625]
    """
    return LIFNeuron(tau=2.0, v_reset=None)


def neuron_maker(neuron: NeuronFactory | None, default: NeuronFactory) -> NeuronFactory:
    """``neuron`` (``default`` when None) wrapped so that every call is checked to give a new ``nn.Module``.

    >>> make = neuron_maker(None, soft_reset_lif)  # None: the network's default
    >>> first, second = make(), make()
    >>> type(first).__name__, first is second
    ('LIFNeuron', False)
    >>> shared = soft_reset_lif()
    >>> make = neuron_maker(lambda: shared, soft_reset_lif)
    >>> _ = make()
    >>> make()  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    ValueError: expected neuron() to return a new module at every call, got the same LIFNeuron twice ...
    """
    if isinstance(neuron, nn.Module):
        raise TypeError(
            "expected neuron to be a zero-argument callable that makes a new neuron module at each call "
            f"(e.g. LIFNeuron, or functools.partial(LIFNeuron, tau=2.0)), got a module itself: {neuron!r}"
        )
    if neuron is not None and not callable(neuron):
        raise TypeError(
            "expected neuron to be a zero-argument callable returning an nn.Module "
            f"(e.g. functools.partial(LIFNeuron, tau=2.0)) or None, got {neuron!r}"
        )
    factory = default if neuron is None else neuron
    made: list[nn.Module] = []

    def make() -> nn.Module:
        module = factory()
        if not isinstance(module, nn.Module):
            raise TypeError(f"expected neuron() to return an nn.Module, got {module!r} from {factory!r}")
        if any(module is m for m in made):
            raise ValueError(
                f"expected neuron() to return a new module at every call, got the same {type(module).__name__} "
                "twice (one module in several layers would share its state): pass a class or a function, "
                "not a module"
            )
        made.append(module)
        return module

    return make


def fit_neuron(neuron: nn.Module, sample_shape: tuple[int, ...] | None, where: str) -> nn.Module:
    """Give a neuron of this package that waits for its input's shape (a per-neuron or per-channel IMP, or
    eigenvalues) the shape of one sample of its layer, ``[C, ...]``, so that its parameters exist before an
    optimizer is built; check one built for a shape against it. Other neurons (and ``sample_shape=None``,
    when the network does not know its input size) are left as they are.

    >>> neuron = fit_neuron(LIFNeuron(imp="channel"), (4, 8, 8), "conv layer 1")
    >>> neuron.sample_shape, neuron.imp.shape  # one initial potential per channel, ready for the optimizer
    ((4, 8, 8), torch.Size([4]))
    >>> fit_neuron(LIFNeuron(imp="channel", shape=(4, 8, 8)), (8, 8, 8), "layer 3")
    Traceback (most recent call last):
        ...
    ValueError: expected the neuron of layer 3 to be built for samples of shape [8, 8, 8], got one built for [4, 8, 8]
    """
    if sample_shape is None or not isinstance(neuron, EngineNeuron):
        return neuron
    sample_shape = tuple(int(s) for s in sample_shape)
    if neuron.sample_shape is not None:
        if tuple(neuron.sample_shape) != sample_shape:
            raise ValueError(
                f"expected the neuron of {where} to be built for samples of shape {list(sample_shape)}, "
                f"got one built for {list(neuron.sample_shape)}"
            )
    elif neuron.bsnn_needs_shape():
        neuron.materialize(sample_shape)
    return neuron
