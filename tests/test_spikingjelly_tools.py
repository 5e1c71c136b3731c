"""SpikingJelly 2.0's own tools on converted models, against the real tools: memopt (``checkpoint_module``, the
spike compressors, time chunks, ``optimize_memory``), ``monitor``, ``precision``, the hooks ``profiler`` uses,
and what of ``distributed`` runs in one CPU process (FSDP2's ``fully_shard``, as its vision trainer applies it).

Every dynamics (LIF, diagonal and coupled bifurcation), with and without an IMP: a tool's result on the
converted model equals the converted model's own result without the tool, bit for bit where the tool only
rearranges the computation (recomputation, compression, chunking, sharding); and for LIF without IMP the
converted model equals the native one under the tool."""

import copy
import os

import pytest
import torch
from torch import nn

import bsnn_lightning as bl

sj = pytest.importorskip("spikingjelly.activation_based")
from spikingjelly.activation_based import functional, layer, memopt, monitor, neuron  # noqa: E402
from spikingjelly.activation_based.precision import api as precision_api  # noqa: E402
from spikingjelly.activation_based.precision import config as precision_config  # noqa: E402

T, N, D_IN, D_HIDDEN, D_OUT = 6, 3, 10, 8, 6
#: (dynamics, options, imp): every dynamics the package gives a SpikingJelly node, with and without an IMP; the
#: fast subset keeps the two bifurcation structures with an IMP (LIF without one is the native comparisons' case)
CASES = [
    pytest.param(dynamics, options, imp, id=f"{name}-{imp}", marks=() if fast else pytest.mark.slow)
    for name, dynamics, options in (
        ("lif", "lif", {}),
        ("diagonal", "bifurcation", {}),
        ("coupled", "bifurcation", {"structure": "coupled"}),
    )
    for imp in ("none", "neuron")
    for fast in [name != "lif" and imp == "neuron"]
]
COMPRESSORS = [
    pytest.param(c, id=c.__name__, marks=() if c is memopt.BitSpikeCompressor else pytest.mark.slow)
    for c in (memopt.BooleanSpikeCompressor, memopt.Uint8SpikeCompressor, memopt.BitSpikeCompressor, memopt.SparseSpikeCompressor)
]


class Block(nn.Sequential):
    """A linear layer and a node: the unit a user checkpoints."""


def native_net(plif: bool = True) -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(
        Block(layer.Linear(D_IN, D_HIDDEN), neuron.LIFNode(tau=2.0)),
        Block(layer.Linear(D_HIDDEN, D_OUT), neuron.ParametricLIFNode() if plif else neuron.LIFNode(tau=3.0)),
    )
    for block in net:  # weights that make both layers fire at moderate rates
        nn.init.uniform_(block[0].weight, -0.3, 0.6)
    functional.set_step_mode(net, "m")
    return net


def inputs() -> torch.Tensor:
    torch.manual_seed(1)
    return torch.rand(T, N, D_IN) * 4.0


def converted_net(dynamics, options, imp, plif: bool = True, backend: str = "torch") -> nn.Module:
    net = bl.convert(native_net(plif), dynamics, imp=imp, backend=backend, example_input=inputs(), **options)
    if imp != "none":  # a learned-looking IMP, different per neuron
        torch.manual_seed(2)
        for node in (net[0][1], net[1][1]):
            node.imp.data.uniform_(0.1, 0.9)
    return net


def run(net, x):
    """Spikes, final membranes and every gradient of one forward and backward pass from a fresh state."""
    functional.reset_net(net)
    x = x.clone().requires_grad_(True)
    out = net(x)
    (out * torch.linspace(0.5, 1.5, out.shape[-1])).sum().backward()
    nodes = [m for m in net.modules() if isinstance(m, neuron.BaseNode)]
    grads = {  # under the state dict's names (a checkpoint wrapper's own prefix left out)
        name.replace("_checkpoint_wrapped_module.", ""): None if p.grad is None else p.grad.clone()
        for name, p in net.named_parameters()
    }
    for p in net.parameters():
        p.grad = None
    return out.detach(), [n.v.detach().clone() for n in nodes], x.grad, grads


