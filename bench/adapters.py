#!/usr/bin/env python
"""CPU benchmark: the same model, native vs converted to the engine's reference backend, per library.

One training step (forward, cross-entropy on the mean logits, backward, Adam step) of the quickstart
network built from each library's own modules (``bsnn_lightning.models.SnnTorchConvNet`` and
``SpikingJellyConvNet``), on an event-frame batch ``[T=8, N=32, 2, 34, 34]``:

- snnTorch, native: the per-step loop over ``snntorch.Leaky`` (``init_hidden=True``), snnTorch's way;
- snnTorch, converted ``step_mode="s"``: the same loop, each ``Leaky`` call run by the engine;
- snnTorch, converted ``step_mode="m"``: one engine call per layer for the whole sequence;
- SpikingJelly, native: multi-step ``LIFNode`` on its own CPU path; converted: the engine.

With ``dynamics="lif"`` and no IMP the converted models compute the same function as the native ones
(checked before timing: equal logits in eval mode). Contenders are interleaved, the order rotated each
round; each figure is the median of the repeats after a warm-up.

    python bench/adapters.py            # about a minute on 2 cores
    python bench/adapters.py --quick    # smoke run

Prints a table of ratios (converted / native) and writes it to ``bench/results/adapters.json``.
"""

from __future__ import annotations

import argparse
import copy
import gc
import statistics
import time
from pathlib import Path

import torch

import bsnn_lightning as bl
from bsnn_lightning.models import SnnTorchConvNet, SpikingJellyConvNet
from common import write_json_atomic  # bench/common.py
from engine_cpu import _environment  # the same machine description

RESULTS = Path(__file__).resolve().parent / "results" / "adapters.json"
TARGET = 1.05


def contenders() -> dict[str, torch.nn.Module]:
    torch.manual_seed(0)
    snn_native = SnnTorchConvNet()
    torch.manual_seed(0)
    sj_native = SpikingJellyConvNet()
    return {
        "snnTorch native": snn_native,
        "snnTorch converted (s)": bl.convert(copy.deepcopy(snn_native), dynamics="lif", backend="torch", step_mode="s"),
        "snnTorch converted (m)": bl.convert(copy.deepcopy(snn_native), dynamics="lif", backend="torch", step_mode="m"),
        "SpikingJelly native": sj_native,
        "SpikingJelly converted": bl.convert(copy.deepcopy(sj_native), dynamics="lif", backend="torch"),
    }


def training_step(model, optimizer, x, y) -> None:
    bl.reset_states(model)
    optimizer.zero_grad(set_to_none=True)
    loss = torch.nn.functional.cross_entropy(model(x).mean(0), y)
    loss.backward()
    optimizer.step()


def check_same_function(models, x) -> None:
    """Converted == native, in eval mode (batch norm over one step vs over the sequence differs in training)."""
    outputs = {}
    for name, model in models.items():
        model.eval()
        bl.reset_states(model)
        with torch.no_grad():
            outputs[name] = model(x)
        model.train()
    for library in ("snnTorch", "SpikingJelly"):
        reference = outputs[f"{library} native"]
        for name, out in outputs.items():
            if name.startswith(library) and not torch.allclose(out, reference, rtol=1e-5, atol=1e-5):
                raise AssertionError(f"{name} computes a different function from {library} native")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    repeats, warmup = (2, 1) if args.quick else (12, 2)
    steps, batch = 8, (8 if args.quick else 32)
    gen = torch.Generator().manual_seed(0)
    x = (torch.rand(steps, batch, 2, 34, 34, generator=gen) < 0.15).float()
    y = torch.randint(0, 10, (batch,), generator=gen)

    models = contenders()
    check_same_function(models, x)
    optimizers = {name: torch.optim.Adam(m.parameters(), lr=1e-4) for name, m in models.items()}
    meta = _environment(repeats, warmup, quick=args.quick)
    samples = {name: [] for name in models}
    names = list(models)
    gc.collect()
    for r in range(warmup + repeats):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            start = time.perf_counter()
            training_step(models[name], optimizers[name], x, y)
            if r >= warmup:
                samples[name].append(time.perf_counter() - start)
    ms = {name: statistics.median(v) * 1e3 for name, v in samples.items()}
    rows = []
    for name in names:
        native = ms["snnTorch native" if name.startswith("snnTorch") else "SpikingJelly native"]
        rows.append({"contender": name, "ms_per_step": round(ms[name], 2), "vs_native": round(ms[name] / native, 3)})
    print(f"training step, x = [{steps}, {batch}, 2, 34, 34], {meta['threads']} thread(s); median of {repeats}\n")
    print(f"{'contender':26s} {'ms/step':>9s} {'/ native':>9s}")
    for row in rows:
        flag = " *" if row["vs_native"] > TARGET else ""
        print(f"{row['contender']:26s} {row['ms_per_step']:9.1f} {row['vs_native']:9.3f}{flag}")
    meta["target"] = f"converted / native <= {TARGET}"
    write_json_atomic({"meta": meta, "shape": [steps, batch, 2, 34, 34], "rows": rows}, RESULTS)
    print(f"\nwrote {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
