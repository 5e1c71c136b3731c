"""The report gives the numbers it gave before its experiments became one module each (commit 8dd1298): the
same runs with the same seeds, the same JSON and the same Markdown.

The golden files in tests/data were written by the report code of 8dd1298 with this file's stand-in runner and
tiny settings (the stand-in then read the neuron from the old tuple, ``("sweep", method, tau)`` and so on, as
the same dict :func:`describe_neuron` makes of a spec now):

- ``report_golden_standin.json.gz``: every run spec the experiments asked for (with the neuron each builds), and
  the report's JSON and Markdown, on a stand-in runner (no training; timings zeroed);
- ``report_golden_tiny.json.gz``: the experiments' results of real training runs (one epoch, tiny networks,
  two worker processes; timings zeroed), recorded with torch 2.13 on CPU.
"""

import dataclasses
import gzip
import json
import math
import zlib
from pathlib import Path

import numpy as np
import pytest

from bsnn_lightning.report import QUICK, QUICK_INTERVALS, runner
from bsnn_lightning.report.pool import RunPool

GOLDEN = Path(__file__).parent / "data"


def describe_neuron(neuron) -> dict:
    return {"kind": neuron.kind, **dataclasses.asdict(neuron)}


def built(neuron) -> str:
    module = neuron.factory()()
    return f"{module!r} {module.bsnn_settings} decay_input={getattr(module, 'decay_input', None)}"


class StandIn:
    """Results shaped as train_and_test's, from a rule and a generator seeded by the spec (no training);
    records every spec it is given."""

    def __init__(self) -> None:
        self.specs: list[dict] = []

    def __call__(self, specs):
        return [self._one(spec) for spec in specs]

    def _one(self, spec) -> dict:
        d = describe_neuron(spec.neuron)
        self.specs.append({
            "seed": spec.seed, "variant": spec.variant, "neuron": d, "built": built(spec.neuron), "loss": spec.loss,
            "epochs": spec.epochs, "loss_options": spec.loss_options, "track_epochs": spec.track_epochs,
            "record_eigenvalues": spec.record_eigenvalues, "eigen_lr_scale": spec.eigen_lr_scale, "task": spec.task,
        })
        variant = ("events", "static", "time_averaged").index(spec.variant)
        rng = np.random.default_rng([spec.seed, zlib.crc32(json.dumps(d, sort_keys=True).encode()), variant, int(spec.eigen_lr_scale * 1000)])
        classes = 4 if spec.task == "intervals" else 10
        kind = d["kind"]
        tau = d.get("tau", 1.0) if kind != "imp" else 2.0
        if spec.variant == "time_averaged":
            acc = 1 / classes + 0.005 * rng.standard_normal() if spec.task == "intervals" else 0.9
        elif spec.task == "intervals" and kind == "sweep" and d["method"] == "LIF":
            acc = 0.75 - 0.2 * abs(math.log2(tau / 4))
        else:
            acc = 0.9 - 0.05 * rng.random()
        acc = float(np.clip(acc + 0.01 * rng.standard_normal(), 0, 1))
        steps = 16 if spec.task == "intervals" else 6
        result = {"seed": spec.seed, "accuracy": acc, "per_step": list(np.linspace(1 / classes, acc, steps)),
                  "num_classes": classes, "wall_s": 1.0, "cpu_s": 1.0 + rng.random()}
        if spec.track_epochs:
            result["epoch_accuracy"] = list(np.linspace(0.5, acc, spec.epochs))
        if spec.record_eigenvalues:
            upper = (d["upper_mu"] if kind == "clamp" else 0.2) / tau
            before = {"conv1": list(np.linspace(-0.8, 0, 4) / tau), "hidden": list(np.linspace(-0.8, 0, 8) / tau)}
            step = 0.01 * spec.eigen_lr_scale * (1 + rng.random())
            after = {k: [min(v + step * (-1) ** i, upper) for i, v in enumerate(vs)] for k, vs in before.items()}
            param = {k: [v + step * (-1) ** i for i, v in enumerate(vs)] for k, vs in before.items()}
            result.update(eigen_before=before, eigen_after=after, eigen_param_after=param,
                          coupled_check={"max_abs_imaginary": 0.0, "max_abs_difference_to_explicit": 0.0})
        return result


def zeroed(node, keys):
    """``node`` with the values under ``keys`` (anywhere) set to 0."""
    if isinstance(node, dict):
        return {k: (0 if k in keys else zeroed(v, keys)) for k, v in node.items()}
    if isinstance(node, list):
        return [zeroed(v, keys) for v in node]
    return node


def read_golden(name: str):
    with gzip.open(GOLDEN / name, "rt") as f:
        return json.load(f)


STAND_IN_TASKS = {
    "digits": QUICK.replace(taus=(1.5, 2.0, 4.0, 8.0, 16.0), seeds_sweep=(0, 1, 2), seeds_pairs=(0, 1, 2)),
    "intervals": QUICK_INTERVALS.replace(taus=(1.5, 2.0, 4.0, 8.0, 16.0), baseline_tau=4.0, seeds_sweep=(0, 1, 2), seeds_pairs=(0, 1, 2, 3)),
}
TINY = dict(seeds_sweep=(0,), seeds_pairs=(0, 1), epochs_sweep=1, epochs_pairs=1, taus=(2.0, 4.0), baseline_tau=2.0, channels=(2, 4), hidden=8)


@pytest.mark.slow
def test_stand_in_report_is_the_one_before_the_reshape():
    stand_in = StandIn()
    results = runner.run_experiments(STAND_IN_TASKS, stand_in, log=lambda *_: None)
    report = runner.assemble_report(results, STAND_IN_TASKS, jobs=2, command=["bsnn", "report", "x"])
    report["experiments"]["firing_patterns"]["cpu_s"] = 0  # this process's CPU time
    meta = report["meta"]
    meta.update(generated="2026", wall_s=0, cpu_s=0, versions={k: "v" for k in meta["versions"]},
                machine={**meta["machine"], "os_cpus": 2, "platform": "p", "load_average_start": None, "load_average_end": None})
    report = zeroed(report, {"wall_s", "generated"})
    golden = read_golden("report_golden_standin.json.gz")
    assert stand_in.specs == golden["specs"]  # the same runs, in the same order, building the same neurons
    assert json.loads(json.dumps(report)) == golden["report"]
    assert runner.render_markdown(report) == golden["markdown"]
    assert runner.figure_files(["digits", "intervals"]) == golden["figures"]


@pytest.mark.slow
def test_tiny_real_runs_give_the_numbers_they_gave_before_the_reshape(tmp_path):
    tasks = {"digits": QUICK.replace(limit=60, cache_dir=str(tmp_path), **TINY),
             "intervals": QUICK_INTERVALS.replace(n_train=32, n_test=16, **TINY)}
    with RunPool(list(tasks.values()), 2) as run:
        results = runner.run_experiments(tasks, run, log=lambda *_: None)
    assert json.loads(json.dumps(zeroed(results, {"wall_s", "cpu_s"}))) == read_golden("report_golden_tiny.json.gz")
