"""The Triton kernels against the reference backend, on fresh random inputs for every configuration.

Without a GPU the kernels run through Triton's interpreter (the root ``conftest.py`` sets TRITON_INTERPRET);
with one, compiled. Every output buffer the backend allocates is filled with NaN first, so an element a
kernel forgets to write shows up. Spikes and states must equal the reference's exactly (same arithmetic,
in the same order); gradients agree to rounding (the sigmoid surrogate's exp is a libm call on both sides).
"""

import zlib

import pytest
import torch

triton = pytest.importorskip("triton")

from bsnn_lightning.engine import (  # noqa: E402
    DiagonalBifurcation,
    SnnTorchLeaky,
    SnnTorchLeakyImmediate,
    SnnTorchSynapticZero,
    SnnTorchSynapticZeroImmediate,
    SpikingJelly014LIF,
    SpikingJelly014PLIF,
    SpikingJellyIF,
    SpikingJellyLIF,
    SpikingJellyPLIF,
    multistep,
)
from bsnn_lightning.engine import triton_backend  # noqa: E402
from triton_exactness import assert_matches_reference  # noqa: E402  (tests/triton_exactness.py)

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
if DEVICE == "cpu" and not triton_backend._interpreted(triton_backend._kernels()):
    pytest.skip("no CUDA GPU and Triton's interpreter is off (TRITON_INTERPRET=0)", allow_module_level=True)

pytestmark = [
    pytest.mark.filterwarnings("ignore::RuntimeWarning"),  # numpy's overflow notes in the interpreter
    pytest.mark.usefixtures("poisoned_triton_outputs"),  # every output buffer starts as NaN (conftest.py)
]

C, H, W = 3, 7, 11  # one sample: 231 neurons, not a multiple of any block


def _generator(*key) -> torch.Generator:
    """A fresh, reproducible random stream per configuration."""
    return torch.Generator().manual_seed(zlib.crc32(repr(key).encode()))


def _values(spec, g):
    """Build a parameter from its spec: a float, or (kind, low, high) with kind layer/channel/neuron."""
    if isinstance(spec, float):
        return spec
    kind, lo, hi = spec
    shape = {"layer": (), "channel": (C,), "neuron": (C, H, W)}[kind]
    return torch.rand(shape, generator=g) * (hi - lo) + lo


def _initial_state(kind, g, n):
    if kind is None:
        return None
    shape = {"layer": (), "channel": (C,), "neuron": (C, H, W), "full": (n, C, H, W)}[kind]
    return torch.rand(shape, generator=g) * 0.8


