"""The methods' settings are declared once (``MethodSettings``): ``convert``, ``ConvertNeurons``, the neurons and
the ``bsnn`` command take their keywords, defaults and help from its fields."""

import inspect
from dataclasses import fields
from pathlib import Path

import pytest
import torch
from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from torch import nn

import bsnn_lightning as bl
from bsnn_lightning.callbacks import ConvertNeurons
from bsnn_lightning.cli import main
from bsnn_lightning.neuron_params import (
    BIFURCATION_OPTIONS,
    MethodSettings,
    settings_keywords,
)
from bsnn_lightning.neurons import NEURON_DEFAULTS, NEURON_SETTINGS

QUICKSTART = str(Path(__file__).resolve().parents[1] / "recipes" / "quickstart.yaml")
FIELDS = [f.name for f in fields(MethodSettings)]

pytestmark = pytest.mark.filterwarnings("ignore:LightningCLI's args parameter is intended")


@pytest.mark.parametrize("function", [bl.convert, ConvertNeurons], ids=["convert", "ConvertNeurons"])
def test_convert_and_the_callback_take_every_setting_as_a_keyword_that_defaults_to_none(function):
    parameters = inspect.signature(function).parameters
    for name in FIELDS:
        assert parameters[name].kind is inspect.Parameter.KEYWORD_ONLY and parameters[name].default is None
    documented = bl.convert.__doc__ if function is bl.convert else ConvertNeurons.__init__.__doc__
    for f in fields(MethodSettings):
        assert f"        {f.name}: {f.metadata['help']}" in documented
    assert not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())


def test_the_neurons_take_their_defaults_from_the_settings():
    defaults = MethodSettings()
    lif = inspect.signature(bl.LIFNeuron.__mro__[1]).parameters  # EngineNeuron: what LIFNeuron hands **kwargs to
    bifurcation = inspect.signature(bl.BifurcationNeuron).parameters
    for name in NEURON_SETTINGS:
        assert lif[name].default == NEURON_DEFAULTS.get(name, getattr(defaults, name))
    for name in BIFURCATION_OPTIONS:
        assert bifurcation[name].default == getattr(defaults, name)
    assert bl.BifurcationNeuron().bsnn_settings == defaults.updated(dynamics="bifurcation", **NEURON_DEFAULTS)
    assert bl.LIFNeuron().bsnn_settings == defaults.updated(**NEURON_DEFAULTS)


def test_a_lif_neuron_refuses_bifurcation_options_by_name():
    with pytest.raises(TypeError, match=r"LIFNeuron got unexpected settings \['bounds'\]; expected some of \['imp'"):
        bl.LIFNeuron(bounds=(-0.5, 0.2))


def test_convert_takes_a_whole_settings_object_and_keywords_change_it():
    net = nn.Sequential(nn.Linear(4, 3), bl.LIFNeuron(imp="layer"))
    wanted = MethodSettings(dynamics="bifurcation", bounds=(-0.5, 0.2), eigen_init=(-0.5, 0.0), backend="torch")
    bl.convert(net, wanted, granularity="neuron", example_input=torch.rand(2, 2, 4))
    # a whole MethodSettings: its imp=None removes the IMP; its step_mode None leaves the neuron's ("m")
    assert net[1].bsnn_settings == wanted.updated(granularity="neuron", step_mode="m")
    assert net[1].imp is None and tuple(net[1].eigenvalues.shape) == (3,)


def test_convert_refuses_a_setting_given_twice_an_unknown_name_and_a_wrong_settings_type():
    net = nn.Sequential(nn.Linear(4, 3), bl.LIFNeuron())
    with pytest.raises(ValueError, match="got the dynamics twice: 'bifurcation' and dynamics='lif'"):
        bl.convert(net, "bifurcation", dynamics="lif")
    with pytest.raises(ValueError, match=r"unknown neuron settings \['tau'\]; expected some of \['dynamics', 'imp'"):
        bl.convert(net, tau=2.0)
    with pytest.raises(TypeError, match=r"expected settings as a MethodSettings, a dynamics name .* got \{'imp'"):
        bl.convert(net, {"imp": "layer"})
    with pytest.raises(ValueError, match=r"unknown neuron settings \['tau'\]"):
        ConvertNeurons(tau=2.0)


def test_every_registered_backend_can_be_named_and_an_unknown_one_is_refused_with_the_names(monkeypatch):
    """The backends a neuron, ``convert`` and a recipe's YAML accept are the engine's registry and "auto" (before,
    a fixed list left out the registered ``cpu`` backend: ``backend="cpu"`` was refused); a backend registered by
    the user's own code can be named too."""
    from dataclasses import replace

    from bsnn_lightning.engine import backends

    assert MethodSettings(backend="cpu").backend == "cpu"
    with pytest.raises(ValueError, match=r"expected backend to be one of \['cpu', 'torch', 'triton', 'auto'\], got 'fast'"):
        MethodSettings(backend="fast")
    net = nn.Sequential(nn.Linear(4, 3), bl.LIFNeuron())
    with pytest.raises(ValueError, match=r"one of \['cpu', 'torch', 'triton', 'auto', 'native'\] or None, got 'fast'"):
        bl.convert(net, backend="fast")
    bl.convert(net, backend="cpu")
    assert net[1].bsnn_settings.backend == "cpu"
    monkeypatch.setitem(backends._BACKENDS, "mine", replace(backends._BACKENDS["torch"], name="mine"))
    assert MethodSettings(backend="mine").backend == "mine"


