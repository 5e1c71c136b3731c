"""snnTorch adapter: converted ``snntorch.Leaky`` modules against real, unconverted ones.

The exactness contract: with ``dynamics="lif"`` and no IMP a converted model's spikes equal the library's
own bit for bit, its membranes too, and every gradient matches (rtol 1e-5, float32).
"""

import copy
import itertools

import pytest
import torch
from torch import nn

import bsnn_lightning as bl

snn = pytest.importorskip("snntorch")
from snntorch import surrogate, utils  # noqa: E402

T, N, F = 6, 4, 10


def _leaky(**kwargs):
    defaults = dict(
        beta=torch.linspace(0.3, 0.95, F), threshold=1.0, learn_beta=True, learn_threshold=True,
        graded_spikes_factor=1.5, learn_graded_spikes_factor=True,
    )
    defaults.update(kwargs)
    return snn.Leaky(**defaults)


def _inputs(seed=0, shape=(T, N, F)):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=gen) * 1.3 + 0.6, torch.randn(shape, generator=gen)


def _run_per_step(lif, x, style):
    """The user's own time loop, in each of snnTorch's calling styles."""
    x = x.clone().requires_grad_()
    spikes, mems = [], []
    if style == "explicit":
        mem = lif.init_leaky()
        for t in range(x.shape[0]):
            spk, mem = lif(x[t], mem)
            spikes.append(spk), mems.append(mem)
    else:
        lif.reset_mem()
        for t in range(x.shape[0]):
            out = lif(x[t])
            spk, mem = out if style == "hidden+output" else (out, lif.mem)
            spikes.append(spk), mems.append(mem)
    return x, torch.stack(spikes), torch.stack(mems)


def _grads(module, x):
    return [x.grad] + [p.grad for p in module.parameters()]


STYLES = {"explicit": {}, "hidden": {"init_hidden": True}, "hidden+output": {"init_hidden": True, "output": True}}


