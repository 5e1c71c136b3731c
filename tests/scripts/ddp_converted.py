"""Train converted snnTorch and SpikingJelly models under DDP (gloo, CPU); run by tests/test_adapter_lightning.py.

    python tests/scripts/ddp_converted.py OUT_DIR {snntorch|spikingjelly}

Lightning's ``ddp`` strategy starts the other process by running this script again. Each rank writes the
checksum of its parameters after training, and the number of training batches in which a neuron met a
state left over from another batch (there must be none), to OUT_DIR/rank{r}.json.
"""

import json
import sys
from pathlib import Path

import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import bsnn_lightning as bl
from bsnn_lightning.callbacks import ConvertNeurons, ResetStates


def build(library: str) -> nn.Module:
    torch.manual_seed(0)
    if library == "snntorch":
        import snntorch as snn

        return nn.Sequential(
            nn.Flatten(), nn.Linear(2 * 6 * 6, 16), snn.Leaky(beta=0.8, init_hidden=True),
            nn.Linear(16, 3), snn.Leaky(beta=0.8, init_hidden=True, output=True),
        )
    from spikingjelly.activation_based import functional, layer, neuron

    net = nn.Sequential(
        layer.Flatten(), layer.Linear(2 * 6 * 6, 16), neuron.LIFNode(tau=2.0),
        layer.Linear(16, 3), neuron.LIFNode(tau=2.0),
    )
    functional.set_step_mode(net, "m")
    return net


class Module(L.LightningModule):
    def __init__(self, library: str):
        super().__init__()
        self.library = library
        self.net = build(library)
        self.leaks = 0

    def forward(self, x):  # x: [T, N, 2, 6, 6] -> spike counts [N, 3]
        out = self.net(x)
        spikes = out[0] if isinstance(out, tuple) else out
        return spikes.sum(0)

    def training_step(self, batch, batch_idx):
        x, y = batch
        x = x.transpose(0, 1)
        # a state left from the previous batch would be a tensor here; ResetStates must have cleared it
        for _, module, _ in bl.spiking_neurons(self):
            state = getattr(module, "v", None) if self.library == "spikingjelly" else module.mem
            if isinstance(state, torch.Tensor) and state.numel() and state.abs().sum() > 0:
                self.leaks += 1
        loss = nn.functional.cross_entropy(self(x), y)
        self.log("train/loss", loss)
        return loss

    def configure_optimizers(self):
        return torch.optim.Adam(bl.neuron_param_groups(self), lr=1e-2)


def main(out_dir: str, library: str) -> None:
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(36, 4, 2, 6, 6, generator=g) < 0.3).float()
    y = torch.randint(0, 3, (36,), generator=g)
    model = Module(library)
    example = torch.zeros(4, 2, 2, 6, 6)
    step_mode = "m" if library == "snntorch" else None
    trainer = L.Trainer(
        accelerator="cpu", devices=2, strategy="ddp", max_epochs=2, logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False,
        callbacks=[
            ConvertNeurons(dynamics="bifurcation", imp="channel", backend="torch", step_mode=step_mode, example_input=example),
            ResetStates(),
        ],
    )
    # batch 10 over 2 ranks: 18 samples each, a smaller last batch of 8
    trainer.fit(model, DataLoader(TensorDataset(x, y), batch_size=10))
    checksum = {name: float(p.detach().double().sum()) for name, p in model.named_parameters()}
    out = Path(out_dir) / f"rank{trainer.global_rank}.json"
    out.write_text(json.dumps({"checksum": checksum, "leaks": model.leaks, "world": trainer.world_size}))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