@pytest.mark.slow  # compiles the cpu backend's loop (seconds)
def test_a_neuron_converted_to_the_cpu_backend_runs_it_and_computes_the_librarys_spikes(monkeypatch):
    """``convert(..., backend="cpu")`` on a real snnTorch Leaky: each call goes to the ``cpu`` backend (a spy on
    the registered backend counts them, then calls it) and the spikes are snnTorch's own, bit for bit."""
    from dataclasses import replace

    snntorch = pytest.importorskip("snntorch")
    from bsnn_lightning.engine import backends

    registered, calls = backends._BACKENDS["cpu"], []

    def spy(*args, **kwargs):
        calls.append(args[0].shape)
        return registered.run(*args, **kwargs)

    monkeypatch.setitem(backends._BACKENDS, "cpu", replace(registered, run=spy))
    torch.manual_seed(0)
    native = snntorch.Leaky(beta=0.9, init_hidden=True)
    converted = bl.convert(snntorch.Leaky(beta=0.9, init_hidden=True), backend="cpu")
    x = torch.rand(5, 3, 8) * 2
    want = []
    for t in range(x.shape[0]):
        want.append(native(x[t]))
    got = [converted(x[t]) for t in range(x.shape[0])]
    assert len(calls) == x.shape[0]
    assert all(torch.equal(a, b) for a, b in zip(got, want))


def test_the_old_options_dict_still_works_for_one_release_with_a_deprecation_warning():
    with pytest.warns(DeprecationWarning, match=r"ConvertNeurons\(options=\{...\}\) is deprecated.*structure='coupled'"):
        old = ConvertNeurons(dynamics="bifurcation", options={"structure": "coupled"})
    assert old.changes == ConvertNeurons(dynamics="bifurcation", structure="coupled").changes
    with pytest.raises(ValueError, match=r"got \['bounds'\] both in options and as keywords"), pytest.warns(DeprecationWarning):
        ConvertNeurons(bounds=(-1.0, 0.1), options={"bounds": (-1.0, 0.2)})


def test_the_old_positional_imp_and_backend_still_work_for_one_release_with_a_deprecation_warning():
    net = nn.Sequential(nn.Linear(4, 3), bl.LIFNeuron())
    with pytest.warns(DeprecationWarning, match="give imp='layer' and backend='torch' as keywords") as caught:
        bl.convert(net, None, "layer", "torch")
    assert caught[0].filename == __file__  # pointed at the caller's line
    assert (net[1].bsnn_settings.imp, net[1].bsnn_settings.backend) == ("layer", "torch")
    with pytest.raises(TypeError, match=r"convert got \['imp'\] both by position and as keywords"):
        bl.convert(net, None, "layer", imp="channel")


def test_settings_keywords_refuses_a_function_without_var_keywords():
    def plain(x):
        return x

    with pytest.raises(TypeError, match=r"expected a function taking \*\*changes, got .*plain"):
        settings_keywords()(plain)


CHANGES = st.fixed_dictionaries(
    {},
    optional={
        "dynamics": st.sampled_from(["lif", "bifurcation"]),
        "imp": st.sampled_from(["neuron", "channel", "layer", "none"]),
        "imp_init": st.tuples(st.floats(-1, 0), st.floats(0, 1)),
        "backend": st.sampled_from(["torch", "auto"]),
        "state_dtype": st.sampled_from(["native", "float32"]),
        "check_finite": st.sampled_from(["auto", "sync", "defer", "off"]),
        "step_mode": st.sampled_from(["s", "m"]),
    },
)


@hypothesis_settings(max_examples=25, deadline=None)
@given(changes=CHANGES)
def test_the_callback_and_convert_give_a_neuron_what_settings_updated_gives(changes):
    neuron = bl.LIFNeuron(shape=(3,))
    before = neuron.bsnn_settings
    callback = ConvertNeurons(**changes)
    converted = bl.convert(nn.Sequential(neuron), example_input=torch.rand(1, 2, 3), **callback.changes)[0]
    assert converted.bsnn_settings == before.updated(**changes)


def _cli_output(capsys, args) -> str:
    with pytest.raises(SystemExit) as done:
        main(["fit", "--config", QUICKSTART, *args])
    assert done.value.code in (0, None)
    return capsys.readouterr().out


def test_print_config_shows_every_setting_of_the_callback(capsys):
    out = _cli_output(capsys, ["--print_config"])
    block = out[out.index("class_path: bsnn_lightning.callbacks.ConvertNeurons"):]
    block = block[: block.index("- class_path", 1)]
    for name in FIELDS:
        assert f"      {name}: " in block, name
    assert "dynamics: bifurcation" in block and "imp: channel" in block


def test_help_shows_every_setting_of_the_callback_with_its_help(capsys):
    out = " ".join(_cli_output(capsys, ["--trainer.callbacks.help", "bsnn_lightning.callbacks.ConvertNeurons"]).split())
    for f in fields(MethodSettings):
        assert f"--trainer.callbacks.{f.name} " in out
        assert " ".join(f.metadata["help"].split()[:6]) in out, f.name
