"""The adapter for this package's own neurons (:mod:`bsnn_lightning.neurons`)."""

from __future__ import annotations

from torch import nn

from ..neuron_params import MethodSettings
from ..neurons import BifurcationNeuron, EngineNeuron, LIFNeuron
from . import Adapter, Plan, register_adapter


class BsnnAdapter(Adapter):
    name = "bsnn"

    def owns(self, module: nn.Module) -> bool:
        return isinstance(module, EngineNeuron)

    def plan(self, module, settings: MethodSettings | None) -> Plan:
        if settings is None:
            raise ValueError("backend 'native' keeps a library's own neuron; bsnn_lightning's own neurons always run on the engine")
        if settings.dynamics == "lif" and isinstance(module, BifurcationNeuron):
            raise ValueError(
                "convert(dynamics='lif') cannot turn a BifurcationNeuron back into LIF (its time constant is "
                "not defined); build the model with LIFNeuron instead"
            )
        return Plan(settings)

    def apply(self, module, plan: Plan):
        settings = plan.settings
        if isinstance(module, LIFNeuron) and settings.dynamics == "bifurcation":
            return _lif_to_bifurcation(module, settings)
        module.bsnn_configure(settings)
        return module

    def reset(self, module) -> None:
        module.reset_state()


def _lif_to_bifurcation(lif: LIFNeuron, settings: MethodSettings) -> BifurcationNeuron:
    """A BifurcationNeuron with the LIF neuron's threshold, reset, surrogate and settings (a LIF neuron's time
    constant has no place in bifurcation dynamics, so the module is replaced, keeping a learned IMP)."""
    neuron = BifurcationNeuron(
        threshold=float(lif.threshold),
        learn_threshold=isinstance(lif.threshold, nn.Parameter),
        v_reset=lif.v_reset,
        detach_reset=lif.detach_reset,
        surrogate=lif.surrogate,
    ).to(lif.threshold.device)
    neuron.bsnn_sample_shape = lif.bsnn_sample_shape
    if "bsnn_seen_shape" in lif.__dict__:  # the LIF neuron ran: its input shape gives the eigenvalues theirs
        neuron.__dict__["bsnn_seen_shape"] = lif.__dict__["bsnn_seen_shape"]
    imp = lif.imp
    if imp is not None and settings.imp is not None:
        neuron.imp = nn.Parameter(imp.detach().clone())
    neuron.bsnn_configure(settings)
    return neuron


register_adapter(BsnnAdapter())
