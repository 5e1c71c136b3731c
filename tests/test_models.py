"""The networks of bsnn_lightning.models take their neuron from one zero-argument factory (``neuron``).

Checked here: a factory's neurons are what the network holds and runs, one per spiking layer; without one,
every network builds the neuron its former flat settings built (compared by behaviour: spikes and input
gradients on the same input); SpikingConvNet with ``input_pool=2`` is the report's network; bad arguments
are refused with what was expected and what was given.
"""

import functools
import re
import warnings

import pytest
import torch
from torch import nn

import bsnn_lightning as bl
from bsnn_lightning import BifurcationNeuron, LIFNeuron
from bsnn_lightning.models import VGGSNN, DVSGestureNet, SpikingConvNet, SpikingMLP, SpikingVGG, TimeDistributed
from bsnn_lightning.models.layers import TimeScaledBatchNorm2d


def assert_same_neuron(built: nn.Module, expected: nn.Module) -> None:
    """Same class, same spikes and same input gradients on one input (learnable values drawn at random at
    construction, such as eigenvalues, are copied from ``built`` first)."""
    assert type(built) is type(expected)
    expected.load_state_dict(dict(built.named_parameters()), strict=False)
    shape = built.sample_shape or (5,)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(8, 3, *shape, generator=gen) * 1.5 + 0.5
    upstream = torch.randn(x.shape, generator=gen)
    results = []
    for neuron in (built, expected):
        bl.reset_states(neuron)
        leaf = x.clone().requires_grad_()
        spikes = neuron(leaf)
        (grad,) = torch.autograd.grad(spikes, leaf, upstream)
        bl.reset_states(neuron)
        results.append((spikes.detach(), grad))
    assert results[0][0].sum() > 0  # the input makes the neurons fire, so the reset matters
    torch.testing.assert_close(results[0], results[1], rtol=0, atol=0)


class Heaviside(nn.Module):
    """A neuron from outside the package: spikes where the input exceeds 0.5, stateless."""

    def forward(self, x):
        return (x > 0.5).to(x.dtype)


#: name -> (build(neuron), input [T, N, C, H, W], spiking layers, classes)
SMALL = {
    "SpikingConvNet": (lambda neuron: SpikingConvNet(channels=(4, 8), hidden=16, input_size=(34, 34), neuron=neuron), (2, 2, 2, 34, 34), 3, 10),
    "SpikingVGG": (lambda neuron: SpikingVGG(cfg=(4, "P", 8, "P"), num_classes=5, neuron=neuron), (2, 2, 2, 16, 16), 2, 5),
    "VGGSNN": (lambda neuron: VGGSNN(input_size=(16, 16), neuron=neuron), (2, 1, 2, 16, 16), 8, 10),
    "DVSGestureNet": (lambda neuron: DVSGestureNet(channels=4, input_size=(32, 32), neuron=neuron), (2, 2, 2, 32, 32), 7, 11),
    "SpikingMLP": (lambda neuron: SpikingMLP(in_features=2 * 6 * 6, hidden=(16, 8), neuron=neuron), (2, 2, 2, 6, 6), 2, 10),
}  # fmt: skip

#: name -> the neuron the network's former flat arguments built by default
FORMER_DEFAULT = {
    "SpikingConvNet": functools.partial(LIFNeuron, tau=2.0, v_reset=None, threshold=1.0, surrogate="atan", detach_reset=False),
    "SpikingVGG": functools.partial(LIFNeuron, tau=2.0, v_reset=None, threshold=1.0, surrogate="atan", detach_reset=False, decay_input=True, imp=None),
    "VGGSNN": functools.partial(LIFNeuron, tau=2.0, decay_input=False, v_reset=0.0, threshold=1.0, surrogate="triangle:1", detach_reset=False),
    "DVSGestureNet": functools.partial(LIFNeuron, tau=2.0, v_reset=0.0, surrogate="atan", detach_reset=True),
    "SpikingMLP": functools.partial(BifurcationNeuron, structure="diagonal", eigen_init=(-0.8, 0.0), bounds=(-1.0, 0.2), v_reset=None, threshold=1.0, surrogate="atan", imp=None),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(SMALL))
def test_a_custom_neuron_factory_makes_every_spiking_layer(name):
    build, shape, layers, classes = SMALL[name]
    net = build(Heaviside)
    neurons = [m for m in net.modules() if isinstance(m, Heaviside)]
    assert len(neurons) == layers and len({id(m) for m in neurons}) == layers
    assert not any(isinstance(m, bl.EngineNeuron) for m in net.modules())
    calls = []
    for neuron in neurons:
        neuron.register_forward_hook(lambda module, args, out: calls.append(module))
    out = net.eval()(torch.rand(shape) * 3)
    assert out.shape == (shape[0], shape[1], classes)
    assert [id(m) for m in calls] == [id(m) for m in neurons]  # each one runs, once, in order


