"""Spiking networks for the recipes: from this package's neurons, and from snnTorch's and SpikingJelly's."""

from .convnet import SpikingConvNet, TimeDistributed
from .library import SnnTorchConvNet, SpikingJellyConvNet

__all__ = ["SnnTorchConvNet", "SpikingJellyConvNet", "SpikingConvNet", "TimeDistributed"]
