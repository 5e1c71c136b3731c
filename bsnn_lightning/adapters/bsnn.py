"""The adapter for this package's own neurons (:mod:`bsnn_lightning.neurons`)."""

from __future__ import annotations

from torch import nn

from ..neurons import BifurcationNeuron, EngineNeuron, LIFNeuron
from . import Adapter, register_adapter

#: options of ``convert`` that configure bifurcation dynamics
BIFURCATION_OPTIONS = ("structure", "granularity", "eigen_init", "bounds")


class BsnnAdapter(Adapter):
    name = "bsnn"

    def owns(self, module: nn.Module) -> bool:
        return isinstance(module, EngineNeuron)

    def plan(self, module, *, dynamics, imp, backend, options, step_mode=None):
        if backend == "native":
            raise ValueError("backend 'native' keeps a library's own neuron; bsnn_lightning's own neurons always run on the engine")
        if step_mode not in (None, "s", "m"):
            raise ValueError(f"expected step_mode 's', 'm' or None, got {step_mode!r}")
        unknown = sorted(set(options) - set(BIFURCATION_OPTIONS))
        if unknown:
            raise ValueError(f"unknown convert options {unknown}; expected some of {list(BIFURCATION_OPTIONS)}")
        if dynamics == "lif" and isinstance(module, BifurcationNeuron):
            raise ValueError(
                "convert(dynamics='lif') cannot turn a BifurcationNeuron back into LIF (its time constant is "
                "not defined); build the model with LIFNeuron instead"
            )
        to_bifurcation = dynamics == "bifurcation" and isinstance(module, LIFNeuron)
        if options and not (to_bifurcation or isinstance(module, BifurcationNeuron)):
            raise ValueError(f"options {sorted(options)} apply to dynamics='bifurcation' only")
        return dict(to_bifurcation=to_bifurcation, imp=imp, backend=backend, options=options, step_mode=step_mode)

    def apply(self, module, plan):
        if plan["to_bifurcation"]:
            module = _lif_to_bifurcation(module, plan["options"])
        imp = plan["imp"]
        wanted_imp = None if imp == "none" else imp
        if imp is not None and module.imp_mode != wanted_imp:  # idempotent: a second convert keeps learned values
            module.set_imp(wanted_imp)
        if plan["backend"] is not None:
            module.backend = plan["backend"]
        if plan["step_mode"] is not None:
            module.step_mode = plan["step_mode"]
        return module

    def needs_shape(self, module) -> bool:
        if module.is_materialized:
            return False
        return (module.imp_mode in ("neuron", "channel")) or isinstance(module, BifurcationNeuron)

    def materialize(self, module, sample_shape, device=None) -> None:
        module.materialize(sample_shape)

    def reset(self, module) -> None:
        module.reset_state()

    def spikes(self, module):
        return module.last_spikes

    def set_monitor(self, module, on: bool) -> None:
        module.monitor = on
        if not on:
            module.last_spikes = None


def _lif_to_bifurcation(lif: LIFNeuron, options: dict) -> BifurcationNeuron:
    """A BifurcationNeuron with the LIF neuron's threshold, reset, surrogate, backend and step mode."""
    neuron = BifurcationNeuron(
        threshold=float(lif.threshold),
        learn_threshold=isinstance(lif.threshold, nn.Parameter),
        v_reset=lif.v_reset,
        detach_reset=lif.detach_reset,
        surrogate=lif.surrogate,
        imp=lif.imp_mode,
        imp_init=lif.imp_init,
        backend=lif.backend,
        step_mode=lif.step_mode,
        **options,
    )
    if lif.is_materialized:
        neuron.materialize(lif.sample_shape)
    if lif.imp is not None and neuron.imp is not None:
        neuron.imp.data.copy_(lif.imp.data)
    return neuron.to(lif.threshold.device)


register_adapter(BsnnAdapter())