@pytest.mark.parametrize("name", sorted(SMALL))
def test_without_a_factory_the_former_default_neuron_is_built(name):
    build, _, layers, _ = SMALL[name]
    neurons = [m for m in build(None).modules() if isinstance(m, bl.EngineNeuron)]
    assert len(neurons) == layers
    for neuron in neurons:
        assert_same_neuron(neuron, FORMER_DEFAULT[name](shape=neuron.sample_shape))


def test_a_partial_sets_the_neurons_settings():
    net = SpikingConvNet(channels=(4,), hidden=8, input_size=(8, 8), neuron=functools.partial(LIFNeuron, tau=3.0, v_reset=0.2))
    neurons = [m for m in net.modules() if isinstance(m, LIFNeuron)]
    assert len(neurons) == 2
    for neuron in neurons:
        assert_same_neuron(neuron, LIFNeuron(tau=3.0, v_reset=0.2))
    with pytest.raises(AssertionError):  # the comparison tells neurons apart
        assert_same_neuron(neurons[0], LIFNeuron(tau=2.0, v_reset=0.2))


def test_mlp_gives_each_neuron_its_layers_shape_before_any_optimizer():
    net = SpikingMLP(in_features=12, hidden=(6, 4), neuron=functools.partial(LIFNeuron, imp="neuron"))
    neurons = [m for m in net.modules() if isinstance(m, LIFNeuron)]
    assert [n.sample_shape for n in neurons] == [(6,), (4,)]
    before = len(list(net.parameters()))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no parameter created late
        net.train()(torch.rand(3, 2, 12))
    assert len(list(net.parameters())) == before
    given = SpikingMLP(in_features=12, hidden=(6,), neuron=functools.partial(BifurcationNeuron, shape=(6,)))
    assert [m.sample_shape for m in given.modules() if isinstance(m, BifurcationNeuron)] == [(6,)]


def report_network(make_neuron, in_channels, channels, hidden, num_classes=10) -> nn.Sequential:
    """The report's network as bsnn_lightning/report/experiments.py built it by hand (34 x 34 input)."""
    layers = [TimeDistributed(nn.AvgPool2d(2))]
    previous, size = in_channels, 17
    for width in channels:
        layers += [
            TimeDistributed(nn.Conv2d(previous, width, 3, padding=1, bias=False), nn.BatchNorm2d(width)),
            make_neuron(),
            TimeDistributed(nn.MaxPool2d(2)),
        ]
        previous, size = width, size // 2
    layers += [
        TimeDistributed(nn.Flatten()),
        TimeDistributed(nn.Linear(previous * size * size, hidden)),
        make_neuron(),
        TimeDistributed(nn.Linear(hidden, num_classes)),
    ]
    return nn.Sequential(*layers)


def test_input_pool_builds_the_reports_network():
    make = functools.partial(LIFNeuron, tau=2.0, v_reset=0.0, imp="layer")
    torch.manual_seed(0)
    by_hand = report_network(make, in_channels=2, channels=(8, 16), hidden=32)
    torch.manual_seed(0)
    net = SpikingConvNet(in_channels=2, num_classes=10, channels=(8, 16), hidden=32, input_size=(34, 34), input_pool=2, neuron=make)
    ours, theirs = net.state_dict(), by_hand.state_dict()
    assert list(ours) == [f"layers.{k}" for k in theirs]  # the same layers in the same order
    assert all(torch.equal(ours[f"layers.{k}"], v) for k, v in theirs.items())  # same initial values, same seed
    x = torch.rand(4, 3, 2, 34, 34) * 2
    for model in (net, by_hand):
        model.eval()
        bl.reset_states(model)
    torch.testing.assert_close(net(x), by_hand(x), rtol=0, atol=0)


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: SpikingConvNet(neuron=LIFNeuron()), TypeError, "expected neuron to be a zero-argument callable that makes a new neuron module at each call (e.g. LIFNeuron, or functools.partial(LIFNeuron, tau=2.0)), got a module itself: LIFNeuron("),
        (lambda: SpikingVGG(neuron="lif"), TypeError, "expected neuron to be a zero-argument callable returning an nn.Module (e.g. functools.partial(LIFNeuron, tau=2.0)) or None, got 'lif'"),
        (lambda: VGGSNN(neuron=lambda: "spike"), TypeError, "expected neuron() to return an nn.Module, got 'spike' from"),
        (lambda: DVSGestureNet(channels=2, neuron=lambda shared=Heaviside(): shared), ValueError, "expected neuron() to return a new module at every call, got the same Heaviside twice"),
        (lambda: SpikingMLP(hidden=(4,), neuron=functools.partial(LIFNeuron, shape=(5,))), ValueError, "expected the neuron of hidden layer 0 to be built for samples of shape [4] (the layer's width), got one built for [5]"),
        (lambda: SpikingConvNet(input_pool=0), ValueError, "expected input_pool to be an int >= 1 (1 = no input pooling), got 0"),
        (lambda: SpikingConvNet(input_pool=2.0), ValueError, "expected input_pool to be an int >= 1 (1 = no input pooling), got 2.0"),
        (lambda: SpikingConvNet(input_size=(8, 8), channels=(4, 4), input_pool=4), ValueError, "input_size (8, 8) is too small for an input pooling of 4 and 2 pooling blocks"),
        (lambda: SpikingVGG(cfg="vgg12"), ValueError, "expected cfg in ['vgg11', 'vgg13', 'vgg16'] or a tuple, got 'vgg12'"),
        (lambda: DVSGestureNet(input_size=(128, 112)), ValueError, "expected input_size divisible by 32 (five 2 x 2 poolings), got (128, 112)"),
        (lambda: VGGSNN(input_size=[40, 48]), ValueError, "expected input_size divisible by 16 (four 2 x 2 down-samplings), got (40, 48)"),
    ],
)
def test_bad_arguments_are_refused(make, error, message):
    with pytest.raises(error, match=re.escape(message)):
        make()


