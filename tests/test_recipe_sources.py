"""Every published recipe against its source, row by row (``recipes/sources/<recipe>.yaml``).

Each row names a setting, the source's file and value, and where the recipe holds it: ``key`` (a dotted path
into the configuration the ``bsnn`` parser builds from the recipe, defaults filled in) or ``probe`` (a fact of
the network and optimizer groups the recipe builds, measured below). The test builds every recipe through the
parser, reads each row's recipe value and asserts it; a row marked ``same: yes`` must also hold the source's
value, and every other row (``equivalent``, ``no``, ``ours``) must say why. The network's parameter count is
checked twice: against the source's layer list (counted here from the layers) and against the built network;
its forward pass runs on one CPU batch of the real shape. ``docs/recipes.md`` must be what
``recipes/sources/render.py`` makes of the lists.
"""

from __future__ import annotations

import importlib.util
import math
import re
from functools import lru_cache
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml
from torch import nn
from torch.utils.data import TensorDataset

from bsnn_lightning import BifurcationNeuron, EngineNeuron, SpikingClassifier, convert
from bsnn_lightning.callbacks import ConvertNeurons
from bsnn_lightning.convert import decay_param_groups, spiking_neurons
from bsnn_lightning.cli import BsnnCLI
from bsnn_lightning.models.gesture import SequenceDropout, VotingLayer
from bsnn_lightning.models.layers import TimeScaledBatchNorm2d

ROOT = Path(__file__).resolve().parents[1]
RECIPES = ROOT / "recipes"
SOURCES = RECIPES / "sources"
PUBLISHED = sorted(p.stem for p in SOURCES.glob("*.yaml"))
SAME = ("yes", "equivalent", "no", "ours")

pytestmark = pytest.mark.filterwarnings("ignore:LightningCLI's args parameter is intended")


def load(name: str) -> dict:
    return yaml.safe_load((SOURCES / f"{name}.yaml").read_text())


def needs_spikingjelly(name: str) -> None:
    if "spikingjelly" in (RECIPES / f"{name}.yaml").read_text():
        pytest.importorskip("spikingjelly.activation_based", reason="this recipe's neurons are SpikingJelly's")


# --- building a recipe and measuring it ------------------------------------------------------------------------


@lru_cache(maxsize=None)
def built(name: str):
    """The recipe as ``bsnn`` parses and instantiates it (CPU, fp32), its neurons converted as its
    ConvertNeurons callback converts them, on one batch of the real shape."""
    args = ["--config", str(RECIPES / f"{name}.yaml"), "--trainer.accelerator=cpu", "--trainer.precision=32-true"]
    cli = BsnnCLI(L.LightningModule, L.LightningDataModule, subclass_mode_model=True, subclass_mode_data=True, run=False, args=args)
    example = torch.zeros(1, *cli.datamodule.input_shape)
    for callback in cli.trainer.callbacks:
        if isinstance(callback, ConvertNeurons):
            convert(cli.model, example_input=example, **callback.changes)
    return cli, example


def neurons(model: nn.Module) -> list[nn.Module]:
    return [m for _, m, _ in spiking_neurons(model)]


def describe_layers(net: nn.Module) -> list[str]:
    """The network's layers in order, one token each (the format of the source lists' ``layers`` rows)."""
    found = set(id(m) for m in neurons(net))
    tokens = []
    for module in net.modules():
        if id(module) in found:
            tokens.append("bif" if isinstance(module, BifurcationNeuron) else "lif")
        elif isinstance(module, nn.Conv2d):
            stride = "" if module.stride == (1, 1) else f"/{module.stride[0]}"
            tokens.append(f"conv{module.in_channels}-{module.out_channels}{stride}{'+b' if module.bias is not None else ''}")
        elif isinstance(module, TimeScaledBatchNorm2d):
            tokens.append(f"bn{module.num_features}*t{module.time_steps}")
        elif isinstance(module, nn.BatchNorm2d):
            tokens.append(f"bn{module.num_features}")
        elif isinstance(module, nn.AvgPool2d):
            tokens.append(f"avgpool{module.kernel_size}")
        elif isinstance(module, nn.MaxPool2d):
            tokens.append(f"maxpool{module.kernel_size}")
        elif isinstance(module, nn.AdaptiveAvgPool2d):
            tokens.append("gap")
        elif isinstance(module, nn.Linear):
            tokens.append(f"linear{module.in_features}-{module.out_features}{'+b' if module.bias is not None else ''}")
        elif isinstance(module, nn.Dropout):
            tokens.append(f"dropout{module.p:g}")
        elif isinstance(module, SequenceDropout):
            tokens.append(f"seqdropout{module.p:g}")
        elif isinstance(module, VotingLayer):
            tokens.append(f"vote{module.size}")
    return tokens


