"""Property-based tests of the misuse contract (issue 19): drawn models (nested containers, one neuron at several
places, subclasses of supported neurons (declared with ``same_equations`` or not), snnTorch and SpikingJelly neurons beside this package's own), drawn
``convert`` options, and drawn orders of convert / load_state_dict / optimizer creation / reset / deepcopy.

Invariants:
- every neuron is converted as asked, or the call is refused naming a neuron that cannot be, and then nothing
  in the model changed;
- converting twice with the same options changes nothing;
- a state dict round-trips exactly (and the loaded model computes what the saved one does) or is refused;
- ``reset_states`` clears every state: after it a model computes what it computed from rest;
- a checkpoint of model and optimizer resumes to the same next step, bit for bit;
- the neuron parameters no optimizer holds are exactly those created after it was built.

Two profiles: ``fast`` (a few examples each, derandomized: part of the fast subset) and ``long`` (marked slow, so
CI's plain ``pytest`` runs it). ``BSNN_HYPOTHESIS_EXAMPLES=N`` sets the long profile's number of examples.
"""

from __future__ import annotations

import copy
import io
import os
import re
import warnings

import pytest
import snntorch as snn
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spikingjelly.activation_based import neuron
from torch import nn

import bsnn_lightning as bl
from bsnn_lightning.adapters.inplace import ConvertedNeuron
from bsnn_lightning.convert import spiking_neurons, unoptimized_parameters
from bsnn_lightning.neuron_params import MethodNeuron

_COMMON = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large], database=None)
FAST = settings(max_examples=6, derandomize=True, **_COMMON)
LONG = settings(max_examples=int(os.environ.get("BSNN_HYPOTHESIS_EXAMPLES", "150")), **_COMMON)
PROFILES = [pytest.param(FAST, id="fast"), pytest.param(LONG, id="long", marks=pytest.mark.slow)]

T, N, F = 3, 2, 4


class UserLIF(neuron.LIFNode):
    """A user's subclass: it may change the equations, so convert must refuse it."""


class UserLeaky(snn.Leaky):
    pass


@bl.same_equations
class DeclaredLIF(neuron.LIFNode):
    """A subclass declared to compute LIFNode's equations: converted as LIFNode."""

    def __init__(self):
        super().__init__(tau=3.0, step_mode="m")


@bl.same_equations
class DeclaredLeaky(snn.Leaky):
    pass


_MAKERS = {
    "own_lif": lambda: bl.LIFNeuron(tau=2.0, v_reset=None),
    "own_bif": lambda: bl.BifurcationNeuron(),
    "sj_lif": lambda: neuron.LIFNode(step_mode="m"),
    "sj_plif": lambda: neuron.ParametricLIFNode(step_mode="m"),
    "sj_if": lambda: neuron.IFNode(step_mode="m", v_reset=None),
    "snn_leaky": lambda: snn.Leaky(beta=0.8, init_hidden=True),
    "sj_declared": lambda: DeclaredLIF(),
    "snn_declared": lambda: DeclaredLeaky(beta=0.7, init_hidden=True),
    "sj_subclass": lambda: UserLIF(step_mode="m"),
    "snn_subclass": lambda: UserLeaky(beta=0.8, init_hidden=True),
}
_SUPPORTED = ["own_lif", "own_bif", "sj_lif", "sj_plif", "sj_if", "snn_leaky", "sj_declared", "snn_declared"]
_OWN = ("own_lif", "own_bif")
_SNN = {"snn_leaky", "snn_declared", "snn_subclass"}
_SUBCLASSES = ("sj_subclass", "snn_subclass")


@st.composite
def model_specs(draw, kinds=tuple(_MAKERS)):
    """A layout: per place, the neuron kind (or the index of an earlier place whose object it shares) and how
    deep it sits in nested containers."""
    count = draw(st.integers(1, 3))
    places = []
    for i in range(count):
        share = i > 0 and draw(st.booleans())
        kind = draw(st.integers(0, i - 1)) if share else draw(st.sampled_from(kinds))
        places.append((kind, draw(st.integers(0, 2))))
    return places