# --- the released codes' networks: StagedVGG (IMP VGG11), VGGSNN's variants, per-step-scaled batch norm -----------


def test_staged_vgg_is_stages_of_biased_conv_blocks_pooled_between_stages_with_a_per_step_head():
    from bsnn_lightning.models import StagedVGG

    net = StagedVGG(in_channels=2, num_classes=3, stages=(1, 2), widths=(4, 8), neuron=Heaviside)
    kinds = [type(m).__name__ for m in net.features.modules() if not isinstance(m, (nn.Sequential, TimeDistributed, StagedVGG))]
    assert kinds == ["Conv2d", "BatchNorm2d", "Heaviside", "AvgPool2d", "Conv2d", "BatchNorm2d", "Heaviside", "Conv2d", "BatchNorm2d", "Heaviside"]
    assert all(m.bias is not None for m in net.modules() if isinstance(m, nn.Conv2d))
    x = torch.rand(3, 2, 2, 8, 8) * 2
    out = net.eval()(x)
    assert out.shape == (3, 2, 3)
    features = net.features(x).mean(dim=(-2, -1))  # the head is the same linear map of the spatial mean at every step
    linear = net.head.module[-1]
    torch.testing.assert_close(out, features @ linear.weight.T + linear.bias)
    assert not StagedVGG(conv_bias=False).features[0].module[0].bias is not None


def test_staged_vgg_head_starts_as_the_released_heads():
    from bsnn_lightning.models import StagedVGG

    torch.manual_seed(0)
    linear = StagedVGG(num_classes=1000, stages=(1,), widths=(512,)).head.module[-1]
    assert torch.all(linear.bias == 0)
    assert 0.0095 < float(linear.weight.std()) < 0.0105  # N(0, 0.01^2): 512k draws
    default = StagedVGG(num_classes=1000, stages=(1,), widths=(512,), head_std=None).head.module[-1]
    assert float(default.weight.abs().max()) > 0.03  # PyTorch's uniform(+-1/sqrt(512)) instead


def test_staged_vgg_default_neuron_is_the_released_configs():
    from bsnn_lightning.models import StagedVGG

    neurons = [m for m in StagedVGG(stages=(1, 1), widths=(4, 4)).modules() if isinstance(m, bl.EngineNeuron)]
    assert len(neurons) == 2
    for neuron in neurons:
        assert_same_neuron(neuron, LIFNeuron(tau=2.0, v_reset=None, detach_reset=True, surrogate="sigmoid:4"))


def test_networks_that_know_their_input_give_a_per_neuron_imp_its_layers_shape():
    from bsnn_lightning.models import StagedVGG

    imp_lif = functools.partial(LIFNeuron, imp="neuron", imp_init=(-0.2, 0.2))
    staged = StagedVGG(stages=(1, 2), widths=(4, 8), input_size=(12, 16), neuron=imp_lif)
    shapes = [tuple(m.imp.shape) for m in staged.modules() if isinstance(m, LIFNeuron)]
    assert shapes == [(4, 12, 16), (8, 6, 8), (8, 6, 8)]
    assert all(float(m.imp.min()) >= -0.2 and float(m.imp.max()) <= 0.2 for m in staged.modules() if isinstance(m, LIFNeuron))
    waiting = StagedVGG(stages=(1,), widths=(4,), neuron=imp_lif)  # no input_size: a dry run gives the shapes later
    assert all(m.imp is None and m.bsnn_needs_shape() for m in waiting.modules() if isinstance(m, LIFNeuron))
    vgg = VGGSNN(input_size=(16, 16), downsample="stride", neuron=imp_lif)
    assert [tuple(m.imp.shape)[1:] for m in vgg.modules() if isinstance(m, LIFNeuron)] == [(16, 16), (8, 8), (8, 8), (4, 4), (4, 4), (2, 2), (2, 2), (1, 1)]
    plain = VGGSNN(input_size=(16, 16))  # neurons without shaped parameters stay shape-free
    assert all(m.sample_shape is None for m in plain.modules() if isinstance(m, LIFNeuron))


