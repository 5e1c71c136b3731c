"""Spiking networks for the recipes: from this package's neurons, and from snnTorch's and SpikingJelly's.

The networks built from this package's neurons (``SpikingConvNet``, ``SpikingVGG``, ``StagedVGG``, ``VGGSNN``,
``DVSGestureNet``, ``SpikingMLP``) take their neuron as one argument, ``neuron``: a zero-argument factory
(:mod:`bsnn_lightning.models.neuron_factory`), each with its recipe's neuron as the default.
"""

from .convnet import SpikingConvNet
from .gesture import DVSGestureNet
from .layers import TimeDistributed
from .library import SnnTorchConvNet, SpikingJellyConvNet
from .mlp import SpikingMLP
from .neuron_factory import NeuronFactory
from .staged_vgg import StagedVGG
from .vgg import VGGSNN, SpikingVGG

__all__ = [
    "DVSGestureNet",
    "NeuronFactory",
    "SnnTorchConvNet",
    "SpikingConvNet",
    "SpikingJellyConvNet",
    "SpikingMLP",
    "SpikingVGG",
    "StagedVGG",
    "TimeDistributed",
    "VGGSNN",
]