def assert_same_run(a, b, exact_grads=True):
    assert torch.equal(a[0], b[0]) and a[0].sum() > 0
    for va, vb in zip(a[1], b[1], strict=True):
        assert torch.equal(va, vb)
    check = torch.equal if exact_grads else (lambda p, q: torch.allclose(p, q, rtol=1e-5, atol=1e-6))
    assert check(a[2], b[2])
    assert a[3].keys() == b[3].keys()
    for name in a[3]:
        if a[3][name] is None or b[3][name] is None:  # PLIF's w, unused by bifurcation dynamics
            assert a[3][name] is None and b[3][name] is None and name.endswith(".w"), name
        else:
            assert check(a[3][name], b[3][name]), name


# --- memopt -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dynamics, options, imp", CASES)
@pytest.mark.parametrize("where", ["nodes", "blocks", "chunked blocks"])
def test_checkpoint_module_recomputes_a_converted_model_exactly(dynamics, options, imp, where):
    net = converted_net(dynamics, options, imp)
    wrapped = copy.deepcopy(net)
    for i in range(2):
        if where == "nodes":
            wrapped[i][1] = memopt.checkpoint_module(wrapped[i][1])
        else:
            wrapped[i] = memopt.checkpoint_module(wrapped[i], chunks=3 if where == "chunked blocks" else 1)
    x = inputs()
    # chunks: a layer's weight gradient is summed chunk by chunk, so it equals the whole sequence's to rounding
    assert_same_run(run(wrapped, x), run(net, x), exact_grads=where != "chunked blocks")
    # the wrappers leave the state dict keys as they were
    assert set(wrapped.state_dict()) == set(net.state_dict())


@pytest.mark.parametrize("dynamics, options, imp", CASES)
@pytest.mark.parametrize("compressor", COMPRESSORS)
def test_spike_compressors_store_a_converted_layers_input_losslessly(dynamics, options, imp, compressor):
    net = converted_net(dynamics, options, imp)
    wrapped = copy.deepcopy(net)
    wrapped[1] = memopt.checkpoint_module(wrapped[1], compressor=compressor())  # its input is the first layer's spikes
    x = inputs()
    assert_same_run(run(wrapped, x), run(net, x))


@pytest.mark.slow
@pytest.mark.parametrize("dynamics, options, imp", [c.values for c in CASES])
def test_checkpoint_module_recomputes_the_triton_backend_exactly(dynamics, options, imp):
    # the Triton kernels (under the interpreter on a CPU) inside memopt's recomputation, in time chunks
    net = converted_net(dynamics, options, imp, backend="triton")
    wrapped = copy.deepcopy(net)
    for i in range(2):
        wrapped[i] = memopt.checkpoint_module(wrapped[i], chunks=2, compressor=memopt.BitSpikeCompressor() if i else None)
    x = inputs()
    assert_same_run(run(wrapped, x), run(net, x), exact_grads=False)


@pytest.mark.parametrize("dynamics, options, imp", CASES)
def test_optimize_memory_level_1_on_a_converted_model(dynamics, options, imp):
    net = converted_net(dynamics, options, imp)
    optimized = copy.deepcopy(net)
    x = inputs()
    memopt.optimize_memory(optimized, Block, lambda model: model(x), level=1, compress=True)
    assert all(type(optimized[i]).__name__ == "CheckpointWrapper" for i in range(2))
    assert_same_run(run(optimized, x), run(net, x))


def test_optimize_memory_levels_2_to_4_need_cuda_on_a_converted_model_as_on_the_native_one():
    x = inputs()
    for net in (native_net(), converted_net("bifurcation", {}, "neuron")):
        with pytest.raises(RuntimeError, match="require CUDA"):
            memopt.optimize_memory(net, Block, lambda model: model(x), level=4)


