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
        if settings.dynamics == "bifurcation" and isinstance(module, LIFNeuron) and type(module) is not LIFNeuron:
            raise ValueError(
                f"{type(module).__module__}.{type(module).__qualname__} is a subclass of LIFNeuron: bifurcation dynamics "
                "replace a LIFNeuron with a BifurcationNeuron, which would drop what the subclass adds; build the model "
                "with BifurcationNeuron (or a subclass of it) instead"
            )
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
    learned = isinstance(lif.threshold, nn.Parameter)
    # on the meta device the threshold has no value to read: the new neuron is built with a stand-in that passes
    # its checks (the LIF neuron passed them) and takes the LIF neuron's threshold tensor below, as everywhere
    on_meta = lif.threshold.device.type == "meta"
    stand_in = (1.0 if lif.v_reset is None else abs(lif.v_reset) + 1.0) if on_meta else float(lif.threshold)
    neuron = BifurcationNeuron(
        threshold=stand_in,
        learn_threshold=learned,
        v_reset=lif.v_reset,
        detach_reset=lif.detach_reset,
        surrogate=lif.surrogate,
    ).to(lif.threshold.device)
    threshold = lif.threshold.detach().clone()
    if learned:
        neuron.threshold = nn.Parameter(threshold)
    else:
        neuron.threshold = threshold  # a registered buffer: assignment keeps it one
    neuron.bsnn_sample_shape = lif.bsnn_sample_shape
    if "bsnn_seen_shape" in lif.__dict__:  # the LIF neuron ran: its input shape gives the eigenvalues theirs
        neuron.__dict__["bsnn_seen_shape"] = lif.__dict__["bsnn_seen_shape"]
    imp = lif.imp
    if imp is not None and settings.imp is not None:
        neuron.imp = nn.Parameter(imp.detach().clone())
    neuron.bsnn_configure(settings)
    return neuron


register_adapter(BsnnAdapter())
