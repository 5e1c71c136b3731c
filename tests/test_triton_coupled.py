"""The triton backend's coupled bifurcation against the reference backend.

Without a GPU the kernels run through Triton's interpreter (the root conftest sets TRITON_INTERPRET); with one,
compiled. Every buffer the launcher allocates starts as NaN (the staged path's scratch too), so an element no
kernel writes, or one read before it is written, cannot pass. Spikes and states must equal the reference's
exactly (the mixing sums in the reference's order, every product and sum rounded); gradients agree to
rounding. Up to ``triton_coupled.CHANNEL_ROWS`` (8) channels the kernels keep the state in registers; past that
they stage it through the scratch, in chunks of that many channels (9 or 17: a last chunk of one real channel).
The fast subset runs the staged path at 9 and 16 channels; 17, 33 and 64 are slow under the interpreter.
"""

import zlib

import hypothesis
import hypothesis.strategies as st
import pytest
import torch

triton = pytest.importorskip("triton")

from bsnn_lightning import BifurcationNeuron  # noqa: E402
from bsnn_lightning.engine import CallSpec, CoupledBifurcation, multistep, resolve_backend  # noqa: E402
from bsnn_lightning.engine import triton_backend, triton_coupled  # noqa: E402
from triton_exactness import assert_matches_reference  # noqa: E402  (tests/triton_exactness.py)

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
if DEVICE == "cpu" and not triton_backend._interpreted(triton_backend._kernels()):
    pytest.skip("no CUDA GPU and Triton's interpreter is off (TRITON_INTERPRET=0)", allow_module_level=True)

pytestmark = [
    pytest.mark.filterwarnings("ignore::RuntimeWarning"),  # numpy's overflow notes in the interpreter
    pytest.mark.usefixtures("poisoned_triton_outputs"),  # every output buffer starts as NaN (conftest.py)
]


def _generator(*key) -> torch.Generator:
    return torch.Generator().manual_seed(zlib.crc32(repr(key).encode()))


def _coupling(channels, g):
    """Near the identity plus mixing, as a trained coupled layer's ``Q diag(1 + lambda) Q^T``."""
    return torch.eye(channels) * 0.8 + torch.randn(channels, channels, generator=g) * (0.3 / channels**0.5)


def _value(kind, sample, g, low, high, batch=None):
    shape = {"layer": (), "channel": (sample[0],), "neuron": sample, "full": (batch, *sample)}[kind]
    return torch.rand(shape, generator=g) * (high - low) + low


def _run(backend, dynamics, x, coupling, threshold, v0, upstream, return_v_seq):
    leaves = {"x": x.detach().clone().requires_grad_(), "coupling": coupling.detach().clone().requires_grad_()}
    if isinstance(threshold, torch.Tensor):
        leaves["threshold"] = threshold.detach().clone().requires_grad_()
    if isinstance(v0, torch.Tensor):
        leaves["v0"] = v0.detach().clone().requires_grad_()
    params = {"coupling": leaves["coupling"], "threshold": leaves.get("threshold", threshold)}
    out = multistep(leaves["x"], dynamics, params, leaves.get("v0", v0), backend=backend, return_v_seq=return_v_seq)
    outputs = [out.spikes, out.v] + ([out.v_seq] if return_v_seq else [])
    torch.autograd.backward(outputs, list(upstream[: len(outputs)]))
    return [o.detach() for o in outputs], {name: leaf.grad for name, leaf in leaves.items()}


def _compare(dynamics, x, coupling, threshold, v0, *, return_v_seq=True, key=()):
    g = _generator("upstream", *key)
    upstream = (
        torch.randn(x.shape, generator=g).to(device=x.device, dtype=x.dtype),
        torch.randn(x.shape[1:], generator=g).to(x.device),
        torch.randn(x.shape, generator=g).to(x.device),
    )
    ref_out, ref_grads = _run("torch", dynamics, x, coupling, threshold, v0, upstream, return_v_seq)
    out, grads = _run("triton", dynamics, x, coupling, threshold, v0, upstream, return_v_seq)
    assert ref_out[0].sum() > 0 and (ref_out[0] == 0).any(), "the case should spike, and not everywhere"
    assert_matches_reference(out, ref_out, grads, ref_grads)