CASES = {
    "sj-lif-hard-sigmoid": (SpikingJellyLIF(), {"tau": ("layer", 1.5, 3.0), "threshold": ("channel", 0.8, 1.2)}, "neuron"),
    "sj-lif-soft-detach-atan": (
        SpikingJellyLIF(v_reset=None, detach_reset=True, surrogate="atan"),
        {"tau": ("channel", 1.5, 4.0), "threshold": 1.0},
        "full",
    ),
    "sj-lif-nodecay-vreset-triangle": (
        SpikingJellyLIF(decay_input=False, v_reset=0.25, surrogate="triangle:0.5"),
        {"tau": ("neuron", 1.5, 4.0), "threshold": ("neuron", 0.8, 1.2)},
        "channel",
    ),
    "sj-lif-soft-fast-sigmoid-floats": (SpikingJellyLIF(v_reset=None, surrogate="fast_sigmoid"), {"tau": 2.0, "threshold": 1.0}, None),
    "sj-lif-hard-detach": (SpikingJellyLIF(detach_reset=True), {"tau": ("layer", 1.5, 3.0), "threshold": ("layer", 0.9, 1.1)}, "layer"),
    "snntorch-subtract-atan": (
        SnnTorchLeaky(),  # beta straddles the clamp at 0 and 1
        {"beta": ("channel", -0.2, 1.2), "threshold": ("layer", 0.8, 1.2), "graded": ("layer", 0.5, 2.0)},
        "full",
    ),
    "snntorch-zero-fast-sigmoid": (
        SnnTorchLeaky(reset_mechanism="zero", surrogate="fast_sigmoid"),
        {"beta": ("layer", 0.5, 0.95), "threshold": ("neuron", 0.8, 1.2), "graded": ("channel", 0.5, 2.0)},
        "neuron",
    ),
    "snntorch-none-sigmoid": (
        SnnTorchLeaky(reset_mechanism="none", surrogate="sigmoid"),
        {"beta": ("neuron", 0.5, 1.0), "threshold": 1.0, "graded": 1.0},
        None,
    ),
    "bifurcation-soft-channel": (
        DiagonalBifurcation(),  # eigenvalues straddle the bounds (-1, 0.2)
        {"eigenvalues": ("channel", -1.3, 0.4), "threshold": ("layer", 0.8, 1.2)},
        "channel",
    ),
    "bifurcation-hard-detach-neuron-triangle": (
        DiagonalBifurcation(v_reset=0.0, detach_reset=True, surrogate="triangle"),
        {"eigenvalues": ("neuron", -1.0, 0.2), "threshold": ("channel", 0.8, 1.2)},
        "neuron",
    ),
    "sj-if-soft": (SpikingJellyIF(v_reset=None), {"threshold": ("channel", 0.8, 1.5)}, "full"),
    "sj-plif-hard": (SpikingJellyPLIF(), {"q": ("channel", 0.2, 0.7), "threshold": ("layer", 0.8, 1.2)}, "neuron"),
    "sj-plif-nodecay-soft-atan": (
        SpikingJellyPLIF(decay_input=False, v_reset=None, surrogate="atan"),
        {"q": ("layer", 0.2, 0.7), "threshold": 1.0},
        "layer",
    ),
    # snnTorch's reset_delay=False: the state after a step needs the one before it besides h (graded != 1)
    "snntorch-immediate-subtract-atan": (
        SnnTorchLeakyImmediate(),  # beta straddles the clamp at 0 and 1
        {"beta": ("neuron", -0.2, 1.2), "threshold": ("channel", 0.8, 1.2), "graded": ("neuron", 0.5, 2.0)},
        "full",
    ),
    "snntorch-immediate-zero-sigmoid": (
        SnnTorchLeakyImmediate(reset_mechanism="zero", surrogate="sigmoid"),
        {"beta": ("channel", -0.2, 1.2), "threshold": ("layer", 0.8, 1.2), "graded": ("layer", 0.5, 2.0)},
        "neuron",
    ),
    "snntorch-immediate-subtract-triangle-floats": (
        SnnTorchLeakyImmediate(surrogate="triangle"),
        {"beta": 0.8, "threshold": 1.0, "graded": 1.7},
        None,
    ),
    # snnTorch Synaptic's reset to zero of the charged membrane, delayed and immediate
    "snntorch-synaptic-zero-fast-sigmoid": (
        SnnTorchSynapticZero(surrogate="fast_sigmoid"),
        {"beta": ("layer", -0.2, 1.2), "threshold": ("neuron", 0.8, 1.2), "graded": ("channel", 0.5, 2.0)},
        "channel",
    ),
    "snntorch-synaptic-zero-immediate-atan": (
        SnnTorchSynapticZeroImmediate(),
        {"beta": ("channel", -0.2, 1.2), "threshold": ("channel", 0.8, 1.2), "graded": ("neuron", 0.5, 2.0)},
        "full",
    ),
    # SpikingJelly 0.0.0.0.14's product form: the decay factor 1 - 1/tau (or 1 - q) rounded as the reference
    # rounds it, a Python-float tau in double, a tensor tau in float32
    "sj014-lif-soft-floats": (SpikingJelly014LIF(v_reset=None), {"tau": 3.0, "threshold": 1.0}, "channel"),
    "sj014-lif-hard-detach-triangle": (
        SpikingJelly014LIF(v_reset=0.0, detach_reset=True, surrogate="triangle"),
        {"tau": ("neuron", 1.5, 12.0), "threshold": ("channel", 0.8, 1.2)},
        "full",
    ),
    "sj014-plif-soft-atan": (
        SpikingJelly014PLIF(v_reset=None, surrogate="atan"),
        {"q": ("channel", 0.1, 0.7), "threshold": ("layer", 0.8, 1.2)},
        "neuron",
    ),
    "sj014-plif-hard-float-q": (SpikingJelly014PLIF(), {"q": 0.3, "threshold": ("neuron", 0.8, 1.2)}, "layer"),
}


