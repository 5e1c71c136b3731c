"""bsnn-lightning: bifurcation dynamics, learnable IMP, LTS readout and label-smoothed TET for spiking
neural networks, with a PyTorch Lightning front end.

    >>> from bsnn_lightning import convert, losses, readouts
"""

from . import engine, losses, nir_exchange, readouts
from .adapters.inplace import same_equations
from .callbacks import ConvertNeurons, EigenvalueMonitor, FiringRateMonitor, ResetStates, SpikeFigures, SpikeMonitor
from .classifier import SpikingClassifier
from .memory import MemoryOptimization
from .convert import (
    convert,
    firing_rates,
    materialize,
    neuron_param_groups,
    recordings,
    reset_states,
    set_monitoring,
    spiking_neurons,
)
from .neuron_params import MethodNeuron, MethodSettings, Recording
from .neurons import BifurcationNeuron, EngineNeuron, LIFNeuron

__version__ = "0.1.0"

__all__ = [
    "BifurcationNeuron",
    "ConvertNeurons",
    "EigenvalueMonitor",
    "EngineNeuron",
    "FiringRateMonitor",
    "LIFNeuron",
    "MemoryOptimization",
    "MethodNeuron",
    "MethodSettings",
    "Recording",
    "ResetStates",
    "SpikeFigures",
    "SpikeMonitor",
    "SpikingClassifier",
    "convert",
    "engine",
    "firing_rates",
    "losses",
    "materialize",
    "neuron_param_groups",
    "readouts",
    "recordings",
    "reset_states",
    "same_equations",
    "set_monitoring",
    "spiking_neurons",
]