def build(specs, seed=0):
    """The model of a layout: Linear(F, F) before every neuron, each pair wrapped in ``depth`` Sequentials."""
    torch.manual_seed(seed)
    objects, blocks = [], []
    for kind, depth in specs:
        module = objects[kind] if isinstance(kind, int) else _MAKERS[kind]()
        objects.append(module)
        block = nn.Sequential(nn.Linear(F, F), module)
        for _ in range(depth):
            block = nn.Sequential(block)
        blocks.append(block)
    return nn.Sequential(*blocks, nn.Linear(F, 2))


def kinds_of(specs):
    out = []
    for kind, _ in specs:
        out.append(out[kind] if isinstance(kind, int) else kind)
    return out


@st.composite
def options(draw, specs, native=True):
    kinds = set(kinds_of(specs))
    backend = draw(st.sampled_from([None, "torch", "auto", "native"] if native else [None, "torch", "auto"]))
    if backend == "native":
        return dict(dynamics=draw(st.sampled_from([None, "lif"])), imp=draw(st.sampled_from([None, "none"])), backend=backend)
    opts = dict(
        dynamics=draw(st.sampled_from([None, "lif", "bifurcation"])),
        imp=draw(st.sampled_from([None, "none", "layer", "channel", "neuron"])),
        backend=backend,
    )
    if opts["dynamics"] == "bifurcation":
        opts["structure"] = draw(st.sampled_from(["diagonal", "coupled"]))
        if draw(st.booleans()):
            opts.update(bounds=(-0.5, 0.3), eigen_init=(-0.5, 0.0))
    if kinds & _SNN:
        opts["step_mode"] = "m"  # snnTorch neurons take whole sequences only in convert's sequence mode
    return opts


def refusable(kind, opts) -> bool:
    """Whether convert must refuse a neuron of this kind with these options."""
    if kind in _SUBCLASSES:
        return opts.get("backend") != "native"
    if kind in _OWN and opts.get("backend") == "native":
        return True
    return kind == "own_bif" and opts.get("dynamics") == "lif"


def x_batch(seed=1):
    return torch.rand(T, N, F, generator=torch.Generator().manual_seed(seed)) * 2


def snapshot(model):
    return [(name, type(m)) for name, m in model.named_modules(remove_duplicate=False)], {
        k: v.clone() for k, v in model.state_dict().items()
    }


