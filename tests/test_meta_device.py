"""This package's own neurons on the ``meta`` device (shapes only, no values: what deferred initialisation,
FLOP counters and memory planners use): built there or moved there, they propagate shapes through forward
and backward, create their shape-dependent parameters (IMP, eigenvalues) with the shapes a CPU build gets,
convert, and print, without reading a value (any ``.item()`` on a meta tensor raises)."""

import pytest
import torch
from torch import nn

import bsnn_lightning as bl

X_SHAPE = (4, 2, 3, 5, 5)  # [T, N, C, H, W]
NEURONS = {
    "lif": (bl.LIFNeuron, {}),
    "lif, IMP per channel, learnable tau and threshold": (bl.LIFNeuron, dict(imp="channel", learn_tau=True, learn_threshold=True)),
    "bifurcation, IMP per neuron": (bl.BifurcationNeuron, dict(imp="neuron")),
    "bifurcation, coupled, IMP per layer": (bl.BifurcationNeuron, dict(structure="coupled", imp="layer")),
}
# the shaped parameters are created at the first forward here on purpose (the path that read the threshold)
pytestmark = pytest.mark.filterwarnings("ignore:.*created its shape-dependent parameters:UserWarning")


def _shapes(module: nn.Module) -> dict:
    return {name: tuple(p.shape) for name, p in module.named_parameters()}


@pytest.mark.parametrize("where", ["built on meta", "moved to meta"])
@pytest.mark.parametrize("name", NEURONS)
def test_own_neurons_propagate_shapes_on_the_meta_device(name, where):
    cls, options = NEURONS[name]
    on_cpu = cls(**options)
    on_cpu(torch.rand(X_SHAPE))
    if where == "built on meta":
        with torch.device("meta"):
            neuron = cls(**options)
    else:
        neuron = cls(**options).to("meta")
    x = torch.empty(X_SHAPE, device="meta", requires_grad=True)
    spikes = neuron(x)
    assert spikes.is_meta and spikes.shape == X_SHAPE and neuron.v.shape == X_SHAPE[1:]
    assert _shapes(neuron) == _shapes(on_cpu) and all(p.is_meta for p in neuron.parameters())
    spikes.sum().backward()
    assert x.grad.is_meta and x.grad.shape == X_SHAPE
    assert all(p.grad is not None and p.grad.shape == p.shape for p in neuron.parameters())
    assert "threshold=meta" in repr(neuron)


def _net():
    return nn.Sequential(nn.Linear(6, 8), bl.LIFNeuron(), nn.Linear(8, 3), bl.LIFNeuron(tau=4.0))


@pytest.mark.parametrize("dynamics, imp", [(None, "neuron"), (None, "channel")])
def test_a_model_converts_on_the_meta_device_with_the_shapes_of_a_cpu_conversion(dynamics, imp):
    on_cpu = bl.convert(_net(), dynamics, imp=imp, example_input=torch.rand(4, 2, 6))
    with torch.device("meta"):
        model = _net()
    bl.convert(model, dynamics, imp=imp, example_input=torch.empty(4, 2, 6, device="meta"))
    assert _shapes(model) == _shapes(on_cpu) and all(p.is_meta for p in model.parameters())
    bl.reset_states(model)
    out = model(torch.empty(4, 2, 6, device="meta"))
    assert out.is_meta and out.shape == (4, 2, 3)
    assert "tau=meta" in repr(model)


def test_a_deferred_check_on_the_meta_device_leaves_nothing_to_read():
    """A value check on meta tensors has no value to read: the flag it leaves (kept, so that tests can count the
    checks a step defers) must not make the next ``raise_deferred`` (any model's, later in the process) fail
    reading it."""
    from bsnn_lightning.engine import checks

    checks.clear()
    neuron = bl.LIFNeuron(learn_tau=True, check_finite="defer").to("meta")
    neuron(torch.empty(X_SHAPE, device="meta"))
    assert checks.pending() >= 1
    checks.raise_deferred()
    assert checks.pending() == 0


@pytest.mark.parametrize("learn_threshold", [False, True])
def test_own_lif_neurons_become_bifurcation_neurons_on_the_meta_device(learn_threshold):
    """Converting this package's LIFNeuron to bifurcation dynamics replaces the module; on ``meta`` it must not
    read the threshold's value, and the new neuron's parameters have the shapes a CPU conversion gives."""
    def net():
        return nn.Sequential(nn.Linear(6, 8), bl.LIFNeuron(threshold=2.0, v_reset=1.5, learn_threshold=learn_threshold))

    on_cpu = bl.convert(net(), "bifurcation", imp="channel", example_input=torch.rand(4, 2, 6))
    assert float(on_cpu[1].threshold) == 2.0
    with torch.device("meta"):
        model = net()
    bl.convert(model, "bifurcation", imp="channel", example_input=torch.empty(4, 2, 6, device="meta"))
    assert type(model[1]).__name__ == "BifurcationNeuron" and model[1].threshold.is_meta
    assert _shapes(model) == _shapes(on_cpu) and all(p.is_meta for p in model.parameters())
    assert model(torch.empty(4, 2, 6, device="meta")).shape == (4, 2, 8)