@pytest.mark.parametrize(
    "reset, delay, style",
    list(itertools.product(["subtract", "zero", "none"], [True, False], list(STYLES))),
    ids=lambda v: str(v),
)
def test_converted_leaky_is_exact(reset, delay, style):
    native = _leaky(reset_mechanism=reset, reset_delay=delay, **STYLES[style])
    converted = bl.convert(copy.deepcopy(native), dynamics="lif", backend="torch")
    assert isinstance(converted, snn.Leaky) and type(converted) is not snn.Leaky
    x, grad = _inputs()

    x_n, s_n, m_n = _run_per_step(native, x, style)
    (s_n * grad).sum().backward()
    x_c, s_c, m_c = _run_per_step(converted, x, style)
    (s_c * grad).sum().backward()

    assert 0 < s_n.count_nonzero() < s_n.numel()
    assert torch.equal(s_c, s_n)
    assert torch.equal(m_c, m_n)
    for g_c, g_n in zip(_grads(converted, x_c), _grads(native, x_n)):
        torch.testing.assert_close(g_c, g_n, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "reset, delay, style, beta, dtype",
    list(itertools.product(["subtract", "zero", "none"], [True, False], ["explicit", "hidden"], ["per-neuron", "scalar"], [torch.bfloat16, torch.float16])),
    ids=lambda v: str(v),
)
def test_converted_leaky_is_exact_with_16_bit_inputs(reset, delay, style, beta, dtype):
    # snnTorch's membrane starts as zeros_like(input); its reset term (a float32 spike mask) or a per-neuron
    # float32 beta promotes it to float32, but with no reset and a scalar beta it stays 16-bit; its spikes are
    # float32 either way. The converted neuron keeps each of these dtypes.
    rate = torch.linspace(0.3, 0.95, F) if beta == "per-neuron" else torch.tensor(0.8)
    native = _leaky(beta=rate, reset_mechanism=reset, reset_delay=delay, **STYLES[style])
    converted = bl.convert(copy.deepcopy(native), dynamics="lif", backend="torch")
    x, grad = _inputs()
    x, grad = x.to(dtype), grad.to(dtype)
    x_n, s_n, m_n = _run_per_step(native, x, style)
    (s_n * grad).sum().backward()
    x_c, s_c, m_c = _run_per_step(converted, x, style)
    (s_c * grad).sum().backward()
    assert 0 < s_n.count_nonzero() < s_n.numel()
    keeps_16_bit = reset == "none" and beta == "scalar"
    assert m_n.dtype == m_c.dtype == (dtype if keeps_16_bit else torch.float32)
    assert s_n.dtype == s_c.dtype == torch.float32
    assert torch.equal(s_c, s_n) and torch.equal(m_c, m_n)
    for g_c, g_n in zip(_grads(converted, x_c), _grads(native, x_n)):
        torch.testing.assert_close(g_c.float(), g_n.float(), rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize(
    "spike_grad, custom",
    [(None, False), (surrogate.atan(alpha=3.0), False), (surrogate.fast_sigmoid(slope=10), False),
     (surrogate.sigmoid(slope=5), False), (surrogate.triangular(), True)],
    ids=["default", "atan3", "fast_sigmoid10", "sigmoid5", "triangular(custom)"],
)
def test_surrogates_are_read_from_the_module(spike_grad, custom):
    native = _leaky(spike_grad=spike_grad)
    copy_ = copy.deepcopy(native)
    if custom:
        with pytest.warns(UserWarning, match="no built-in formula"):
            converted = bl.convert(copy_, dynamics="lif", backend="torch")
    else:
        converted = bl.convert(copy_, dynamics="lif", backend="torch")
    x, grad = _inputs(1)
    x_n, s_n, _ = _run_per_step(native, x, "explicit")
    (s_n * grad).sum().backward()
    x_c, s_c, _ = _run_per_step(converted, x, "explicit")
    (s_c * grad).sum().backward()
    assert torch.equal(s_c, s_n)
    for g_c, g_n in zip(_grads(converted, x_c), _grads(native, x_n)):
        torch.testing.assert_close(g_c, g_n, rtol=1e-5, atol=1e-5)


def test_conv_input_with_per_neuron_beta_broadcasts_like_snntorch():
    # beta of length W broadcasts against [N, C, H, W] from the trailing dimension, as in snnTorch
    native = snn.Leaky(beta=torch.linspace(0.5, 0.9, 5), learn_beta=True)
    converted = bl.convert(copy.deepcopy(native), dynamics="lif", backend="torch")
    x, grad = _inputs(2, (T, N, 3, 4, 5))
    x_n, s_n, _ = _run_per_step(native, x, "explicit")
    (s_n * grad).sum().backward()
    x_c, s_c, _ = _run_per_step(converted, x, "explicit")
    (s_c * grad).sum().backward()
    assert torch.equal(s_c, s_n)
    torch.testing.assert_close(converted.beta.grad, native.beta.grad, rtol=1e-5, atol=1e-5)


def _sequential(**kwargs):
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(2, 4, 3, padding=1), nn.BatchNorm2d(4), snn.Leaky(beta=0.8, init_hidden=True, **kwargs),
        nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4 * 4 * 4, 5),
        snn.Leaky(beta=0.7, init_hidden=True, output=True, **kwargs),
    )