def same_state(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def placements(model):
    """For every neuron object, the set of places that hold it."""
    places = {}
    for name, module in model.named_modules(remove_duplicate=False):
        if isinstance(module, (MethodNeuron, neuron.BaseNode, snn.SpikingNeuron)):
            places.setdefault(id(module), set()).add(name)
    return sorted(sorted(p) for p in places.values())


def convert_quietly(model, opts, x):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return bl.convert(model, **opts, example_input=x)


def runs_on_sequences(specs, opts) -> bool:
    snn_kinds = _SNN & set(kinds_of(specs))
    return not snn_kinds or opts.get("step_mode") == "m" and opts.get("backend") != "native"


def run(profile, prop):
    profile(given(st.data())(prop))()


# --- every neuron converted, or the call refused naming one ----------------------------------------------------------
def _converted_or_refused(data):
    specs = data.draw(model_specs())
    opts = data.draw(options(specs))
    model, x = build(specs), x_batch()
    before, places = snapshot(model), placements(model)
    kinds = kinds_of(specs)
    must_refuse = any(refusable(k, opts) for k in kinds)
    try:
        model = convert_quietly(model, opts, x)
    except ValueError as error:
        assert must_refuse, f"refused {opts} on {kinds}: {error}"
        named = re.match(r"cannot convert '([^']+)'", str(error))
        assert named, str(error)
        refused_module = dict(model.named_modules())[named.group(1)]
        index = next(i for i, (name, _) in enumerate(_top_places(model)) if name == named.group(1))
        assert refusable(kinds[index], opts) and refused_module is not None
        after = snapshot(model)
        assert after[0] == before[0] and same_state(after[1], before[1])  # nothing changed
        return
    assert not must_refuse, f"converted {kinds} with {opts}"
    assert placements(model) == places  # a shared neuron is still one object, at all its places
    for name, module, _ in spiking_neurons(model):
        if opts.get("backend") == "native":
            assert not isinstance(module, ConvertedNeuron), name
            continue
        assert isinstance(module, MethodNeuron), name
        settings_ = module.bsnn_settings
        if opts.get("dynamics"):
            assert settings_.dynamics == opts["dynamics"], name
        if opts.get("imp"):
            assert settings_.imp == (None if opts["imp"] == "none" else opts["imp"]), name
            if settings_.imp is not None:
                assert module.imp is not None and module.imp.dim() == (0 if settings_.imp == "layer" else 1), name
        if settings_.dynamics == "bifurcation":
            assert module.eigenvalues is not None and (module.basis is not None) == (settings_.structure == "coupled")
    if runs_on_sequences(specs, opts):
        assert model(x).shape == (T, N, 2)


def _top_places(model):
    """(qualified name, module) of every neuron place, in model order."""
    return [
        (name, m) for name, m in model.named_modules(remove_duplicate=False)
        if isinstance(m, (MethodNeuron, neuron.BaseNode, snn.SpikingNeuron))
    ]


@pytest.mark.parametrize("profile", PROFILES)
def test_every_neuron_is_converted_or_the_call_refused_naming_it(profile):
    run(profile, _converted_or_refused)


# --- converting twice with the same options changes nothing ------------------------------------------------------------
def _convert_twice(data):
    specs = data.draw(model_specs(_SUPPORTED))
    opts = data.draw(options(specs, native=False))
    if any(refusable(k, opts) for k in kinds_of(specs)):
        return
    x = x_batch()
    model = convert_quietly(build(specs), opts, x)
    types, state = snapshot(model)
    settings_ = [m.bsnn_settings for _, m, _ in spiking_neurons(model)]
    out = model(x)
    bl.reset_states(model)
    model = convert_quietly(model, opts, x)
    again = snapshot(model)
    assert again[0] == types and same_state(again[1], state)
    assert [m.bsnn_settings for _, m, _ in spiking_neurons(model)] == settings_
    assert torch.equal(model(x), out)


@pytest.mark.parametrize("profile", PROFILES)
def test_converting_twice_with_the_same_options_changes_nothing(profile):
    run(profile, _convert_twice)


# --- a state dict round-trips exactly or is refused ------------------------------------------------------------------
def _round_trip(data):
    specs = data.draw(model_specs(_SUPPORTED))
    saved_opts, loading_opts = data.draw(options(specs, native=False)), data.draw(options(specs, native=False))
    kinds = kinds_of(specs)
    if any(refusable(k, saved_opts) or refusable(k, loading_opts) for k in kinds):
        return
    x = x_batch()
    saved = convert_quietly(build(specs, seed=0), saved_opts, x)
    state = copy.deepcopy(saved.state_dict())
    buffer = io.BytesIO()
    torch.save(state, buffer)  # through the file format, as a checkpoint goes
    buffer.seek(0)
    try:
        loading = convert_quietly(build(specs, seed=1), loading_opts, x)
    except ValueError:
        return  # e.g. a BifurcationNeuron asked for dynamics='lif' after an earlier dynamics=None: refused, by name
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            loading.load_state_dict(torch.load(buffer))
        except RuntimeError as error:
            assert re.search(r"Unexpected key|Missing key|size mismatch|a stored|trained clamped", str(error)), str(error)
            return
    assert same_state(loading.state_dict(), state)
    bl.reset_states(saved), bl.reset_states(loading)
    assert torch.equal(loading(x), saved(x))  # what loads computes what was saved


@pytest.mark.parametrize("profile", PROFILES)
def test_a_state_dict_round_trips_exactly_or_is_refused(profile):
    run(profile, _round_trip)


# --- reset_states clears every state -------------------------------------------------------------------------------
def _reset_clears(data):
    specs = data.draw(model_specs())
    opts = data.draw(options(specs, native=False))
    model, x = build(specs), x_batch()
    try:
        model = convert_quietly(model, opts, x)
    except ValueError:
        if _SNN & set(kinds_of(specs)):
            return  # snnTorch's own neurons take one step per call: this layout runs only converted
    with torch.no_grad():
        first = model(x)
        model(x)  # the state moves on
        bl.reset_states(model)
        for module in model.modules():
            assert _at_rest(module), module
        assert torch.equal(model(x), first)


def _at_rest(module) -> bool:
    """True if ``module`` holds no state of a sequence."""
    if isinstance(module, bl.LIFNeuron) or isinstance(module, bl.BifurcationNeuron):
        return module.v is None
    if isinstance(module, neuron.BaseNode):  # every SpikingJelly memory at its reset value
        memories = [(getattr(module, k), v) for k, v in module._memories_rv.items() if not isinstance(v, torch.Tensor)]
        return all(not isinstance(now, torch.Tensor) and now == rest for now, rest in memories)
    if isinstance(module, snn.SpikingNeuron):
        return not module.mem.any()
    return True


@pytest.mark.parametrize("profile", PROFILES)
def test_reset_states_clears_every_state(profile):
    run(profile, _reset_clears)


# --- a checkpoint resumes to the same next step --------------------------------------------------------------------
def _train_step(model, optimizer, x, weight):
    bl.reset_states(model)
    optimizer.zero_grad()
    (model(x) * weight).sum().backward()
    optimizer.step()
    bl.reset_states(model)


def _resume(data):
    specs = data.draw(model_specs(_SUPPORTED))
    opts = data.draw(options(specs, native=False))
    if any(refusable(k, opts) for k in kinds_of(specs)):
        return
    x1, x2, weight = x_batch(1), x_batch(2), torch.randn(T, N, 2, generator=torch.Generator().manual_seed(3))
    make_optimizer = data.draw(st.sampled_from([
        lambda m: torch.optim.Adam(bl.neuron_param_groups(m, weight_decay=0.01), lr=1e-2),
        lambda m: torch.optim.SGD(m.parameters(), lr=0.1, momentum=0.9),
    ]))
    model = convert_quietly(build(specs), opts, x1)
    optimizer = make_optimizer(model)
    assert unoptimized_parameters(model, [optimizer]) == []
    _train_step(model, optimizer, x1, weight)
    checkpoint = io.BytesIO()
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, checkpoint)
    if data.draw(st.booleans()):  # resume in a fresh process: build, convert, load
        resumed = convert_quietly(build(specs, seed=5), opts, x1)
    else:  # or in a copy of the model
        resumed = copy.deepcopy(model)
    resumed_optimizer = make_optimizer(resumed)
    checkpoint.seek(0)
    loaded = torch.load(checkpoint)
    resumed.load_state_dict(loaded["model"])
    resumed_optimizer.load_state_dict(loaded["optimizer"])
    _train_step(model, optimizer, x2, weight)
    _train_step(resumed, resumed_optimizer, x2, weight)
    assert same_state(resumed.state_dict(), model.state_dict())


