"""What README.md and docs/*.md say, held to the code.

The docs' code blocks themselves run through Sybil (the root conftest.py): ```python blocks in the fast subset,
```bash blocks in the slow tests, each block that cannot run here skipped with its reason. The tests below keep
that machinery honest (every block names its language, so no command hides in an unlabelled block; every path
the docs name exists) and back statements of behaviour and defaults that no other test pins, each quoted.
"""

import functools
import inspect
import re
from pathlib import Path

import pytest
import torch
import yaml
from sybil import Document
from sybil.parsers.markdown.lexers import RawFencedCodeBlockLexer
from torch import nn

import bsnn_lightning as bl
from bsnn_lightning import LIFNeuron, losses, models
from bsnn_lightning.callbacks import ConvertNeurons
from bsnn_lightning.convert import spiking_neurons
from bsnn_lightning.neuron_params import MethodSettings

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli", reason="reading pyproject.toml on Python 3.10 needs tomli")

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: the languages a fenced block may name: python and bash blocks run (conftest.py), text and yaml are shown only
LANGUAGES = {"python", "bash", "text", "yaml"}
#: files the docs name that a command writes (so they need not exist in a checkout), with the command
WRITTEN_BY_COMMANDS = {"bench/results/kernels.json": "python bench/kernels.py, on a GPU"}
REPOSITORY_PATH = re.compile(r"`((?:bsnn_lightning|tests|bench|recipes|docs|\.ci)/[^`\s]*|conftest\.py|pyproject\.toml)`")


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_fenced_block_names_its_language(doc):
    lexer = RawFencedCodeBlockLexer(info_pattern=re.compile(r"(?P<info>.*)$\n", re.MULTILINE))
    document = Document(doc.read_text(), str(doc))
    found = [(document.line_column(region.start), region.lexemes["info"]) for region in lexer(document)]
    assert found or "```" not in doc.read_text()  # the lexer sees the blocks there are
    unlabelled = [(where, info) for where, info in found if info not in LANGUAGES]
    assert not unlabelled, f"expected every fenced block to name one of {sorted(LANGUAGES)}, got {unlabelled}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_repository_path_the_docs_name_exists(doc):
    named = {m.group(1).split("::")[0].rstrip(",.:") for m in REPOSITORY_PATH.finditer(doc.read_text())}
    missing = sorted(
        path for path in named
        if "<" not in path and path not in WRITTEN_BY_COMMANDS
        and not (any(ROOT.glob(path)) if "*" in path else (ROOT / path).exists())
    )  # fmt: skip
    assert not missing, f"{doc.name} names paths this checkout does not have: {missing}"


def test_the_networks_take_their_neuron_as_one_argument_but_the_two_library_nets():
    """README: "The networks of `bsnn_lightning.models` take their neuron ... as one argument `neuron` (all but
    `SnnTorchConvNet` and `SpikingJellyConvNet` ...), a zero-argument factory (`functools.partial(LIFNeuron,
    tau=2.0, v_reset=None)` ...); left out, each builds its recipe's neuron.\""""
    networks = [getattr(models, name) for name in models.__all__ if name not in ("NeuronFactory", "TimeDistributed")]
    takes = {net.__name__ for net in networks if "neuron" in inspect.signature(net).parameters}
    assert {net.__name__ for net in networks} - takes == {"SnnTorchConvNet", "SpikingJellyConvNet"}
    net = models.SpikingConvNet(neuron=functools.partial(LIFNeuron, tau=2.0, v_reset=None))
    neurons = [m for _, m, _ in spiking_neurons(net)]
    assert neurons and all(type(m) is LIFNeuron and float(m.tau) == 2.0 and m.v_reset is None for m in neurons)


def test_the_spikingjelly_extra_installs_its_dependencies_only():
    """README: "the `spikingjelly` extra installs only its dependencies, loguru and numpy\""""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert extras["spikingjelly"] == ["loguru", "numpy"]


def test_which_dvs_recipes_ask_for_a_gpu():
    """README: "Every DVS recipe but `nmnist_bsnn` asks for a GPU (`trainer.accelerator: gpu`; the five IMP and
    gesture recipes with `precision: 16-mixed`, the two TET recipes `cifar10dvs_vggsnn_tet` and
    `cifar10dvs_vggsnnwoap_tet` with `32-true`).\""""
    embedded = {"quickstart", "quickstart_snntorch", "quickstart_spikingjelly", "intervals"}
    trainers = {
        path.stem: yaml.safe_load(path.read_text())["trainer"]
        for path in (ROOT / "recipes").glob("*.yaml") if path.stem not in embedded
    }  # fmt: skip
    on_gpu = {name: t.get("precision") for name, t in trainers.items() if t.get("accelerator") == "gpu"}
    assert set(trainers) - set(on_gpu) == {"nmnist_bsnn"}
    assert on_gpu.pop("cifar10dvs_vggsnn_tet") == on_gpu.pop("cifar10dvs_vggsnnwoap_tet") == "32-true"
    assert len(on_gpu) == 5 and set(on_gpu.values()) == {"16-mixed"}


