"""Spiking networks for the recipes, built from this package's neurons."""

from .convnet import SpikingConvNet, TimeDistributed

__all__ = ["SpikingConvNet", "TimeDistributed"]
