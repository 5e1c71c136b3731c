"""Which backend every neuron layer of every recipe (and of the report's networks) gets on a GPU, asked without one.

Each recipe under ``recipes/`` (a glob: a new recipe is covered without editing this file) is built as ``bsnn``
builds it, converted as its ``ConvertNeurons`` callbacks convert it, and run once on the CPU in float32 so that
every neuron has seen its input shape. Then the dispatcher (``resolve_backend``, given a ``CallSpec``: a CUDA
device and the recipe's training dtype, ``16-mixed`` -> float16 inputs under autocast) is asked which backend
each neuron layer's call would run on: all must be ``"triton"``, with no fallback warning. A recipe that pins a
backend (the quickstarts' ``backend: torch``) is asked under that name and must say so in its header.
"""

import warnings
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml

from bsnn_lightning.callbacks import ConvertNeurons
from bsnn_lightning.cli import BsnnCLI
from bsnn_lightning.convert import spiking_neurons
from bsnn_lightning.engine import CallSpec, resolve_backend
from bsnn_lightning.report import FULL
from bsnn_lightning.report.neuron_specs import SWEEP_METHODS, DefaultNeuron, ImpNeuron, SweepNeuron
from bsnn_lightning.report.training import build_net

RECIPES = sorted((Path(__file__).resolve().parents[1] / "recipes").glob("*.yaml"))
PRECISION = {"16-mixed": torch.float16, "bf16-mixed": torch.bfloat16, "32-true": torch.float32, "32": torch.float32}
pytestmark = pytest.mark.filterwarnings("ignore:LightningCLI's args parameter is intended")


def _recipe(path: Path):
    config = yaml.safe_load(path.read_text())
    if "spikingjelly" in path.read_text():
        pytest.importorskip("spikingjelly.activation_based", reason="this recipe's neurons are SpikingJelly's")
    args = ["--config", str(path), "--trainer.accelerator=cpu", "--trainer.precision=32-true"]
    cli = BsnnCLI(L.LightningModule, L.LightningDataModule, subclass_mode_model=True, subclass_mode_data=True, run=False, args=args)
    shape = getattr(cli.datamodule, "input_shape", None)
    if shape is not None and getattr(cli.model, "example_input_array", None) is None:
        cli.model.example_input_array = torch.zeros(1, *shape)  # as the trainer's datamodule gives it at fit
    for callback in cli.trainer.callbacks:
        if isinstance(callback, ConvertNeurons):
            callback.setup(cli.trainer, cli.model, "fit")
    dtype = PRECISION[str(config["trainer"].get("precision", "32-true"))]
    return cli.model, dtype


def _layers(model: torch.nn.Module) -> list:
    """(name, neuron, sample shape) of every neuron. Its shape: the one it was built or converted for, or seen in
    one float32 forward on the CPU of the model's example input (a batch of one), or (1,) when nothing tells
    it: only a coupled layer's choice depends on it (its channel count), and a coupled layer knows its shape."""
    example = getattr(model, "example_input_array", None)
    unseen = any(n.bsnn_sample_shape is None and "bsnn_seen_shape" not in n.__dict__ for _, n, _ in spiking_neurons(model))
    if example is not None and unseen:
        with torch.no_grad():
            model.eval()(example[:, :1] if example.dim() > 2 else example)
    layers = []
    for name, neuron, _ in spiking_neurons(model):
        shape = neuron.bsnn_sample_shape or neuron.__dict__.get("bsnn_seen_shape") or (1,)
        layers.append((name, neuron, tuple(shape)))
    assert layers, "no neuron found"
    return layers


def _backends(layers, dtype: torch.dtype) -> dict:
    """{layer name: backend name} for CUDA inputs of ``dtype``; any fallback warning fails."""
    chosen = {}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name, neuron, shape in layers:
            dynamics, _ = neuron.bsnn_engine(shape, dtype)
            spec = CallSpec((4, 2, *shape), dtype, torch.device("cuda"))
            chosen[name] = resolve_backend(neuron.bsnn_settings.backend, spec, dynamics).name
    return chosen


@pytest.mark.slow  # each recipe's converter runs its full-size example input on the CPU (some 10 s each)
@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_every_recipe_runs_every_neuron_layer_on_the_kernels_on_a_gpu(path):
    model, dtype = _recipe(path)
    layers = _layers(model)
    pinned = {neuron.bsnn_settings.backend for _, neuron, _ in layers} - {"auto", "triton"}
    header = path.read_text().split("\nseed_everything")[0]
    assert "Backend:" in header, f"{path.name}'s header should say which backend it runs where"
    chosen = _backends(layers, dtype)
    if pinned:  # the quickstarts pin the torch backend, and say so
        assert set(chosen.values()) == pinned and all(f"backend: {b}" in path.read_text() for b in pinned)
    else:
        assert set(chosen.values()) == {"triton"}, chosen


REPORT_NEURONS = [SweepNeuron(m, 4.0) for m in SWEEP_METHODS] + [DefaultNeuron(), ImpNeuron("neuron")]


@pytest.mark.parametrize("spec", REPORT_NEURONS, ids=["-".join(map(str, [spec.kind, *vars(spec).values()])) for spec in REPORT_NEURONS])
def test_the_reports_networks_run_on_the_kernels_on_a_gpu(spec):
    settings = FULL
    net = build_net(spec.factory(), in_channels=2, channels=settings.channels, hidden=settings.hidden)
    net.example_input_array = torch.rand(2, 1, 2, 34, 34)
    chosen = _backends(_layers(net), torch.float32)
    assert set(chosen.values()) == {"triton"}, chosen
