"""Converted snnTorch and SpikingJelly models in Lightning: users' own modules, the recipes, and DDP."""

import json
import subprocess
import sys
from pathlib import Path

import lightning as L
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import bsnn_lightning as bl
from bsnn_lightning.callbacks import ConvertNeurons
from bsnn_lightning.cli import build_cli

snn = pytest.importorskip("snntorch")
pytest.importorskip("spikingjelly.activation_based")
from spikingjelly.activation_based import functional, layer, neuron  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
T, FEATURES, CLASSES = 5, 12, 3


def _loader():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, CLASSES, (48,), generator=g)
    x = torch.rand(48, FEATURES, generator=g) + 0.5 * nn.functional.one_hot(y, FEATURES)[:, :FEATURES].float()
    return DataLoader(TensorDataset(x, y), batch_size=16)


class SnnTorchTutorialModule(L.LightningModule):
    """Written the way snnTorch's tutorials write a network: explicit membranes, a Python time loop,
    rate-coded input, cross-entropy on the spike count. Nothing here knows about bsnn_lightning."""

    def __init__(self):
        super().__init__()
        self.fc1, self.lif1 = nn.Linear(FEATURES, 16), snn.Leaky(beta=0.9)
        self.fc2, self.lif2 = nn.Linear(16, CLASSES), snn.Leaky(beta=0.9)

    def forward(self, x):
        mem1, mem2 = self.lif1.init_leaky(), self.lif2.init_leaky()
        spk_rec = []
        for _ in range(T):
            spk1, mem1 = self.lif1(self.fc1(x), mem1)
            spk2, mem2 = self.lif2(self.fc2(spk1), mem2)
            spk_rec.append(spk2)
        return torch.stack(spk_rec)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.cross_entropy(self(x).sum(0), y)
        self.log("loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=5e-3)


class SpikingJellyTutorialModule(L.LightningModule):
    """SpikingJelly's tutorial style: single-step nodes driven by a loop, MSE between firing rate and the
    one-hot label, ``functional.reset_net`` after every batch."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            layer.Linear(FEATURES, 16), neuron.LIFNode(tau=2.0), layer.Linear(16, CLASSES), neuron.LIFNode(tau=2.0)
        )

    def forward(self, x):
        return torch.stack([self.net(x) for _ in range(T)]).mean(0)

    def training_step(self, batch, batch_idx):
        x, y = batch
        loss = nn.functional.mse_loss(self(x), nn.functional.one_hot(y, CLASSES).float())
        functional.reset_net(self.net)
        self.log("loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=5e-3)


@pytest.mark.parametrize("module_class, first", [(SnnTorchTutorialModule, "lif1"), (SpikingJellyTutorialModule, "net.1")])
def test_users_own_module_trains_with_only_the_callback_added(tmp_path, module_class, first):
    torch.manual_seed(0)
    model = module_class()
    callback = ConvertNeurons(dynamics="bifurcation", imp="neuron", backend="torch", example_input=torch.zeros(2, FEATURES))
    trainer = L.Trainer(
        max_epochs=3, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, callbacks=[callback],
    )
    trainer.fit(model, _loader())
    neuron_module = model.get_submodule(first)
    assert neuron_module.imp.shape == (16,) and neuron_module.eigenvalues.shape == (16,)
    optimized = {id(p) for g in trainer.optimizers[0].param_groups for p in g["params"]}
    assert id(neuron_module.imp) in optimized and id(neuron_module.eigenvalues) in optimized
    assert torch.isfinite(trainer.callback_metrics["loss"])
    for p in (neuron_module.imp, neuron_module.eigenvalues):  # the new parameters get gradients: they train
        assert p.grad is not None and p.grad.abs().sum() > 0


@pytest.mark.slow
@pytest.mark.parametrize("library", ["snntorch", "spikingjelly"])
@pytest.mark.parametrize("backend", ["native", "torch"])
def test_library_quickstart_recipes_run_native_and_torch(tmp_path, library, backend):
    args = [
        "fit", "--config", str(ROOT / "recipes" / f"quickstart_{library}.yaml"),
        "--trainer.fast_dev_run=true",
        f"--trainer.default_root_dir={tmp_path}",
        f"--trainer.logger.init_args.save_dir={tmp_path}",
        f"--data.init_args.cache_dir={tmp_path / 'cache'}",
        "--data.init_args.limit=64",
        f"--trainer.callbacks.init_args.backend={backend}",
    ]
    if backend == "native":
        args.append("--trainer.callbacks.init_args.step_mode=null")
    cli = build_cli(args)
    assert cli.trainer.state.finished
    neurons = [m for _, m, _ in bl.spiking_neurons(cli.model)]
    assert len(neurons) == 3
    converted = [type(m).__module__.startswith("bsnn_lightning") for m in neurons]
    assert all(converted) if backend == "torch" else not any(converted)
    assert torch.isfinite(cli.trainer.callback_metrics["train/loss"])


@pytest.mark.slow
@pytest.mark.parametrize("library", ["snntorch", "spikingjelly"])
def test_converted_model_trains_under_ddp_with_two_processes(tmp_path, library):
    script = ROOT / "tests" / "scripts" / "ddp_converted.py"
    result = subprocess.run(
        [sys.executable, str(script), str(tmp_path), library], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert all(r["world"] == 2 for r in ranks)
    assert all(r["leaks"] == 0 for r in ranks), "a neuron met a state from another batch"
    assert ranks[0]["checksum"] == ranks[1]["checksum"], "the two processes' parameters diverged"
    assert any(name.endswith(".imp") for name in ranks[0]["checksum"])
