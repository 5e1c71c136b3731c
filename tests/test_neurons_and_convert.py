"""Neuron modules, IMP, convert, reset and parameter groups."""

import pytest
import torch
from torch import nn

import bsnn_lightning as bl
from bsnn_lightning import BifurcationNeuron, LIFNeuron
from bsnn_lightning.models import SpikingConvNet, TimeDistributed


def mlp():
    return nn.Sequential(TimeDistributed(nn.Linear(6, 5)), LIFNeuron(), TimeDistributed(nn.Linear(5, 3)), LIFNeuron())


def test_multistep_and_single_step_modes_agree():
    torch.manual_seed(0)
    x = torch.randn(7, 4, 5) + 0.5
    multi = LIFNeuron(tau=3.0, v_reset=None)
    single = LIFNeuron(tau=3.0, v_reset=None, step_mode="s")
    expected = multi(x)
    got = torch.stack([single(x[t]) for t in range(7)])
    assert torch.equal(expected, got)
    assert torch.equal(multi.v, single.v)


def test_state_persists_until_reset_and_chunks_equal_one_sequence():
    torch.manual_seed(0)
    x = torch.randn(8, 2, 3) + 0.5
    neuron = LIFNeuron()
    whole = neuron(x)
    neuron.reset_state()
    chunks = torch.cat([neuron(x[:3]), neuron(x[3:])])
    assert torch.equal(whole, chunks)


def test_batch_size_change_without_reset_is_an_error_not_a_silent_restart():
    neuron = LIFNeuron()
    neuron(torch.rand(4, 8, 3))
    with pytest.raises(ValueError, match=r"holds a state of shape \[8, 3\].*got input of shape \[4, 5, 3\]: call reset_state"):
        neuron(torch.rand(4, 5, 3))
    bl.reset_states(neuron)
    assert neuron(torch.rand(4, 5, 3)).shape == (4, 5, 3)


def test_imp_applies_at_the_start_of_each_sequence_only():
    neuron = BifurcationNeuron(shape=(1,), imp="layer", eigen_init=(0.0, 0.0))  # conservative: h = v + x
    neuron.imp.data.fill_(0.75)
    x = torch.tensor([0.5, 0.0]).reshape(2, 1, 1)
    # from the IMP: h1 = 0.75 + 0.5 = 1.25 spikes (soft reset to 0.25), h2 = 0.25
    assert neuron(x).flatten().tolist() == [1.0, 0.0]
    # the same sequence continued starts from the carried 0.25, not from the IMP: h1 = 0.75, h2 = 0.75
    assert neuron(x).flatten().tolist() == [0.0, 0.0]
    neuron.reset_state()
    assert neuron(x).flatten().tolist() == [1.0, 0.0]
    bl.convert(neuron, imp="none")
    assert neuron.imp is None
    neuron.reset_state()
    assert neuron(x).flatten().tolist() == [0.0, 0.0]


@pytest.mark.parametrize("mode, shape", [("neuron", (3, 4)), ("channel", (3,)), ("layer", ())])
def test_imp_granularity_and_default_init(mode, shape):
    torch.manual_seed(0)
    neuron = LIFNeuron(imp=mode, threshold=2.0, shape=(3, 4))
    assert tuple(neuron.imp.shape) == shape
    assert ((neuron.imp >= 0.8) & (neuron.imp <= 1.2)).all()  # U(0.4, 0.6) x threshold


def test_imp_gradient_flows_and_is_reduced_over_the_batch():
    torch.manual_seed(0)
    neuron = LIFNeuron(imp="channel", shape=(3, 4), surrogate="sigmoid")
    x = torch.rand(5, 6, 3, 4) * 2
    neuron(x).sum().backward()
    # the same run from a full per-sample state v0 = imp (broadcast): its gradient, summed over the batch and
    # the spatial dimension, is the IMP's
    v0 = neuron.imp.detach().reshape(3, 1).expand(6, 3, 4).clone().requires_grad_()
    dynamics, params = neuron.bsnn_engine((3, 4))
    bl.engine.multistep(x, dynamics, params, v0).spikes.sum().backward()
    assert neuron.imp.grad.shape == (3,) and neuron.imp.grad.abs().sum() > 0
    torch.testing.assert_close(neuron.imp.grad, v0.grad.sum(dim=(0, 2)))