CASES = {
    # name: (dynamics, sample shape, threshold layout, v0 layout)
    "soft-atan-2d": (CoupledBifurcation(surrogate="atan"), (5, 3, 4), "channel", "neuron"),
    "hard-sigmoid-1d": (CoupledBifurcation(v_reset=0.0), (6,), "layer", "full"),
    "hard-detach-triangle-3d": (CoupledBifurcation(v_reset=0.1, detach_reset=True, surrogate="triangle"), (3, 2, 3, 2), "neuron", "channel"),
    "soft-detach-fast-sigmoid-one-channel": (CoupledBifurcation(detach_reset=True, surrogate="fast_sigmoid"), (1, 5), "neuron", "layer"),
    "soft-sixteen-channels": (CoupledBifurcation(surrogate="atan"), (16, 2, 2), "channel", None),
    # staged through the scratch, with a last chunk of one real channel
    "hard-nine-channels-2d": (CoupledBifurcation(v_reset=0.0, surrogate="sigmoid"), (9, 2), "neuron", "full"),
}
#: as CASES, wider: 3 to 8 chunks, too slow under the interpreter for the fast subset (3 to 10 s each)
WIDE_CASES = {
    "hard-seventeen-channels-2d": (CoupledBifurcation(v_reset=0.0, surrogate="sigmoid"), (17, 2), "neuron", "full"),
    "soft-detach-thirty-three-channels-1d": (CoupledBifurcation(detach_reset=True, surrogate="triangle"), (33,), "channel", "neuron"),
    "soft-sixty-four-channels": (CoupledBifurcation(surrogate="atan"), (64, 2), "layer", "channel"),
    "hard-detach-sixty-four-channels-1d": (CoupledBifurcation(v_reset=0.1, detach_reset=True, surrogate="fast_sigmoid"), (64,), "neuron", "full"),
}


def _case(name, steps, dtype, batch=3):
    dynamics, sample, th_kind, v0_kind = {**CASES, **WIDE_CASES}[name]
    g = _generator(name, steps, str(dtype))
    x = (torch.randn((steps, batch, *sample), generator=g) * 0.8 + 0.35).to(device=DEVICE, dtype=dtype)
    coupling = _coupling(sample[0], g).to(DEVICE)
    threshold = _value(th_kind, sample, g, 0.8, 1.2).to(DEVICE)
    v0 = _value(v0_kind, sample, g, 0.0, 0.6, batch).to(DEVICE) if v0_kind else None
    return dynamics, x, coupling, threshold, v0


@pytest.mark.parametrize("name", list(CASES))
def test_matches_the_reference_fp32(name):
    dynamics, x, coupling, threshold, v0 = _case(name, 7, torch.float32)
    _compare(dynamics, x, coupling, threshold, v0, key=(name,))


@pytest.mark.slow
@pytest.mark.parametrize("steps", [1, 20])
@pytest.mark.parametrize("name", list(CASES))
def test_matches_the_reference_fp32_short_and_long(name, steps):
    dynamics, x, coupling, threshold, v0 = _case(name, steps, torch.float32)
    _compare(dynamics, x, coupling, threshold, v0, key=(name, steps))


@pytest.mark.slow
@pytest.mark.parametrize("name", list(WIDE_CASES))
def test_matches_the_reference_wide(name):
    dynamics, x, coupling, threshold, v0 = _case(name, 5, torch.float32)
    _compare(dynamics, x, coupling, threshold, v0, key=(name,))


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_matches_the_reference_at_64_channels_16_bit(dtype):
    dynamics, x, coupling, threshold, v0 = _case("hard-detach-sixty-four-channels-1d", 4, dtype)
    _compare(dynamics, x, coupling, threshold, v0, key=("64", str(dtype)))


@pytest.mark.parametrize(
    ("name", "dtype"),
    [(n, d) for n in ("soft-atan-2d", "hard-sigmoid-1d") for d in (torch.bfloat16, torch.float16)]
    + [("hard-nine-channels-2d", torch.bfloat16)],
)
def test_matches_the_reference_16_bit_inputs(name, dtype):
    dynamics, x, coupling, threshold, v0 = _case(name, 6, dtype)
    _compare(dynamics, x, coupling, threshold, v0, key=(name, str(dtype)))