@pytest.mark.parametrize("profile", PROFILES)
def test_a_checkpoint_resumes_to_the_same_next_step(profile):
    run(profile, _resume)


# --- in any order of convert / optimizer / reset / copy / forward: what no optimizer holds is named -------------------
def _orders(data):
    specs = data.draw(model_specs(_SUPPORTED))
    model, x = build(specs), x_batch()
    places = placements(model)
    optimizer, held = None, set()
    for op in data.draw(st.lists(st.sampled_from(["convert", "optimizer", "reset", "deepcopy", "forward"]), min_size=1, max_size=6)):
        if op == "convert":
            opts = data.draw(options(specs, native=False))
            if any(refusable(k, opts) for k in kinds_of(specs)):
                continue
            try:
                model = convert_quietly(model, opts, x)
            except ValueError as error:  # a BifurcationNeuron an earlier convert made cannot become LIF again
                assert "cannot turn a BifurcationNeuron back into LIF" in str(error)
                continue
        elif op == "optimizer":
            optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
            held = {id(p) for p in model.parameters()}
        elif op == "reset":
            bl.reset_states(model)
        elif op == "deepcopy":
            model = copy.deepcopy(model)
        elif runs_on_sequences(specs, {"step_mode": "m"} if _converted_snn(model) else {}):
            with torch.no_grad():
                model(x)
        assert placements(model) == places
        if optimizer is not None:
            neuron_ids = {id(p) for _, m, a in spiking_neurons(model) for p in a.neuron_parameters(m)}
            expected = [n for n, p in model.named_parameters() if id(p) in neuron_ids and id(p) not in held and p.requires_grad]
            assert unoptimized_parameters(model, [optimizer]) == expected


def _converted_snn(model):
    return any(isinstance(m, snn.SpikingNeuron) and isinstance(m, MethodNeuron) and m.bsnn_settings.step_mode == "m" for m in model.modules())


@pytest.mark.parametrize("profile", PROFILES)
def test_parameters_no_optimizer_holds_are_named_in_any_order(profile):
    run(profile, _orders)