def test_vggsnn_stride_variant_has_stride_two_convs_where_vggsnn_pools():
    avg, stride = VGGSNN(input_size=(16, 16)), VGGSNN(input_size=(16, 16), downsample="stride")
    count = lambda net: sum(p.numel() for p in net.parameters())  # noqa: E731
    assert count(avg) == count(stride) == 9_219_904 + 5_504 + 512 * 10 + 10  # convs, batch norms, linear
    assert not any(isinstance(m, nn.AvgPool2d) for m in stride.modules())
    assert [m.stride[0] for m in stride.modules() if isinstance(m, nn.Conv2d)] == [1, 2, 1, 2, 1, 2, 1, 2]
    assert stride(torch.rand(2, 1, 2, 16, 16)).shape == (2, 1, 10)


def test_vggsnn_with_per_step_scaled_batch_norm_and_dropout():
    net = VGGSNN(input_size=(16, 16), norm="time_scaled", time_steps=3, dropout=0.25)
    norms = [m for m in net.modules() if isinstance(m, TimeScaledBatchNorm2d)]
    assert len(norms) == 8 and all(m.time_scale.shape == (3, 1, 1, 1, 1) for m in norms)
    assert [m.p for m in net.classifier.modules() if isinstance(m, nn.Dropout)] == [0.25]
    assert net(torch.rand(3, 2, 2, 16, 16)).shape == (3, 2, 10)
    with pytest.raises(ValueError, match=re.escape("expected x of shape [T=3, N, C, H, W] (one scale per step), got [2, 2, 64, 16, 16]")):
        net(torch.rand(2, 2, 2, 16, 16))


def test_time_scaled_batch_norm_is_batch_norm_over_time_and_batch_times_a_scale_per_step():
    torch.manual_seed(0)
    norm = TimeScaledBatchNorm2d(3, time_steps=4)
    with torch.no_grad():
        norm.time_scale.copy_(torch.arange(1.0, 5.0).view(4, 1, 1, 1, 1))
        norm.weight.uniform_(0.5, 1.5)
    reference = nn.BatchNorm2d(3)
    reference.load_state_dict({k: v for k, v in norm.state_dict().items() if k != "time_scale"})
    x = torch.randn(4, 2, 3, 5, 5)
    expected = reference(x.reshape(8, 3, 5, 5)).reshape(x.shape) * torch.arange(1.0, 5.0).view(4, 1, 1, 1, 1)
    torch.testing.assert_close(norm(x), expected)
    torch.testing.assert_close(norm.running_mean, reference.running_mean)
    with pytest.raises(ValueError, match="expected time_steps to be an int >= 1, got 0"):
        TimeScaledBatchNorm2d(3, time_steps=0)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: __import__("bsnn_lightning.models", fromlist=["StagedVGG"]).StagedVGG(stages=(1, 1), widths=(4,)), "expected one width per stage, got stages [1, 1] and widths [4]"),
        (lambda: __import__("bsnn_lightning.models", fromlist=["StagedVGG"]).StagedVGG(input_size=(4, 4)), "input_size (4, 4) is too small for 3 2 x 2 poolings"),
        (lambda: __import__("bsnn_lightning.models", fromlist=["StagedVGG"]).StagedVGG(head_std=0.0), "expected head_std > 0 or None, got 0.0"),
        (lambda: __import__("bsnn_lightning.models", fromlist=["StagedVGG"]).StagedVGG(stages=(1,), widths=(4,), input_size=(8, 8), neuron=functools.partial(LIFNeuron, imp="neuron", shape=(4, 9, 9))), "expected the neuron of stage 1, block 1 to be built for samples of shape [4, 8, 8], got one built for [4, 9, 9]"),
        (lambda: VGGSNN(norm="time_scaled"), "norm='time_scaled' scales each time step: expected time_steps (the input's T), got None"),
        (lambda: VGGSNN(downsample="max"), "expected downsample 'avg' or 'stride', got 'max'"),
        (lambda: VGGSNN(dropout=1.0), "expected dropout in [0, 1), got 1.0"),
    ],
)
def test_released_networks_refuse_bad_arguments(make, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        make()