def test_a_16_bit_coupling_as_autocast_makes_it():
    """Under autocast the module's ``Q diag Q^T`` comes out in 16 bits; both backends take it to fp32."""
    dynamics, x, coupling, threshold, v0 = _case("soft-atan-2d", 5, torch.bfloat16)
    _compare(dynamics, x, coupling.to(torch.bfloat16), threshold, v0, key=("bf16 coupling",))


def test_partial_gradients_and_no_v_seq():
    dynamics, x, coupling, threshold, v0 = _case("hard-sigmoid-1d", 5, torch.float32)
    _compare(dynamics, x, coupling, 1.0, None, return_v_seq=False, key=("partial",))
    # only the coupling needs a gradient: no grad_x is written, the coupling's still comes out
    got, ref = {}, {}
    for backend, into in (("triton", got), ("torch", ref)):
        a = coupling.detach().clone().requires_grad_()
        out = multistep(x, dynamics, {"coupling": a, "threshold": 1.0}, backend=backend)
        (out.spikes.sum() + out.v.square().sum()).backward()
        into["coupling"] = a.grad
    torch.testing.assert_close(got["coupling"], ref["coupling"], rtol=2e-5, atol=2e-5)


def test_inference_saves_nothing_for_a_backward():
    dynamics, x, coupling, threshold, _ = _case("soft-atan-2d", 4, torch.float32)
    with torch.no_grad():
        *_, h_seq = torch.ops.bsnn.triton_coupled(
            x, torch.zeros((), device=DEVICE), coupling, threshold.reshape(-1, 1, 1), *triton_coupled._config(dynamics),
            False, False,
        )  # fmt: skip
        out = multistep(x, dynamics, {"coupling": coupling, "threshold": threshold}, backend="triton")
        ref = multistep(x, dynamics, {"coupling": coupling, "threshold": threshold}, backend="torch")
    assert h_seq.numel() == 0
    assert torch.equal(out.spikes, ref.spikes) and torch.equal(out.v, ref.v)


def test_many_programs_with_a_ragged_last_block():
    """More positions than one program takes (the interpreter's block shrinks with the channels)."""
    g = _generator("ragged")
    dynamics = CoupledBifurcation(surrogate="atan")
    x = (torch.randn(3, 5, 4, 31, 11, generator=g) * 0.8 + 0.35).to(DEVICE)  # 1,705 positions of 4 channels
    assert x.shape[1] * 31 * 11 > triton_backend.INTERPRETER_BLOCK // 4
    _compare(dynamics, x, _coupling(4, g).to(DEVICE), 1.0, None, key=("ragged",))


def test_many_programs_staged(monkeypatch):
    """Staged, each program has a scratch block of its own: 20 positions of 9 channels in programs of 8."""
    monkeypatch.setattr(triton_backend, "INTERPRETER_BLOCK", 8 * triton_coupled.CHANNEL_ROWS)
    g = _generator("ragged staged")
    x = (torch.randn(3, 4, 9, 5, generator=g) * 0.8 + 0.35).to(DEVICE)
    shape = triton_coupled._Shape(x)
    assert shape.staged and shape.launch(interpreted=True)[0] == 8 and shape.positions == 20
    v0 = (torch.rand(4, 9, 5, generator=g) * 0.6).to(DEVICE)
    _compare(CoupledBifurcation(surrogate="atan"), x, _coupling(9, g).to(DEVICE), 1.0, v0, key=("ragged staged",))


@pytest.mark.parametrize("name", ["hard-detach-triangle-3d", "hard-nine-channels-2d"])
def test_64_bit_offsets(monkeypatch, name):
    """Inputs of 2**31 elements or more index with 64-bit offsets; the same kernels, run with them here."""
    monkeypatch.setattr(triton_backend, "WIDE_INDEX_AT", 0)
    dynamics, x, coupling, threshold, v0 = _case(name, 5, torch.float32)
    _compare(dynamics, x, coupling, threshold, v0, key=("wide", name))


