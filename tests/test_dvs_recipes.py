"""Every DVS recipe runs (fast_dev_run) on small archives written in the real layouts; one runs under DDP.

The recipes are run as users run them, through the ``bsnn`` LightningCLI, with overrides only for
the machine (CPU, fp32), the data location, and a small size (T = 2, 32 x 32 frames, batch 2).
"""

import functools
import json
import os
import shutil
import subprocess
from pathlib import Path

import lightning as L
import pytest
import torch

from bsnn_lightning import BifurcationNeuron, EngineNeuron, LIFNeuron, SpikingClassifier
from bsnn_lightning.cli import BsnnCLI, build_cli
from bsnn_lightning.convert import spiking_neurons
from bsnn_lightning.data import CIFAR10DVSDataModule, MixupCutmix, RandomFlip, RandomRoll
from archive_writers import write_synthetic_dataset  # tests/archive_writers.py

from test_models import assert_same_neuron

RECIPES = Path(__file__).resolve().parents[1] / "recipes"

pytestmark = pytest.mark.filterwarnings("ignore:LightningCLI's args parameter is intended")

_SMALL_48 = ["--model.init_args.net.init_args.input_size=[32,32]", "--model.init_args.net.init_args.time_steps=2"]
CASES = {
    "cifar10dvs_vgg11_imp_tets": ("cifar10-dvs", "CIFAR10DVSReleasedSplit", []),
    "cifar10dvs48_vgg11_imp_tets": ("cifar10-dvs", "CIFAR10DVSReleasedSplit", _SMALL_48),
    "cifar10dvs_vggsnn_tet": ("cifar10-dvs", "CIFAR10DVSReleasedSplit", ["--model.init_args.net.init_args.input_size=[32,32]"]),
    "cifar10dvs_vggsnnwoap_tet": ("cifar10-dvs", "CIFAR10DVSReleasedSplit", ["--model.init_args.net.init_args.input_size=[32,32]"]),
    "ncaltech101_vgg11_imp_tets": ("n-caltech101", "NCaltech101ReleasedSplit", []),
    "ncaltech101_48_vgg11_imp_tets": ("n-caltech101", "NCaltech101ReleasedSplit", _SMALL_48),
    "dvs128gesture": ("dvs128-gesture", "DVS128GestureDataModule", ["--model.init_args.net.init_args.input_size=[32,32]"]),
    "nmnist_bsnn": ("n-mnist", "NMNISTDataModule", []),
}


def needs_spikingjelly(name):
    if "spikingjelly" in (RECIPES / f"{name}.yaml").read_text():
        pytest.importorskip("spikingjelly.activation_based", reason="this recipe's neurons are SpikingJelly's")


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    base = tmp_path_factory.mktemp("dvs-data")
    made = {}
    for slug in {case[0] for case in CASES.values()}:
        classes = 3 if slug in ("n-caltech101", "n-mnist") else None
        sums = write_synthetic_dataset(slug, base / slug, per_class=(2, 2), classes=classes, events_per_sample=300)
        made[slug] = (base / slug, sums)
    return made


def recipe_args(name, root, sums, out: Path, extra=()):
    resize = [] if name == "nmnist_bsnn" else ["--data.init_args.resize=[32,32]"]
    return [
        "fit", "--config", str(RECIPES / f"{name}.yaml"),
        "--trainer.fast_dev_run=true", "--trainer.accelerator=cpu", "--trainer.precision=32-true",
        f"--trainer.default_root_dir={out}", f"--trainer.logger.init_args.save_dir={out}",
        f"--data.init_args.root={root}", f"--data.init_args.cache_dir={out / 'cache'}",
        "--data.init_args.allow_partial=true", "--data.init_args.download=false",
        f"--data.init_args.checksums={json.dumps(sums)}", "--data.init_args.num_workers=0",
        "--data.init_args.time_steps=2", "--data.init_args.batch_size=2", *resize, *extra,
    ]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(CASES))
def test_recipe_fast_dev_run(name, datasets, tmp_path):
    needs_spikingjelly(name)
    slug, data_class, extra = CASES[name]
    root, sums = datasets[slug]
    cli = build_cli(recipe_args(name, root, sums, tmp_path, ["--data.init_args.progress=false", *extra]))
    assert cli.trainer.state.finished
    assert type(cli.datamodule).__name__ == data_class
    assert {"train/loss", "val/loss", "val/acc", "val/acc_t1", "val/acc_t2"} <= set(cli.trainer.callback_metrics)
    assert torch.isfinite(cli.trainer.callback_metrics["train/loss"])
    header = (RECIPES / f"{name}.yaml").read_text().split("\nseed_everything")[0]
    assert "Published accuracy" in header  # each recipe names what it targets, and its source
    if "imp" in name:  # an IMP per neuron, made before the optimizer was built (trained unless the recipe says not)
        neurons = [m for _, m, _ in spiking_neurons(cli.model)]
        assert len(neurons) == 8 and all(n.imp is not None and n.imp.shape == n.bsnn_sample_shape for n in neurons)
        optimized = {id(p) for g in cli.trainer.optimizers[0].param_groups for p in g["params"]}
        trained = "imp" not in cli.model.not_optimized
        assert all((id(n.imp) in optimized) == trained for n in neurons)


def build_recipe(name: str) -> BsnnCLI:
    """The recipe's trainer, model and data as ``bsnn`` builds them, without running (CPU, fp32)."""
    args = ["--config", str(RECIPES / f"{name}.yaml"), "--trainer.accelerator=cpu", "--trainer.precision=32-true"]
    return BsnnCLI(L.LightningModule, L.LightningDataModule, subclass_mode_model=True, subclass_mode_data=True, run=False, args=args)