def test_checkpointed_converted_lif_equals_the_checkpointed_native_model():
    native, converted = native_net(), converted_net("lif", {}, "none")
    for net in (native, converted):
        net[0] = memopt.checkpoint_module(net[0], chunks=2)
        net[1] = memopt.checkpoint_module(net[1], compressor=memopt.BitSpikeCompressor())
    x = inputs()
    # the engine's gradients equal SpikingJelly's to rounding (its own backward, not autograd's)
    assert_same_run(run(converted, x), run(native, x), exact_grads=False)


def test_the_explicit_state_form_computes_what_the_node_computes_and_leaves_its_state_alone():
    from spikingjelly.activation_based import base

    net = converted_net("bifurcation", {"structure": "coupled"}, "neuron")
    node, h = net[1][1], torch.rand(T, N, D_OUT) * 2
    functional.reset_net(net)
    step = base.to_functional_forward(node)
    (spikes,), (v,) = step((h,), (0.0,))  # a number: a fresh sequence, so the IMP applies
    assert node.v == 0.0  # the module's own state is untouched
    assert torch.equal(spikes, node(h)) and torch.equal(v, node.v)
    with pytest.raises(ValueError, match="expected 1 states"):
        node.functional_forward((h,), (0.0, 0.0))


# --- monitor ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dynamics, options, imp", CASES)
def test_monitors_record_what_the_converted_nodes_compute(dynamics, options, imp):
    net, x = converted_net(dynamics, options, imp), inputs()
    expected = run(net, x)
    outputs = monitor.OutputMonitor(net, neuron.BaseNode)
    membranes = monitor.AttributeMonitor("v", pre_forward=False, net=net, instance=neuron.BaseNode)
    grads = monitor.GradOutputMonitor(net, neuron.BaseNode)
    got = run(net, x)
    assert_same_run(got, expected)
    assert torch.equal(outputs.records[-1], expected[0])
    assert [torch.equal(r, v) for r, v in zip(membranes.records, expected[1], strict=True)] == [True, True]
    # the gradient reaching the last node's output: d(sum(out * w))/d out = w
    assert torch.equal(grads.records[0], torch.linspace(0.5, 1.5, D_OUT).expand(T, N, D_OUT))
    for m in (outputs, membranes, grads):
        m.remove_hooks()


def test_monitors_record_the_same_on_converted_lif_as_on_the_native_model():
    records = []
    for net in (native_net(), converted_net("lif", {}, "none")):
        outputs = monitor.OutputMonitor(net, neuron.BaseNode)
        inputs_seen = monitor.InputMonitor(net, neuron.BaseNode)
        run(net, inputs())
        records.append((outputs.records, inputs_seen.records))
    (out_a, in_a), (out_b, in_b) = records
    assert all(torch.equal(a, b) for a, b in zip(out_a + in_a, out_b + in_b, strict=True))