def test_the_method_defaults():
    """docs/methods.md: eigenvalues start "evenly spread over `eigen_init` (default `[-0.8, 0.0]`...)", are clamped
    to "`bounds` (default `[-1.0, 0.2]`)"; the IMP is "initialised `U(0.4, 0.6) x theta`"; docs/adapters.md: the
    membrane's dtype is `state_dtype="native"`, "the default of `convert`, `ConvertNeurons` and the neuron
    settings"."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 64), LIFNeuron(threshold=2.0))
    bl.convert(net, dynamics="bifurcation", imp="channel", example_input=torch.rand(3, 2, 4))
    neuron = net[1]
    settings = neuron.bsnn_settings
    assert (settings.eigen_init, settings.bounds, settings.state_dtype) == ((-0.8, 0.0), (-1.0, 0.2), "native")
    assert torch.equal(neuron.eigenvalues.detach().sort().values, torch.linspace(-0.8, 0.0, 64))
    imp = neuron.imp.detach()
    assert imp.min() >= 0.4 * 2.0 and imp.max() <= 0.6 * 2.0 and imp.max() - imp.min() > 0.1
    assert MethodSettings().state_dtype == "native"
    assert inspect.signature(ConvertNeurons).parameters["state_dtype"].default is None  # leaves it


def test_the_loss_defaults():
    """docs/methods.md: TET is "`(1 - lam) mean_t CE(O_t, y) + lam MSE(O, phi)`; lam = 1e-3, phi = 1"; README:
    label-smoothed TET with `epsilon=0.01` (the IMP paper's) is `mean_t CE(O_t, y~)`, without the MSE term."""
    torch.manual_seed(0)
    out, target = torch.randn(4, 3, 5, dtype=torch.float64), torch.tensor([0, 3, 4])
    ce = torch.stack([nn.functional.cross_entropy(o, target) for o in out]).mean()
    assert torch.allclose(losses.tet(out, target), (1 - 1e-3) * ce + 1e-3 * (out - 1).square().mean(), rtol=1e-12)
    smoothed = torch.stack([nn.functional.cross_entropy(o, target, label_smoothing=0.01) for o in out]).mean()
    assert torch.allclose(losses.label_smoothed_tet(out, target), smoothed, rtol=1e-12)


def _snntorch():
    return pytest.importorskip("snntorch")


def _spikingjelly():
    return pytest.importorskip("spikingjelly.activation_based.neuron"), pytest.importorskip("spikingjelly.activation_based.surrogate")


#: docs/adapters.md, "Refused, with a message that names the class and what to do": (the neuron, the convert
#: arguments, what the message must name) for the entries no adapter test covers
REFUSALS = {
    "snntorch LeakyParallel": (lambda: _snntorch().LeakyParallel(input_size=3, hidden_size=4), {}, r"snntorch\.LeakyParallel is not supported.*backend='native'"),
    "snntorch SLSTM": (lambda: _snntorch().SLSTM(input_size=3, hidden_size=4), {}, r"snntorch\.SLSTM is not supported.*backend='native'"),
    "snntorch state_quant": (lambda: _snntorch().Leaky(beta=0.9, state_quant=lambda u: u), {}, r"snntorch\.Leaky with state_quant.*backend='native'"),
    "snntorch surrogate_disable": (lambda: _snntorch().Leaky(beta=0.9, surrogate_disable=True), {}, r"snntorch\.Leaky with surrogate_disable.*backend='native'"),
    "spikingjelly QIFNode": (lambda: _spikingjelly()[0].QIFNode(), {}, r"spikingjelly QIFNode is not supported.*backend='native'"),
    "spikingjelly spiking=False": (
        lambda: _spikingjelly()[0].LIFNode(surrogate_function=_spikingjelly()[1].ATan(spiking=False)), {},
        r"LIFNode has a surrogate with spiking=False.*set surrogate_function\.spiking = True or keep backend='native'",
    ),
    "native with an IMP": (lambda: _snntorch().Leaky(beta=0.9), {"backend": "native", "imp": "layer"}, r"backend='native' keeps .* no bifurcation dynamics, IMP or sequence mode"),
    "native in sequence mode": (lambda: _snntorch().Leaky(beta=0.9), {"backend": "native", "step_mode": "m"}, r"backend='native' keeps .* no bifurcation dynamics, IMP or sequence mode"),
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_the_documented_refusals_name_the_class_and_what_to_do(case):
    make, arguments, message = REFUSALS[case]
    net = nn.Sequential(nn.Linear(3, 3), make())
    kind = type(net[1])
    with pytest.raises(ValueError, match=message):
        bl.convert(net, **{"backend": "torch", **arguments})
    assert type(net[1]) is kind and not hasattr(net[1], "bsnn_settings")  # left as it was
