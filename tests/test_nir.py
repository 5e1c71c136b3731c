"""NIR export and import of converted models (bsnn_lightning/nir_exchange.py), with the real exporters: a
converted LIF model exports as the native one through SpikingJelly's and snnTorch's; diagonal bifurcation
round-trips through a NIR file to a model with the same spikes; the NIR LIF mapping is checked against a
forward-Euler simulation of NIR's equation; what NIR cannot hold is refused."""

import copy

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

import bsnn_lightning as bl
from bsnn_lightning.nir_exchange import export_nir, import_nir, library_classes

nir = pytest.importorskip("nir")
pytest.importorskip("nirtorch")
sj = pytest.importorskip("spikingjelly.activation_based")
from spikingjelly.activation_based import functional, layer, neuron  # noqa: E402
from spikingjelly.activation_based.nir_exchange import export_to_nir, import_from_nir  # noqa: E402

T, N = 8, 3
DT = 1e-4


def sj_net(v_reset=0.0, dtype=torch.float32) -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(
        layer.Linear(6, 5), neuron.LIFNode(tau=2.0, v_reset=v_reset), layer.Linear(5, 4), neuron.LIFNode(tau=3.0, v_reset=v_reset)
    )
    for m in net:
        if isinstance(m, nn.Linear):
            nn.init.uniform_(m.weight, -0.3, 0.7)
    functional.set_step_mode(net, "m")
    return net.to(dtype)


def sj_conv_net() -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(layer.Conv2d(2, 3, 3, padding=1), neuron.LIFNode(), layer.Flatten(), layer.Linear(3 * 4 * 4, 5), neuron.LIFNode())
    functional.set_step_mode(net, "m")
    return net


def frames(shape=(6,), dtype=torch.float32):
    torch.manual_seed(1)
    return (torch.rand(T, N, *shape) * 3).to(dtype)


def spikes(net, x):
    functional.reset_net(net)
    with torch.no_grad():
        out = net(x)
    states = [m.v.clone() for m in net.modules() if isinstance(m, neuron.BaseNode)]
    return out, states


def same_graph(a, b):
    assert a.nodes.keys() == b.nodes.keys() and sorted(a.edges) == sorted(b.edges)
    for name in a.nodes:
        da, db = a.nodes[name].to_dict(), b.nodes[name].to_dict()
        assert da.keys() == db.keys(), name
        for key in da:
            assert np.array_equal(np.asarray(da[key]), np.asarray(db[key])), (name, key)


def bifurcation(net, x, granularity="neuron", **options):
    net = bl.convert(net, "bifurcation", backend="torch", granularity=granularity, eigen_init=(-0.9, -0.05),
                     example_input=x, **options)
    return net


# --- LIF through the libraries' own exporters --------------------------------------------------------------


def test_converted_lif_exports_through_spikingjelly_as_the_native_model(tmp_path):
    x = frames() * 2  # SpikingJelly's LIF divides its input by tau: a stronger drive to make the output fire
    native, converted = sj_net(), bl.convert(sj_net(), "lif", backend="torch", check_finite="off")
    before = spikes(converted, x)
    with library_classes(converted):
        graph = export_to_nir(converted, x, save_path=tmp_path / "converted.nir")
    # converted again after the block, with its settings: the same spikes and states as before it
    assert type(converted[1]) is not neuron.LIFNode and converted[1].bsnn_settings.check_finite == "off"
    after = spikes(converted, x)
    assert torch.equal(before[0], after[0]) and all(torch.equal(a, b) for a, b in zip(before[1], after[1]))
    same_graph(graph, export_to_nir(native, x))
    # and SpikingJelly's importer reads it back into a model that computes the native model's spikes
    imported = import_from_nir(tmp_path / "converted.nir", dt=DT, step_mode="m")
    out, _ = imported(x)
    assert torch.equal(out, spikes(native, x)[0]) and out.sum() > 0


def test_converted_lif_exports_through_snntorch_as_the_native_model():
    snn = pytest.importorskip("snntorch")
    from snntorch.export_nir import export_to_nir as snntorch_export

    torch.manual_seed(0)
    # snnTorch's exporter needs per-neuron parameters and one unbatched sample (its NIR type inference)
    native = nn.Sequential(
        nn.Linear(6, 5), snn.Leaky(beta=torch.full((5,), 0.9), threshold=torch.ones(5), init_hidden=True),
        nn.Linear(5, 4), snn.Leaky(beta=torch.full((4,), 0.8), threshold=torch.ones(4), init_hidden=True, output=True),
    )
    converted = bl.convert(copy.deepcopy(native), "lif", backend="torch")
    sample = torch.rand(6)
    with library_classes(converted):
        graph = snntorch_export(converted, sample)
    same_graph(graph, snntorch_export(native, sample))
    assert isinstance(converted[1], bl.MethodNeuron)


@pytest.mark.parametrize("dynamics, options, imp", [("bifurcation", {}, "none"), ("lif", {}, "neuron")])
def test_library_classes_refuses_what_the_library_has_no_form_of_and_changes_nothing(dynamics, options, imp):
    x = frames()
    net = bl.convert(sj_net(), dynamics, imp=imp, backend="torch", example_input=x, **options)
    before = spikes(net, x)
    with pytest.raises(ValueError, match="which its library has no form of"):
        with library_classes(net):
            pass
    assert all(isinstance(m, bl.MethodNeuron) for m in (net[1], net[3]))
    after = spikes(net, x)
    assert torch.equal(before[0], after[0])