# --- precision ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dynamics, options, imp", CASES)
def test_precision_bf16_policy_runs_a_converted_model_as_autocast_does(dynamics, options, imp):
    net, x = converted_net(dynamics, options, imp), inputs()
    prepared = precision_api.prepare_model_for_precision(copy.deepcopy(net), "cpu", precision_config.PrecisionConfig("bf16"))
    assert prepared.describe()["policy"]["autocast"]
    with prepared.autocast_context():
        got = run(prepared.model, x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        expected = run(net, x)
    assert got[0].dtype == torch.bfloat16
    assert_same_run(got, expected)


def test_precision_bf16_runs_converted_lif_as_the_native_model():
    x, results = inputs(), []
    for net in (native_net(), converted_net("lif", {}, "none")):
        prepared = precision_api.prepare_model_for_precision(net, "cpu", precision_config.PrecisionConfig("bf16"))
        with prepared.autocast_context():
            results.append(run(prepared.model, x))
    # the node keeps SpikingJelly's 16-bit membrane (state_dtype="native"): spikes and states bit for bit
    assert torch.equal(results[0][0], results[1][0])
    assert all(torch.equal(a, b) for a, b in zip(results[0][1], results[1][1]))


def test_precision_neuron_storage_is_refused_for_converted_nodes():
    # SpikingJelly configures its own Triton neuron kernels' storage only on its exact classes; a converted node
    # sets its state precision with convert(state_dtype=...), so a model of converted nodes has none to configure
    net = converted_net("bifurcation", {}, "neuron")
    with pytest.raises(RuntimeError, match="no multi-step IF/LIF/PLIF nodes"):
        precision_api.prepare_model_for_precision(net, "cpu", precision_config.PrecisionConfig("fp32", neuron_storage="bf16"))


# --- profiler -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dynamics, options, imp", CASES)
def test_the_profilers_module_hooks_fire_on_converted_nodes(dynamics, options, imp):
    # SpikingJelly's layer-wise profilers read CUDA memory and timers (they need a GPU) inside forward pre/post
    # hooks and full backward pre/post hooks on each module; on the CPU those hooks themselves are checked: each
    # fires once per node per pass, and the gradients under them are unchanged
    net, x = converted_net(dynamics, options, imp), inputs()
    expected = run(net, x)
    fired, handles = [], []
    for name, module in net.named_modules():
        if isinstance(module, neuron.BaseNode):
            handles += [
                module.register_forward_pre_hook(lambda m, i, n=name: fired.append(("pre", n))),
                module.register_forward_hook(lambda m, i, o, n=name: fired.append(("post", n))),
                module.register_full_backward_pre_hook(lambda m, g, n=name: fired.append(("bpre", n))),
                module.register_full_backward_hook(lambda m, gi, go, n=name: fired.append(("bpost", n))),
            ]
    got = run(net, x)
    for handle in handles:
        handle.remove()
    assert_same_run(got, expected)
    assert sorted(fired) == sorted((kind, n) for kind in ("pre", "post", "bpre", "bpost") for n in ("0.1", "1.1"))


# --- distributed --------------------------------------------------------------------------------------------


@pytest.fixture
def one_process_group(tmp_path):
    import torch.distributed as dist

    if not dist.is_available():
        pytest.skip("torch.distributed is not available")
    os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    yield
    dist.destroy_process_group()


@pytest.mark.slow
@pytest.mark.parametrize("dynamics, options, imp", CASES)
def test_fsdp2_fully_shard_runs_a_converted_model_in_one_process(dynamics, options, imp, one_process_group):
    # SpikingJelly's vision trainer wraps the model with fully_shard per root and then on the whole model;
    # fully_shard refuses 0-d parameters, so PLIF's w (native or converted) cannot be sharded: LIF nodes here
    from torch.distributed.fsdp import fully_shard

    net, x = converted_net(dynamics, options, imp, plif=False), inputs()
    sharded = copy.deepcopy(net)
    expected = run(net, x)
    for block in sharded:
        fully_shard(block)
    fully_shard(sharded, reshard_after_forward=False)
    got = run(sharded, x)
    got = (got[0], got[1], got[2], {k: v.full_tensor() if hasattr(v, "full_tensor") else v for k, v in got[3].items()})
    assert_same_run(got, expected)


def test_a_converted_class_is_not_a_neuron_class_to_build_from_a_config():
    # SpikingJelly's distributed vision configs build each neuron as neuron_class(**kwargs) from a registered class
    from spikingjelly.activation_based.distributed.vision import register_neuron_class

    node = converted_net("bifurcation", {}, "neuron")[0][1]
    register_neuron_class(type(node))  # SpikingJelly accepts it: it is a BaseNode subclass
    with pytest.raises(TypeError, match="build the library's own LIFNode and convert the model"):
        type(node)(tau=2.0)
    assert isinstance(copy.deepcopy(node), type(node))  # copies and pickles do not construct