def test_convert_adds_bifurcation_and_imp_and_they_train():
    torch.manual_seed(0)
    net = mlp()
    x = torch.randn(4, 8, 6)
    net = bl.convert(net, dynamics="bifurcation", imp="neuron", example_input=x)
    assert isinstance(net[1], BifurcationNeuron) and isinstance(net[3], BifurcationNeuron)
    names = dict(net.named_parameters())
    assert {"1.eigenvalues", "1.imp", "3.eigenvalues", "3.imp"} <= set(names)
    assert names["1.imp"].shape == (5,) and names["1.eigenvalues"].shape == (5,)
    before = {k: v.detach().clone() for k, v in names.items()}
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    for _ in range(3):
        bl.reset_states(net)
        opt.zero_grad()
        (net(x) - 1).square().mean().backward()
        opt.step()
    assert not torch.equal(before["1.imp"], names["1.imp"]) and not torch.equal(before["1.eigenvalues"], names["1.eigenvalues"])


def test_convert_is_idempotent_and_keeps_learned_values():
    net = bl.convert(mlp(), dynamics="bifurcation", imp="layer", example_input=torch.randn(2, 3, 6))
    net[1].imp.data.fill_(0.123)
    eig = net[1].eigenvalues.detach().clone()
    net = bl.convert(net, dynamics="bifurcation", imp="layer")
    assert float(net[1].imp.detach()) == pytest.approx(0.123) and torch.equal(net[1].eigenvalues, eig)


def test_convert_needs_shapes_for_per_neuron_parameters():
    with pytest.raises(ValueError, match=r"need their input shape .* convert\(\.\.\., example_input=batch\)"):
        bl.convert(mlp(), imp="channel")
    net = mlp()
    net(torch.randn(2, 3, 6))  # once run, the shapes are known
    bl.reset_states(net)
    assert bl.convert(net, imp="channel")[1].imp.shape == (5,)


@pytest.mark.parametrize("changes", [{"imp": "channel"}, {"imp": "neuron"}, {"dynamics": "bifurcation"}])
def test_a_missing_example_input_is_refused_before_any_neuron_changes(changes):
    """docs/adapters.md: "a refused neuron leaves the model untouched", this refusal included; its message
    names every way to give the shape."""
    net = mlp()
    before = {name: (type(m), m.bsnn_settings, m.imp, m.eigenvalues) for name, m in net.named_modules() if isinstance(m, LIFNeuron)}
    with pytest.raises(ValueError, match=r"neurons \['1', '3'\] need their input shape") as refused:
        bl.convert(net, **changes)
    for words in ("convert(..., example_input=batch)", "ConvertNeurons(example_input=batch)", "example_input_array"):
        assert words in str(refused.value)
    after = {name: (type(m), m.bsnn_settings, m.imp, m.eigenvalues) for name, m in net.named_modules() if isinstance(m, LIFNeuron)}
    assert after == before and all(m is not None for m in (net[1], net[3]))


def test_a_lif_neuron_that_ran_becomes_bifurcation_without_an_example_input():
    net = mlp()
    net(torch.randn(2, 3, 6))  # the shapes are known from this run
    bl.reset_states(net)
    net = bl.convert(net, dynamics="bifurcation")
    assert [tuple(net[i].eigenvalues.shape) for i in (1, 3)] == [(5,), (3,)]


def test_convert_without_neurons_and_bad_choices():
    with pytest.raises(ValueError, match=r"convert found no spiking neuron in Linear; known neuron libraries: \['bsnn'"):
        bl.convert(nn.Linear(2, 2), imp="layer")
    with pytest.raises(ValueError, match="expected dynamics to be one of \\['lif', 'bifurcation'\\] or None, got 'izhikevich'"):
        bl.convert(mlp(), dynamics="izhikevich")
    with pytest.raises(ValueError, match="expected imp to be one of"):
        bl.convert(mlp(), imp="global")


def test_checkpoint_of_a_converted_model_loads_into_a_fresh_one():
    x = torch.randn(3, 2, 6)
    net = bl.convert(mlp(), dynamics="bifurcation", imp="neuron", structure="coupled", example_input=x)
    state = net.state_dict()
    assert {"1.imp", "1.eigenvalues", "1.basis"} <= set(state)
    fresh = bl.convert(mlp(), dynamics="bifurcation", structure="coupled", imp="neuron", example_input=x)
    fresh.load_state_dict(state)
    bl.reset_states(net)
    assert torch.equal(fresh(x), net(x))
    # neurons that never ran take their shapes (not their settings) from the checkpoint
    lazy = nn.Sequential(
        TimeDistributed(nn.Linear(6, 5)),
        BifurcationNeuron(structure="coupled", v_reset=0.0, imp="neuron"),
        TimeDistributed(nn.Linear(5, 3)),
        BifurcationNeuron(structure="coupled", v_reset=0.0, imp="neuron"),
    )
    lazy.load_state_dict(state)
    bl.reset_states(net)
    assert torch.equal(lazy(x), net(x))