def test_sequential_sequence_mode_equals_the_per_step_loop():
    # eval(): in training mode batch norm sees one step's batch per call but T x N samples in sequence mode
    native = _sequential().eval()
    converted = bl.convert(copy.deepcopy(native), dynamics="lif", backend="torch", step_mode="m")
    x, _ = _inputs(3, (T, N, 2, 8, 8))
    utils.reset(native)
    spikes, mems = zip(*(native(x[t]) for t in range(T)))
    s_n, m_n = torch.stack(spikes), torch.stack(mems)
    (s_n.sum() + m_n.sum()).backward()
    # (a deep copy is not in snnTorch's class-level instance list, so utils.reset would not reach it)
    bl.reset_states(converted)
    s_c, m_c = converted(x)  # the whole sequence in one call
    (s_c.sum() + m_c.sum()).backward()
    assert s_c.shape == (T, N, 5) and m_c.shape == (T, N, 5)
    assert torch.equal(s_c, s_n)
    torch.testing.assert_close(m_c, m_n, rtol=1e-5, atol=1e-6)
    for (name, p_c), p_n in zip(converted.named_parameters(), native.parameters()):
        torch.testing.assert_close(p_c.grad, p_n.grad, rtol=1e-4, atol=1e-5, msg=name)
    # back to one step per call: the folding hooks go away
    bl.convert(converted, step_mode="s")
    bl.reset_states(converted)
    assert torch.equal(converted(x[0])[0], s_n[0])


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_leaky_immediate_reset_runs_fused_and_exact(reset):
    # reset_delay=False (snnTorch's NIR import builds these): SnnTorchLeakyImmediate, on Triton's kernels (through
    # the interpreter on a CPU-only machine); one sequence call of 20 steps (a state checkpoint at 16) against
    # snnTorch's own per-step loop
    pytest.importorskip("triton")
    native = _leaky(reset_mechanism=reset, reset_delay=False, init_hidden=True, output=True)
    converted = bl.convert(copy.deepcopy(native), dynamics="lif", backend="triton", step_mode="m")
    x, grad = _inputs(7, (20, N, F))
    x_n, s_n, m_n = _run_per_step(native, x, "hidden+output")
    (s_n * grad + m_n * grad.flip(0)).sum().backward()
    x_c = x.clone().requires_grad_()
    converted.reset_mem()
    s_c, m_c = converted(x_c)
    (s_c * grad + m_c * grad.flip(0)).sum().backward()
    assert 0 < s_n.count_nonzero() < s_n.numel()
    assert torch.equal(s_c, s_n) and torch.equal(m_c, m_n)
    for g_c, g_n in zip(_grads(converted, x_c), _grads(native, x_n)):
        torch.testing.assert_close(g_c, g_n, rtol=2e-5, atol=1e-5)


def test_module_tree_state_dict_and_checkpoints_are_unchanged():
    native = _sequential()
    before = len(snn.SpikingNeuron.instances)
    converted = bl.convert(copy.deepcopy(native), dynamics="lif", backend="torch")
    assert len(snn.SpikingNeuron.instances) == before, "conversion registered new snnTorch neurons"
    assert [n for n, _ in converted.named_modules()] == [n for n, _ in native.named_modules()]
    assert list(converted.state_dict()) == list(native.state_dict())
    converted.load_state_dict(native.state_dict())  # a native checkpoint loads into a converted model
    native.load_state_dict(converted.state_dict())  # and back
    assert before == len(snn.SpikingNeuron.instances)


def test_snntorch_reset_utilities_reset_converted_neurons():
    net = bl.convert(_sequential(), dynamics="lif", backend="torch")
    x, _ = _inputs(4, (T, N, 2, 8, 8))
    utils.reset(net)
    first = torch.stack([net(x[t])[0] for t in range(T)])
    assert net[2].mem.abs().sum() > 0
    utils.reset(net)  # snnTorch's own utility: Leaky.reset_hidden over the class-level instance list
    assert net[2].mem.abs().sum() == 0
    again = torch.stack([net(x[t])[0] for t in range(T)])
    assert torch.equal(first, again)


def test_imp_starts_each_sequence_from_the_learned_potential():
    native = _leaky(reset_mechanism="subtract")
    converted = bl.convert(copy.deepcopy(native), dynamics="lif", imp="layer", backend="torch")
    imp = converted.imp.detach().clone()
    assert 0.4 <= float(imp) <= 0.6 * 1.0
    x, _ = _inputs(5)
    # the converted neuron with an IMP equals the native one started from mem = IMP
    mem = torch.full((N, F), float(imp))
    expected = []
    for t in range(T):
        spk, mem = native(x[t], mem)
        expected.append(spk)
    for _ in range(2):  # and every sequence starts there again after init_leaky()
        mem_c = converted.init_leaky()
        got = []
        for t in range(T):
            spk, mem_c = converted(x[t], mem_c)
            got.append(spk)
        assert torch.equal(torch.stack(got), torch.stack(expected))
    # a detached copy of the membrane continues the sequence (truncated BPTT), it does not restart it
    mem_c = converted.init_leaky()
    spk, mem_c = converted(x[0], mem_c)
    spk, mem_c = converted(x[1], mem_c.detach())
    assert torch.equal(spk, expected[1])