# --- diagonal bifurcation as per-neuron NIR LIF ------------------------------------------------------------


@pytest.mark.parametrize("granularity", ["neuron", "channel"])
def test_diagonal_bifurcation_round_trips_through_a_nir_file_bit_for_bit(granularity, tmp_path):
    x = frames()
    net = bifurcation(sj_net(), x, granularity)
    graph = export_nir(net, x, dt=DT, path=tmp_path / "model.nir")
    lif = graph.nodes["_1"]
    assert isinstance(lif, nir.LIF) and lif.tau.shape == (5,)
    assert np.unique(lif.tau).size == 5  # per-neuron time constants (per channel: a Linear's channels are its neurons)
    imported = import_nir(tmp_path / "model.nir", dt=DT)
    expected, got = spikes(net, x), spikes(imported, x)
    assert torch.equal(got[0], expected[0]) and expected[0].sum() > 0
    assert all(torch.equal(a, b) for a, b in zip(got[1], expected[1], strict=True))


def test_per_channel_eigenvalues_of_a_conv_layer_export_per_neuron():
    x = frames((2, 4, 4))
    net = bifurcation(sj_conv_net(), x, "channel")
    graph = export_nir(net, x, dt=DT)
    tau = graph.nodes["_1"].tau
    assert tau.shape == (3, 4, 4)
    lam = net[1].eigenvalues.detach().clamp(-1.0, 0.2).double().numpy()
    assert np.array_equal(tau, np.broadcast_to((-DT / lam).reshape(3, 1, 1), (3, 4, 4)))
    imported = import_nir(graph, dt=DT)
    assert torch.equal(spikes(imported, x)[0], spikes(net, x)[0])


def euler_lif(node, x: np.ndarray, dt: float):
    """NIR's LIF, tau dv/dt = (v_leak - v) + r x, in forward-Euler steps of dt (float64), from v = v_reset (where
    SpikingJelly's nodes start, and its NIR importer's): fire where v >= v_threshold, then set v_reset there."""
    v = np.broadcast_to(node.v_reset, x.shape[1:]).astype(np.float64)
    out, vs = [], []
    for x_t in x:
        v = v + dt / node.tau * (node.v_leak - v + node.r * x_t)
        s = (v >= node.v_threshold).astype(np.float64)
        v = np.where(s > 0, node.v_reset, v)
        out.append(s)
        vs.append(v)
    return np.stack(out), np.stack(vs)


@pytest.mark.parametrize("v_reset", [0.0, -0.25])
def test_the_nir_lif_mapping_is_the_engines_diagonal_bifurcation(v_reset):
    # float64 throughout: the engine's charge (1 + lambda) v + x against NIR's Euler step, same spikes, and
    # membranes equal to float64 rounding (the two forms differ in the order of their operations)
    x = frames(dtype=torch.float64)
    net = bifurcation(sj_net(v_reset, torch.float64), x)
    node = export_nir(net, x, dt=DT).nodes["_1"]
    with torch.no_grad():
        current = net[0](x)
    functional.reset_net(net)
    net[1].store_v_seq = True
    with torch.no_grad():
        engine_spikes = net[1](current)
    nir_spikes, nir_v = euler_lif(node, current.numpy(), DT)
    assert np.array_equal(nir_spikes, engine_spikes.numpy()) and nir_spikes.sum() > 0
    np.testing.assert_allclose(nir_v, net[1].v_seq.numpy(), rtol=0, atol=1e-12)


@settings(max_examples=100, deadline=None)
@given(st.floats(min_value=-1.0, max_value=-9.999999974752427e-07, width=32))
def test_an_eigenvalue_survives_the_time_constant_exactly(lam):
    tau = -DT / np.float64(lam)
    assert np.float32(-DT / tau) == np.float32(lam)


# --- refused -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda x: bl.convert(sj_net(), "bifurcation", imp="neuron", backend="torch", example_input=x), "initial membrane potential"),
        (lambda x: bl.convert(sj_net(), "lif", imp="channel", backend="torch", example_input=x), "initial membrane potential"),
        (lambda x: bl.convert(sj_net(), "bifurcation", structure="coupled", backend="torch", example_input=x), "coupled bifurcation"),
        (lambda x: bifurcation(sj_net(v_reset=None), x), "resets softly"),
        (lambda x: bl.convert(sj_net(), "bifurcation", eigen_init=(-0.5, 0.1), backend="torch", example_input=x), "eigenvalues are >= 0"),
    ],
    ids=["imp", "lif-imp", "coupled", "soft-reset", "non-negative-eigenvalue"],
)
def test_what_nir_cannot_hold_is_refused_with_the_reason(make, match):
    x = frames()
    with pytest.raises(ValueError, match=match):
        export_nir(make(x), x, dt=DT)


def test_import_refuses_a_per_neuron_lif_that_is_not_diagonal_bifurcation():
    tau = np.array([2e-4, 3e-4])
    graph = nir.NIRGraph(
        nodes={"in": nir.Input(np.array([2])), "lif": nir.LIF(tau=tau, r=np.ones(2), v_leak=np.zeros(2), v_threshold=np.ones(2), v_reset=np.zeros(2)), "out": nir.Output(np.array([2]))},
        edges=[("in", "lif"), ("lif", "out")],
    )
    with pytest.raises(ValueError, match=r"r must equal tau / dt"):
        import_nir(graph, dt=DT)