def test_param_groups_exclude_neuron_parameters_from_weight_decay():
    net = bl.convert(mlp(), dynamics="bifurcation", imp="channel", example_input=torch.randn(2, 3, 6))
    groups = bl.neuron_param_groups(net, weight_decay=0.06)
    decayed = {id(p) for p in groups[0]["params"]}
    assert groups[0]["weight_decay"] == 0.06 and groups[1]["weight_decay"] == 0.0
    assert id(net[1].imp) not in decayed and id(net[1].eigenvalues) not in decayed
    assert id(net[0].module.weight) in decayed
    assert sum(len(g["params"]) for g in groups) == len(list(net.parameters()))


def test_lazily_created_parameters_warn_about_the_optimizer():
    neuron = BifurcationNeuron()
    with pytest.warns(UserWarning, match="optimizer built before this call does not hold them"):
        neuron(torch.rand(2, 3, 4))


def test_conv_net_maps_time_major_input_to_logits_per_step():
    torch.manual_seed(0)
    net = SpikingConvNet(in_channels=2, num_classes=10, channels=(4, 8), hidden=16, input_size=(34, 34)).eval()
    x = torch.rand(3, 2, 2, 34, 34) * 3
    out = net(x)
    assert out.shape == (3, 2, 10)
    # time-major: the same network fed one time step per call (the neurons carry their state between calls)
    # gives the same logits, step by step
    bl.reset_states(net)
    stepped = torch.cat([net(x[t : t + 1]) for t in range(3)])
    torch.testing.assert_close(stepped, out)
    assert out.std() > 0  # the logits depend on the input, not a constant
    # samples do not mix: changing sample 1 leaves sample 0's logits unchanged
    bl.reset_states(net)
    other = x.clone()
    other[:, 1] = torch.rand_like(other[:, 1])
    torch.testing.assert_close(net(other)[:, 0], out[:, 0])
    with pytest.raises(ValueError, match=r"expected x of shape \[T, N, C, H, W\], got \[2, 2, 34, 34\]"):
        net(torch.rand(2, 2, 34, 34))


def test_firing_rates_are_recorded_only_when_monitoring():
    net = mlp()
    net(torch.rand(3, 2, 6))
    assert bl.firing_rates(net) == {}
    bl.reset_states(net)
    bl.set_monitoring(net, True)
    net(torch.rand(3, 2, 6) * 4)
    rates = bl.firing_rates(net)
    assert set(rates) == {"1", "3"} and all(0 <= float(r) <= 1 for r in rates.values())


def test_convert_sets_the_imp_range_and_keeps_a_learned_imp():
    torch.manual_seed(0)
    net = bl.convert(mlp(), imp="neuron", imp_init=(-0.2, 0.2), example_input=torch.rand(2, 3, 6))
    imp = net[1].imp
    assert imp.min() >= -0.2 and imp.max() <= 0.2 and imp.std() > 0.05  # U(-0.2, 0.2) x threshold 1
    with pytest.raises(ValueError, match=r"expected imp_init \(low, high\) with low <= high, got \(0.5, 0.1\)"):
        bl.convert(net, imp_init=(0.5, 0.1))
    learned = imp.detach().clone()
    bl.convert(net, imp_init=(0.4, 0.6))  # a new range applies to new IMPs; the learned one stays
    assert torch.equal(net[1].imp, learned)


def test_building_a_converted_class_or_its_mixin_directly_names_what_to_build():
    """A converted class names the library's own class to build; the mixin alone (ConvertedNode,
    ConvertedLeaky, ...) says it is a mixin, not that "ConvertedNeuron" is the library's class."""
    from spikingjelly.activation_based import neuron
    from bsnn_lightning.adapters.snntorch import ConvertedLeaky
    from bsnn_lightning.adapters.spikingjelly import ConvertedNode

    node = bl.convert(nn.Sequential(neuron.LIFNode()), "lif")[0]
    with pytest.raises(TypeError, match="LIFNode here is a class made by bsnn_lightning.convert .* build the library's own LIFNode"):
        type(node)(tau=4.0)
    for mixin in (ConvertedNode, ConvertedLeaky):
        with pytest.raises(TypeError, match=f"{mixin.__name__} is the mixin that bsnn_lightning.convert adds"):
            mixin()