def _run(backend, dynamics, x, params, v0, grads, return_v_seq=True):
    """Forward on one backend, then backward from fixed upstream gradients; returns outputs and gradients."""
    leaves = {"x": x.detach().clone().requires_grad_()}
    if isinstance(v0, torch.Tensor):
        leaves["v0"] = v0.detach().clone().requires_grad_()
    for name, value in params.items():
        if isinstance(value, torch.Tensor):
            leaves[name] = value.detach().clone().requires_grad_()
    values = {name: leaves.get(name, value) for name, value in params.items()}
    out = multistep(leaves["x"], dynamics, values, leaves.get("v0", v0), backend=backend, return_v_seq=return_v_seq)
    grad_spikes, grad_v, grad_v_seq = grads
    outputs = [out.spikes, out.v] + ([out.v_seq] if return_v_seq else [])
    upstream = [grad_spikes, grad_v] + ([grad_v_seq] if return_v_seq else [])
    torch.autograd.backward(outputs, upstream)
    return [o.detach() for o in outputs], {name: leaf.grad for name, leaf in leaves.items()}


def _compare(dynamics, params, v0, x, *, return_v_seq=True, seed_key=()):
    g = _generator("grads", *seed_key)
    grads = (
        torch.randn(x.shape, generator=g).to(device=x.device, dtype=x.dtype),
        torch.randn(x.shape[1:], generator=g).to(x.device),
        torch.randn(x.shape, generator=g).to(x.device),
    )
    ref_out, ref_grads = _run("torch", dynamics, x, params, v0, grads, return_v_seq)
    out, got_grads = _run("triton", dynamics, x, params, v0, grads, return_v_seq)
    assert ref_out[0].sum() > 0, "the case should spike, or the reset path goes untested"
    assert_matches_reference(out, ref_out, got_grads, ref_grads)


def _inputs(key, steps, n, dtype, scale=1.0):
    g = _generator("x", *key)
    x = torch.randn((steps, n, C, H, W), generator=g) * 0.7 * scale + 0.4
    return x.to(device=DEVICE, dtype=dtype)


def _case(name, key):
    dynamics, specs, v0_kind = CASES[name]
    g = _generator("params", *key)
    params = {k: _values(spec, g) for k, spec in specs.items()}
    params = {k: (v.to(DEVICE) if isinstance(v, torch.Tensor) else v) for k, v in params.items()}
    return dynamics, params, v0_kind, g


@pytest.mark.slow
@pytest.mark.parametrize("steps", [1, 5, 17])
@pytest.mark.parametrize("name", list(CASES))
def test_matches_the_reference_fp32(name, steps):
    key = (name, steps, "fp32")
    dynamics, params, v0_kind, g = _case(name, key)
    v0 = _initial_state(v0_kind, g, 2)
    v0 = v0.to(DEVICE) if v0 is not None else None
    _compare(dynamics, params, v0, _inputs(key, steps, 2, torch.float32), seed_key=key)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("name", ["sj-lif-hard-sigmoid", "snntorch-subtract-atan", "bifurcation-soft-channel", "sj-plif-hard"])
def test_matches_the_reference_16_bit_inputs(name, dtype):
    key = (name, str(dtype))
    dynamics, params, v0_kind, g = _case(name, key)
    v0 = _initial_state(v0_kind, g, 2)
    _compare(dynamics, params, v0.to(DEVICE) if v0 is not None else None, _inputs(key, 6, 2, dtype), seed_key=key)


#: the dynamics fused since issue 12: snnTorch's immediate reset (the backward keeps the states entering each
#: step), Synaptic's reset to zero of the charged membrane, SpikingJelly 0.0.0.0.14's product form
LATER_CASES = [name for name in CASES if name.startswith(("snntorch-immediate", "snntorch-synaptic", "sj014"))]