def test_bifurcation_and_imp_parameters_train_save_and_restore(tmp_path):
    net = _sequential()
    example = torch.randn(T, N, 2, 8, 8)
    bl.convert(net, dynamics="bifurcation", imp="channel", backend="torch", step_mode="m", example_input=example)
    names = [n for n, _ in net.named_parameters()]
    assert {"2.imp", "2.eigenvalues", "6.imp", "6.eigenvalues"} <= set(names)
    assert net[2].imp.shape == (4,) and net[6].eigenvalues.shape == (5,)
    groups = bl.neuron_param_groups(net, weight_decay=0.1)
    no_decay = {id(p) for p in groups[1]["params"]}
    assert groups[1]["weight_decay"] == 0.0 and id(net[2].imp) in no_decay and id(net[6].eigenvalues) in no_decay
    opt = torch.optim.SGD(groups, lr=0.1)
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    for _ in range(2):
        utils.reset(net)
        spikes, mem = net(example)
        loss = mem.square().mean() + spikes.mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    for name in ("2.imp", "2.eigenvalues", "6.eigenvalues"):
        assert not torch.equal(dict(net.named_parameters())[name], before[name]), f"{name} did not train"
    path = tmp_path / "ckpt.pt"
    torch.save(net.state_dict(), path)
    # a freshly built and converted model (shapes not yet known) restores them from the checkpoint
    fresh = bl.convert(_sequential(), dynamics="bifurcation", imp="channel", backend="torch", step_mode="m",
                       example_input=example)
    fresh.load_state_dict(torch.load(path))
    for name, p in net.state_dict().items():
        assert torch.equal(fresh.state_dict()[name], p), name
    utils.reset(net), utils.reset(fresh)
    assert torch.equal(fresh(example)[0], net(example)[0])


def test_every_other_snntorch_neuron_is_refused_by_name():
    net = nn.Sequential(nn.Linear(3, 3), snn.Lapicque(beta=0.9))
    with pytest.raises(ValueError, match=r"snntorch\.Lapicque is not supported.*backend='native'"):
        bl.convert(net, dynamics="lif", backend="torch")
    assert bl.convert(net, backend="native") is net  # left as it is


def test_unsupported_options_and_native_round_trip():
    with pytest.raises(ValueError, match="inhibition"):
        bl.convert(nn.Sequential(snn.Leaky(beta=0.9, inhibition=True)), backend="torch")
    with pytest.raises(ValueError, match="reset_mechanism='none'"):
        bl.convert(nn.Sequential(snn.Leaky(beta=0.9, reset_mechanism="none")), dynamics="bifurcation")
    net = nn.Sequential(snn.Leaky(beta=0.9))
    bl.convert(net, dynamics="lif", backend="torch")
    bl.convert(net, dynamics="lif", backend="torch")  # idempotent
    bl.convert(net, backend="native")
    assert type(net[0]) is snn.Leaky
    bl.convert(net, imp="layer", backend="torch")
    with pytest.raises(ValueError, match="added parameters"):
        bl.convert(net, backend="native")
    with pytest.raises(ValueError, match="native"):
        bl.convert(net, dynamics="bifurcation", backend="native")


def test_shapes_come_from_an_example_or_an_earlier_run_else_a_clear_error():
    net = nn.Sequential(nn.Linear(3, 6), snn.Leaky(beta=0.9, init_hidden=True))
    with pytest.raises(ValueError, match=r"need their input shape.*example_input"):
        bl.convert(net, dynamics="bifurcation", structure="coupled", backend="torch")
    assert type(net[1]) is snn.Leaky and not hasattr(net[1], "bsnn_settings")  # refused before it was converted
    fresh = nn.Sequential(nn.Linear(3, 6), snn.Leaky(beta=0.9, init_hidden=True))
    fresh(torch.randn(2, 3))  # one native step: the membrane [2, 6] tells the layer's shape
    bl.convert(fresh, dynamics="bifurcation", structure="coupled", imp="channel", backend="torch")
    assert fresh[1].eigenvalues.shape == (6,) and fresh[1].basis.shape == (6, 6) and fresh[1].imp.shape == (6,)
    fresh[1].reset_mem()
    assert fresh(torch.randn(2, 3)).shape == (2, 6)


def test_a_refused_neuron_leaves_the_whole_model_untouched():
    net = nn.Sequential(nn.Linear(3, 3), snn.Leaky(beta=0.9), nn.Linear(3, 3), snn.Lapicque(beta=0.9))
    with pytest.raises(ValueError, match=r"cannot convert '3'.*Lapicque"):
        bl.convert(net, dynamics="lif", backend="torch")
    assert type(net[1]) is snn.Leaky  # the Leaky before it was not converted either