_TOKEN = re.compile(
    r"conv(?P<ci>\d+)-(?P<co>\d+)(?:/\d+)?(?P<cb>\+b)?|bn(?P<bn>\d+)(?:\*t(?P<t>\d+))?|linear(?P<li>\d+)-(?P<lo>\d+)(?P<lb>\+b)?"
    r"|lif|bif|avgpool\d+|maxpool\d+|gap|(?:seq)?dropout[\d.]+|vote\d+"
)


def count_parameters(tokens: list[str]) -> int:
    """Trainable weights of a layer list: 3 x 3 convolutions, batch norms (weight, bias, per-step scales) and
    linear layers; neurons, pooling, dropout and voting have none (the IMP is counted apart)."""
    total = 0
    for token in tokens:
        match = _TOKEN.fullmatch(token)
        assert match, f"unknown layer token {token!r}"
        if match["ci"]:
            ci, co = int(match["ci"]), int(match["co"])
            total += 9 * ci * co + (co if match["cb"] else 0)
        elif match["bn"]:
            total += 2 * int(match["bn"]) + (int(match["t"]) if match["t"] else 0)
        elif match["li"]:
            li, lo = int(match["li"]), int(match["lo"])
            total += li * lo + (lo if match["lb"] else 0)
    return total


def _imps(model: nn.Module) -> list[torch.Tensor]:
    return [m.imp for m in neurons(model) if isinstance(getattr(m, "imp", None), torch.Tensor)]


def _membrane_dtype(model: nn.Module) -> str:
    """The dtype a neuron keeps its membrane in for float16 input (what 16-bit mixed precision feeds it)."""
    neuron = neurons(model)[0]
    imp = getattr(neuron, "imp", None)
    shape = getattr(neuron, "sample_shape", None) or (tuple(imp.shape) if isinstance(imp, torch.Tensor) else None) or (4,)
    convert_reset = [a for _, m, a in spiking_neurons(model) if m is neuron][0]
    convert_reset.reset(neuron)
    with torch.no_grad():
        neuron(torch.rand(2, 1, *shape).to(torch.float16))
    state = neuron.v
    convert_reset.reset(neuron)
    return str(state.dtype).replace("torch.", "")


def _reported_figure(cli) -> str:
    """Which figure ``bsnn fit`` prints for the run: the best validation accuracy over epochs is the best *test*
    accuracy over epochs when the DataModule validates on its test split every epoch."""
    dm, model, trainer = cli.datamodule, cli.model, cli.trainer
    saved = dm.train_set, dm.test_set, dm.num_workers
    try:  # tell the two splits apart by their contents and see which one the validation loader serves
        dm.train_set, dm.test_set, dm.num_workers = TensorDataset(torch.ones(2)), TensorDataset(torch.zeros(2)), 0
        validates_on_test = bool(next(iter(dm.val_dataloader()))[0].eq(0).all())
    finally:
        dm.train_set, dm.test_set, dm.num_workers = saved
    if not isinstance(model, SpikingClassifier):
        return "no best-over-epochs figure"
    if validates_on_test and trainer.check_val_every_n_epoch == 1:
        return "best test accuracy over epochs"
    return "best validation accuracy over epochs, validation not the test split every epoch"


def probe(name: str, what: str):
    cli, example = built(name)
    model, net = cli.model, cli.model.net
    if what == "layers":
        return describe_layers(net)
    if what == "parameters":
        imp_ids = {id(p) for p in _imps(net)}
        neuron_ids = {id(p) for m in neurons(net) for p in m.parameters()}
        return sum(p.numel() for p in net.parameters() if id(p) not in imp_ids and id(p) not in neuron_ids)
    if what == "neuron_parameters":
        return sum(p.numel() for m in neurons(net) for p in m.parameters())
    if what == "imp_parameters":
        return sum(p.numel() for p in _imps(net))
    if what == "imp_shape":
        imps = _imps(net)
        return list(imps[0].shape) if imps else None
    if what == "imp_init":
        settings = [getattr(m, "bsnn_settings", None) for m in neurons(net)]
        return list(settings[0].imp_init) if settings and settings[0] is not None and settings[0].imp else None
    if what == "imp_optimized":
        groups = decay_param_groups(model, no_decay=model.no_decay, exclude=model.not_optimized)
        held = {id(p) for g in groups for p in g["params"]}
        imps = _imps(net)
        return bool(imps) and all(id(p) in held for p in imps)
    if what == "imp_decayed":
        groups = decay_param_groups(model, no_decay=model.no_decay, exclude=model.not_optimized)
        decayed = {id(p) for p in groups[0]["params"]}
        imps = _imps(net)
        return bool(imps) and all(id(p) in decayed for p in imps)
    if what == "augmentations":
        augment = cli.datamodule.augment
        return [] if augment is None else [type(t).__name__ for t in augment.transforms]
    if what == "readout":
        return model.readout_name
    if what == "membrane_dtype_float16":
        return _membrane_dtype(net)
    if what == "neuron_count":
        return len(neurons(net))
    if what == "output_shape":
        model.eval()
        with torch.no_grad():
            out = model(example)
        model.train()
        return list(out.shape)
    if what == "input_shape":
        return list(example.shape[1:])
    if what == "reported_figure":
        return _reported_figure(cli)
    raise AssertionError(f"unknown probe {what!r}")