@pytest.mark.parametrize(
    "name, dtype",
    [("snntorch-immediate-subtract-atan", torch.float32), ("snntorch-synaptic-zero-fast-sigmoid", torch.float16),
     ("snntorch-synaptic-zero-immediate-atan", torch.bfloat16), ("sj014-lif-soft-floats", torch.float32),
     ("sj014-plif-soft-atan", torch.float16)],
)  # fmt: skip
def test_immediate_reset_synaptic_zero_and_014_product_form_at_17_steps(name, dtype):
    """Each class fused since issue 12 once, T = 17 (a checkpoint, a ragged last chunk), outside the slow set."""
    key = (name, "fast", str(dtype))
    dynamics, params, v0_kind, g = _case(name, key)
    v0 = _initial_state(v0_kind, g, 2)
    x = _inputs(key, 17, 2, dtype)
    _compare(dynamics, params, v0.to(DEVICE) if v0 is not None else None, x, seed_key=key)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("name", LATER_CASES)
def test_later_dynamics_match_the_reference_16_bit_inputs(name, dtype):
    key = (name, str(dtype))
    dynamics, params, v0_kind, g = _case(name, key)
    v0 = _initial_state(v0_kind, g, 2)
    x = _inputs(key, 6, 2, dtype)
    _compare(dynamics, params, v0.to(DEVICE) if v0 is not None else None, x, seed_key=key)


@pytest.mark.slow
@pytest.mark.parametrize(
    "name",
    ["sj-lif-nodecay-vreset-triangle", "snntorch-zero-fast-sigmoid", "bifurcation-hard-detach-neuron-triangle",
     "snntorch-immediate-subtract-atan", "snntorch-synaptic-zero-immediate-atan", "sj014-lif-hard-detach-triangle"],
)  # fmt: skip
def test_long_sequences_use_checkpoints(name):
    """T = 40: two state checkpoints and a last chunk of 8 of 16 steps (and a ragged forward chunk)."""
    key = (name, "long")
    dynamics, params, v0_kind, g = _case(name, key)
    v0 = _initial_state(v0_kind, g, 2)
    _compare(dynamics, params, v0.to(DEVICE) if v0 is not None else None, _inputs(key, 40, 2, torch.float32), seed_key=key)


@pytest.mark.slow
@pytest.mark.parametrize(
    "name, dtype",
    [("sj-lif-hard-sigmoid", torch.float32), ("sj-lif-hard-sigmoid", torch.bfloat16),
     ("snntorch-zero-fast-sigmoid", torch.float32), ("snntorch-immediate-zero-sigmoid", torch.float32)],
)  # fmt: skip
def test_whole_chunks_with_checkpoints(name, dtype):
    """T = 32: whole chunks only (no step tested against T), four forward chunks, two backward chunks and one
    checkpoint; a layer of 16 x 231 neurons (a multiple of 16: the forward's 4-neuron vectors)."""
    key = (name, "whole", str(dtype))
    dynamics, params, v0_kind, g = _case(name, key)
    x = (torch.randn((32, 16, C, H, W), generator=_generator("x", *key)) * 0.7 + 0.4).to(DEVICE, dtype)
    assert x[0].numel() % 16 == 0 and 32 % triton_backend.CHECKPOINT_EVERY == 0
    v0 = _initial_state(v0_kind, g, 16)
    _compare(dynamics, params, v0.to(DEVICE) if v0 is not None else None, x, seed_key=key)


@pytest.mark.parametrize("name", ["sj-lif-hard-sigmoid", "snntorch-none-sigmoid", "sj-lif-soft-detach-atan"])
def test_saturated_surrogates(name):
    """Inputs some 60 times larger: far from the threshold the sigmoid's exponential overflows to inf (its
    gradient is then 0, not the NaN of inf * 0) and the others' reciprocals are tiny."""
    key = (name, "saturated")
    dynamics, params, v0_kind, g = _case(name, key)
    v0 = _initial_state(v0_kind, g, 2)
    x = _inputs(key, 7, 2, torch.float32, scale=60.0)
    _compare(dynamics, params, v0.to(DEVICE) if v0 is not None else None, x, seed_key=key)


@pytest.mark.slow
def test_64_bit_offsets(monkeypatch):
    """Inputs of 2**31 elements or more index with 64-bit offsets; the same kernels, run with them here."""
    monkeypatch.setattr(triton_backend, "WIDE_INDEX_AT", 0)
    key = ("wide",)
    dynamics, params, v0_kind, g = _case("snntorch-subtract-atan", key)
    v0 = _initial_state(v0_kind, g, 2)
    _compare(dynamics, params, v0.to(DEVICE), _inputs(key, 19, 2, torch.float32), seed_key=key)


