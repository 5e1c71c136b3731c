"""Spiking networks for the recipes: from this package's neurons, and from snnTorch's and SpikingJelly's."""

from .convnet import SpikingConvNet, TimeDistributed
from .gesture import DVSGestureNet
from .library import SnnTorchConvNet, SpikingJellyConvNet
from .mlp import SpikingMLP
from .vgg import VGGSNN, SpikingVGG

__all__ = [
    "DVSGestureNet",
    "SnnTorchConvNet",
    "SpikingConvNet",
    "SpikingJellyConvNet",
    "SpikingMLP",
    "SpikingVGG",
    "TimeDistributed",
    "VGGSNN",
]