def lookup(config, key: str):
    """``a.b[0].c`` in a jsonargparse Namespace (or dicts and lists)."""
    value = config
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", key):
        if part.startswith("["):
            value = value[int(part[1:-1])]
        elif isinstance(value, dict):
            value = value[part]
        else:
            value = getattr(value, part)
    return value


def plain(value):
    """Values as YAML holds them: tuples as lists, namespaces as dicts."""
    if hasattr(value, "as_dict"):
        value = value.as_dict()
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    return value


def same(a, b) -> bool:
    a, b = plain(a), plain(b)
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=0.0)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return a == b


@lru_cache(maxsize=None)
def recipe_config(name: str):
    """The recipe's configuration as the ``bsnn`` parser reads it, with no override (defaults filled in)."""
    cli, _ = built(name)
    return cli.parser.parse_args(["--config", str(RECIPES / f"{name}.yaml")])


def recipe_value(name: str, where: dict):
    if "key" in where:
        return lookup(recipe_config(name), where["key"])
    return probe(name, where["probe"])


# --- the tests -----------------------------------------------------------------------------------------------


def test_every_published_recipe_has_a_source_list():
    """A recipe that names a published accuracy in its header (the recipes' convention) follows a source."""
    published = {p.stem for p in RECIPES.glob("*.yaml") if "Published accuracy" in p.read_text().split("\nseed_everything")[0]}
    assert {"cifar10dvs_vgg11_imp_tets", "dvs128gesture", "nmnist_bsnn"} <= published
    assert published == set(PUBLISHED)


@pytest.mark.parametrize("name", PUBLISHED)
def test_source_list_is_complete(name):
    spec = load(name)
    assert spec["recipe"] == name
    assert spec["sources"], "expected at least one source"
    ids = {s["id"] for s in spec["sources"]}
    keys = set()
    for row in spec["settings"]:
        where = f"{name}: {row.get('setting')!r}"
        assert {"setting", "source", "recipe", "same"} <= row.keys(), where
        assert row["same"] in SAME, f"{where}: same must be one of {SAME}, got {row['same']!r}"
        assert row["source"]["from"] in ids, f"{where}: unknown source {row['source']['from']!r}"
        assert "value" in row["source"] and "value" in row["recipe"], where
        assert ("key" in row["recipe"]) != ("probe" in row["recipe"]), f"{where}: give exactly one of key, probe"
        if row["same"] != "yes":
            assert str(row.get("note", "")).strip(), f"{where}: a row that is not the same says why (note)"
        if row["same"] == "yes":
            assert same(row["source"]["value"], row["recipe"]["value"]), f"{where}: marked same, but the values differ"
        keys.add(row["recipe"].get("key") or row["recipe"]["probe"])
    for needed in ("layers", "parameters", "output_shape"):
        assert needed in keys, f"{name}: expected a row with probe {needed!r}"


@pytest.mark.slow
@pytest.mark.parametrize("name", PUBLISHED)
def test_recipe_holds_every_row(name):
    needs_spikingjelly(name)
    failures = []
    for row in load(name)["settings"]:
        actual = recipe_value(name, row["recipe"])
        if not same(actual, row["recipe"]["value"]):
            failures.append(f"{row['setting']}: the recipe gives {plain(actual)!r}, the list says {row['recipe']['value']!r}")
    assert not failures, "\n".join(failures)


@pytest.mark.slow
@pytest.mark.parametrize("name", PUBLISHED)
def test_parameter_count_is_the_sources(name):
    needs_spikingjelly(name)
    rows = {row["recipe"].get("probe"): row for row in load(name)["settings"]}
    if rows["layers"]["same"] == "ours":  # no source network: our own count must still be our layers' count
        assert probe(name, "parameters") == count_parameters(rows["layers"]["recipe"]["value"])
        return
    source_layers = rows["layers"]["source"]["value"]
    counted = count_parameters(source_layers)
    assert counted == rows["parameters"]["source"]["value"], "the source list's count is not its layers' count"
    assert probe(name, "parameters") == counted


def test_count_parameters_counts_each_kind():
    assert count_parameters(["conv2-64+b", "bn64", "lif", "avgpool2", "conv64-8", "bn8*t10", "gap", "linear8-3+b"]) == (
        9 * 2 * 64 + 64 + 128 + 9 * 64 * 8 + 16 + 10 + 8 * 3 + 3
    )
    with pytest.raises(AssertionError, match="unknown layer token"):
        count_parameters(["conv3x3"])


def test_docs_page_is_rendered_from_the_lists():
    spec = importlib.util.spec_from_file_location("render_sources", SOURCES / "render.py")
    render = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(render)
    assert (ROOT / "docs" / "recipes.md").read_text() == render.render(), (
        "docs/recipes.md is not what recipes/sources/render.py makes of the lists: run python recipes/sources/render.py"
    )