@pytest.mark.slow
def test_many_programs_with_a_ragged_last_block(monkeypatch):
    """Small interpreter blocks: 3 * 231 neurons over 11 programs of 64, the last one partly masked."""
    monkeypatch.setattr(triton_backend, "INTERPRETER_BLOCK", 64)
    key = ("ragged",)
    dynamics, params, v0_kind, g = _case("sj-lif-hard-sigmoid", key)
    v0 = _initial_state("full", g, 3).to(DEVICE)
    _compare(dynamics, params, v0, _inputs(key, 7, 3, torch.float32), seed_key=key)


def test_non_contiguous_input_and_state():
    key = ("non-contiguous",)
    dynamics, params, _, g = _case("snntorch-subtract-atan", key)
    wide = _inputs(key, 6, 4, torch.float32)
    x = wide[:, ::2]  # every other sample: a strided view
    assert not x.is_contiguous()
    v0 = torch.rand((C, W, H), generator=g).to(DEVICE).transpose(1, 2)  # per-neuron, transposed
    assert not v0.is_contiguous()
    _compare(dynamics, params, v0, x, seed_key=key)


def test_without_v_seq_and_with_partial_upstream_gradients():
    """Only the spikes, or only the final state, carry a gradient: the other is absent in the backward."""
    key = ("partial",)
    dynamics, params, v0_kind, g = _case("sj-lif-hard-sigmoid", key)
    x = _inputs(key, 7, 2, torch.float32)
    v0 = _initial_state(v0_kind, g, 2).to(DEVICE)
    _compare(dynamics, params, v0, x, return_v_seq=False, seed_key=key)
    for keep in ("spikes", "v"):
        results = []
        for backend in ("torch", "triton"):
            leaf = x.detach().clone().requires_grad_()
            th = params["threshold"].detach().clone().requires_grad_()
            out = multistep(leaf, dynamics, {"tau": params["tau"], "threshold": th}, v0, backend=backend)
            getattr(out, keep).sum().backward()
            results.append((leaf.grad, th.grad))
        for a, b in zip(*results):
            torch.testing.assert_close(b, a, rtol=2e-5, atol=1e-6)


def test_gradients_of_parameters_only():
    """x without requires_grad: the backward writes no grad_x, parameter gradients still reduce over the batch."""
    key = ("params-only",)
    dynamics, params, _, g = _case("bifurcation-soft-channel", key)
    x = _inputs(key, 9, 3, torch.float32)
    results = []
    for backend in ("torch", "triton"):
        eig = params["eigenvalues"].detach().clone().requires_grad_()
        out = multistep(x, dynamics, {"eigenvalues": eig, "threshold": params["threshold"]}, backend=backend)
        out.spikes.sum().backward()
        results.append(eig.grad)
    torch.testing.assert_close(results[1], results[0], rtol=2e-5, atol=1e-6)


def test_inference_saves_no_checkpoints():
    x = _inputs(("inference",), 40, 2, torch.float32)
    with torch.no_grad():
        ref = multistep(x, SpikingJellyLIF(), {"tau": 2.0, "threshold": 1.0}, backend="torch")
        out = multistep(x, SpikingJellyLIF(), {"tau": 2.0, "threshold": 1.0}, backend="triton")
    assert torch.equal(out.spikes, ref.spikes) and torch.equal(out.v, ref.v)
    config = triton_backend._Config.of(SpikingJellyLIF())
    one = torch.ones((), device=DEVICE)
    *_, ckpt = torch.ops.bsnn.triton_multistep(x, one * 0, one * 2, one, None, *config, False, False)
    assert ckpt.numel() == 0
    *_, ckpt = torch.ops.bsnn.triton_multistep(x, one * 0, one * 2, one, None, *config, False, True)
    assert ckpt.shape == (2, *x.shape[1:])  # the states entering steps 16 and 32


def test_an_empty_batch():
    x = torch.zeros(4, 0, C, device=DEVICE, requires_grad=True)
    out = multistep(x, SpikingJellyLIF(), {"tau": 2.0, "threshold": 1.0}, backend="triton")
    assert out.spikes.shape == (4, 0, C) and out.v.shape == (0, C)
    out.spikes.sum().backward()
    assert x.grad.shape == x.shape