#: what recipes set with the former flat flags (flip, max_shift + shift_mode, mixup_alpha, cutmix_alpha,
#: mix_prob, mix_switch_prob), as the transforms and the mixing they now build; the paper recipes' augmentation
#: is now their sources' (checked row by row in tests/test_recipe_sources.py)
FORMER_AUGMENTATION = {
    "cifar10dvs_vggsnn_tet": ([(RandomFlip, {"p": 0.5}), (RandomRoll, {"max_shift": 5})], None),
    "dvs128gesture": ([], None),
    "nmnist_bsnn": ([], None),
}


@pytest.mark.parametrize("name", sorted(FORMER_AUGMENTATION))
def test_recipe_builds_the_augmentation_it_had_as_flags(name):
    needs_spikingjelly(name)
    dm = build_recipe(name).datamodule
    transforms, mix = FORMER_AUGMENTATION[name]
    built = [] if dm.augment is None else [(type(t), vars(t)) for t in dm.augment.transforms]
    assert built == transforms
    if mix is None:
        assert dm.mix is None
    else:
        assert type(dm.mix) is MixupCutmix and vars(dm.mix) == mix


#: what recipes set with the networks' former flat neuron arguments (tau, v_reset, ..., neuron: bifurcation,
#: structure, eigen_init, bounds; the rest their defaults), as the neuron and the count of spiking layers; the
#: paper recipes with SpikingJelly neurons are checked against their sources in tests/test_recipe_sources.py
FORMER_NEURONS = {
    "cifar10dvs_vggsnn_tet": (functools.partial(LIFNeuron, tau=2.0, decay_input=False, v_reset=0.0, threshold=1.0, surrogate="triangle:1", detach_reset=False), 8),
    "nmnist_bsnn": (functools.partial(BifurcationNeuron, structure="diagonal", eigen_init=(-0.8, 0.0), bounds=(-1.0, 0.2), v_reset=None, threshold=1.0, surrogate="atan"), 1),
    "quickstart": (functools.partial(LIFNeuron, tau=2.0, v_reset=None, threshold=1.0, surrogate="atan", detach_reset=False), 3),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(FORMER_NEURONS))
def test_recipe_builds_the_neurons_it_had_as_flat_arguments(name):
    expected, count = FORMER_NEURONS[name]
    neurons = [m for m in build_recipe(name).model.net.modules() if isinstance(m, EngineNeuron)]
    assert len(neurons) == count
    for neuron in neurons:
        assert_same_neuron(neuron, expected(shape=neuron.sample_shape))
    if name == "nmnist_bsnn":  # one eigenvalue per hidden neuron, made at construction (before the optimizer)
        assert neurons[0].sample_shape == (800,)


class _Batches(L.Callback):
    def __init__(self):
        self.targets = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.targets.append(batch[1])


def test_mixup_cutmix_batches_reach_the_model_as_soft_targets(datasets, tmp_path):
    root, sums = datasets["cifar10-dvs"]
    dm = CIFAR10DVSDataModule(
        root=str(root), cache_dir=str(tmp_path / "cache"), checksums=sums, allow_partial=True, download=False,
        progress=False, num_workers=0, time_steps=2, resize=(8, 8), batch_size=4,
        augment=[RandomFlip(0.5), RandomRoll(2)], mix=MixupCutmix(mixup_alpha=0.8, cutmix_alpha=1.0),
    )  # fmt: skip
    net = torch.nn.Sequential(torch.nn.Flatten(2), torch.nn.Linear(2 * 8 * 8, 10))
    seen = _Batches()
    trainer = L.Trainer(accelerator="cpu", fast_dev_run=2, callbacks=[seen], logger=False, enable_progress_bar=False)
    trainer.fit(SpikingClassifier(net, num_classes=10), datamodule=dm)
    assert len(seen.targets) == 2
    for y in seen.targets:
        assert y.shape == (4, 10) and y.dtype == torch.float32 and torch.allclose(y.sum(1), torch.ones(4))


@pytest.mark.slow
def test_recipe_under_ddp_with_two_cpu_processes(datasets, tmp_path):
    """``--trainer.strategy=ddp --trainer.devices=2``: prepare_data extracts and caches once, both ranks train."""
    bsnn = shutil.which("bsnn")
    assert bsnn is not None, "the bsnn console command is not installed (pip install -e .)"
    source, _ = datasets["n-mnist"]
    root = tmp_path / "N-MNIST"
    root.mkdir()
    for archive in ("Train.zip", "Test.zip"):  # a fresh copy: nothing extracted or cached yet
        shutil.copy(source / archive, root / archive)
    sums = datasets["n-mnist"][1]
    args = recipe_args("nmnist_bsnn", root, sums, tmp_path, ["--trainer.strategy=ddp", "--trainer.devices=2", "--data.init_args.progress=true"])
    env = dict(os.environ, OMP_NUM_THREADS="1")
    result = subprocess.run([bsnn, *args], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-4000:]
    assert "GLOBAL_RANK: 1, MEMBER: 2/2" in log and "distributed_backend=gloo" in log
    assert log.count("N-MNIST: extracting") == 2  # Train.zip and Test.zip, once each: one process per node
    assert log.count("N-MNIST: building the frame cache") == 1
    caches = list((tmp_path / "cache").glob("n-mnist-*"))
    assert len(caches) == 1 and (caches[0] / "manifest.json").is_file()
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith((".tmp", ".part")) or ".tmp-" in p.name]