@pytest.mark.slow
@hypothesis.settings(
    max_examples=12, deadline=None, suppress_health_check=[hypothesis.HealthCheck.function_scoped_fixture]
)
@hypothesis.given(
    channels=st.integers(1, 40),
    spatial=st.sampled_from([(), (2,), (3, 2)]),
    batch=st.integers(1, 3),
    steps=st.integers(1, 5),
    v_reset=st.sampled_from([None, 0.0, 0.2]),
    detach_reset=st.booleans(),
    surrogate=st.sampled_from(["atan", "sigmoid", "fast_sigmoid", "triangle"]),
    seed=st.integers(0, 2**16),
)
def test_any_layer_matches_the_reference(channels, spatial, batch, steps, v_reset, detach_reset, surrogate, seed):
    """Property: for any channel count (registers or staged, whole or ragged chunks), sample shape, reset and
    surrogate, outputs bit for bit and gradients to rounding (a case that never spikes, or always does, is
    skipped: it checks less)."""
    g = torch.Generator().manual_seed(seed)
    sample = (channels, *spatial)
    x = (torch.randn((steps, batch, *sample), generator=g) * 0.8 + 0.35).to(DEVICE)
    threshold = _value("channel", sample, g, 0.8, 1.2).to(DEVICE)
    v0 = _value("neuron", sample, g, 0.0, 0.6).to(DEVICE)
    coupling = _coupling(channels, g).to(DEVICE)
    dynamics = CoupledBifurcation(v_reset=v_reset, detach_reset=detach_reset, surrogate=surrogate)
    with torch.no_grad():
        spikes = multistep(x, dynamics, {"coupling": coupling, "threshold": threshold}, v0, backend="torch").spikes
    hypothesis.assume(0 < spikes.sum() < spikes.numel())
    _compare(dynamics, x, coupling, threshold, v0, key=("property", seed))


def _interpreter_keeps_signed_zeros() -> bool:
    """Triton 3.8's interpreter (the newest-torch CI environment's) turns some ``-0.0`` results into ``+0.0``
    where compiled code and 3.9's interpreter keep them; compiled, the test runs on any release."""
    import triton

    interpreted = triton_backend._interpreted(triton_backend._kernels())
    return not interpreted or tuple(int(p) for p in triton.__version__.split(".")[:2]) >= (3, 9)


@pytest.mark.skipif(not _interpreter_keeps_signed_zeros(), reason="Triton < 3.9's interpreter loses signs of zeros")
@pytest.mark.parametrize("channels", [3, 9])
def test_signed_zeros_are_the_reference_s(channels):
    """Bit for bit includes the sign of a zero: with a negative ``A``, a zero state and inputs of ``-0.0``, every
    product and sum is a signed zero (``-0.0`` after the first step, ``+0.0`` after the second, ...). The staged
    mixing starts its sums from ``-0.0``, which adds exactly; from ``+0.0`` the first state would be ``+0.0``."""
    coupling = -(torch.rand(channels, channels, generator=_generator("zeros", channels)) + 0.5)
    x = torch.full((4, 2, channels, 3), -0.0)
    outputs = {}
    for backend in ("torch", "triton"):
        out = multistep(x.to(DEVICE), CoupledBifurcation(), {"coupling": coupling.to(DEVICE), "threshold": 1.0},
                        backend=backend, return_v_seq=True)  # fmt: skip
        outputs[backend] = out.v_seq.cpu()
    assert torch.signbit(outputs["torch"][0]).all() and not torch.signbit(outputs["torch"][1]).any()
    assert torch.equal(outputs["triton"].view(torch.int32), outputs["torch"].view(torch.int32))


def test_an_empty_batch():
    dynamics = CoupledBifurcation()
    x = torch.zeros(4, 0, 3, 2, device=DEVICE, requires_grad=True)
    coupling = torch.eye(3, device=DEVICE, requires_grad=True)
    out = multistep(x, dynamics, {"coupling": coupling, "threshold": 1.0}, backend="triton")
    (out.spikes.sum() + out.v.sum()).backward()
    assert out.spikes.shape == x.shape and torch.equal(coupling.grad, torch.zeros(3, 3))


def test_any_channel_count_is_a_row_of_the_dispatch_table():
    """The coupled bifurcation is one row of the triton backend's table, and no channel count is refused."""
    assert triton_backend._FUSED[CoupledBifurcation].run is triton_coupled.run
    for channels in (1, 8, 9, 64, 300):
        x = torch.rand(3, 2, channels, device=DEVICE)
        assert triton_backend.supports(x, CoupledBifurcation()) is None
        assert resolve_backend("triton", x, CoupledBifurcation()).name == "triton"
        assert triton_coupled._Shape(x).staged == (channels > triton_coupled.CHANNEL_ROWS)
    for dtype in (torch.float32, torch.bfloat16):  # "auto" on a GPU, asked with a CallSpec (no GPU needed)
        spec = CallSpec((4, 2, 64, 3), dtype, torch.device("cuda"))
        assert resolve_backend("auto", spec, CoupledBifurcation()).name == "triton"


def test_a_coupled_neuron_on_triton_equals_it_on_torch():
    """The whole module: eigenvalues, basis, learnable IMP and threshold, through the neuron's own call."""
    torch.manual_seed(0)
    sample = (5, 3, 3)
    options = dict(structure="coupled", imp="neuron", eigen_init=(-0.6, 0.1), shape=sample, learn_threshold=True)
    reference = BifurcationNeuron(backend="torch", **options)
    with torch.no_grad():
        for parameter in reference.parameters():  # off the initial values: a coupled basis, a varied IMP
            parameter.add_(torch.randn_like(parameter) * 0.1)
    fused = BifurcationNeuron(backend="triton", **options)
    fused.load_state_dict(reference.state_dict())
    x = (torch.randn(6, 4, *sample) * 0.8 + 0.4).to(DEVICE)
    outputs, grads = {}, {}
    for name, neuron in (("torch", reference.to(DEVICE)), ("triton", fused.to(DEVICE))):
        spikes = neuron(x)
        (spikes * torch.linspace(-1, 1, spikes.shape[-1], device=spikes.device)).sum().backward()
        outputs[name] = spikes.detach()
        grads[name] = {n: p.grad for n, p in neuron.named_parameters()}
    assert outputs["torch"].sum() > 0
    assert torch.equal(outputs["triton"], outputs["torch"])
    assert set(grads["torch"]) >= {"basis", "eigenvalues", "imp"}
    for name, ref in grads["torch"].items():
        torch.testing.assert_close(grads["triton"][name], ref, rtol=1e-4, atol=1e-5, msg=name)


@pytest.mark.slow
def test_custom_ops_pass_opcheck():
    dynamics, x, coupling, threshold, v0 = _case("soft-atan-2d", 5, torch.float32, batch=2)
    x.requires_grad_()
    coupling.requires_grad_()
    threshold = threshold.reshape(-1, 1, 1).requires_grad_()
    v0 = v0.requires_grad_()
    args = (x, v0, coupling, threshold, *triton_coupled._config(dynamics), True, True)
    torch.library.opcheck(torch.ops.bsnn.triton_coupled.default, args)


@pytest.mark.slow
def test_torch_compile_fullgraph_has_no_graph_break_in_the_neuron():
    torch._dynamo.reset()
    dynamics, x, coupling, threshold, _ = _case("soft-atan-2d", 5, torch.float32)
    x.requires_grad_()
    coupling.requires_grad_()
    threshold.requires_grad_()

    def step(x, coupling, threshold):
        out = multistep(x * 2.0, dynamics, {"coupling": coupling, "threshold": threshold}, backend="triton", check_finite=False)
        return out.spikes.sum() + (out.v * out.v).sum()

    compiled = torch.compile(step, fullgraph=True, backend="aot_eager")
    compiled(x, coupling, threshold).backward()
    got = [t.grad.clone() for t in (x, coupling, threshold)]
    for t in (x, coupling, threshold):
        t.grad = None
    step(x, coupling, threshold).backward()
    for a, t in zip(got, (x, coupling, threshold)):
        torch.testing.assert_close(a, t.grad)
