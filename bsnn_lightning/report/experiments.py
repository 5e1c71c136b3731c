"""The report's experiments: short, seeded training runs on the embedded event digits (and their static
variant), each a real Lightning ``Trainer`` fitting a :class:`~bsnn_lightning.SpikingClassifier`.

Every experiment function takes the :class:`Settings` and a runner (:class:`RunPool`: the runs in this
process or in worker processes) and returns a plain dict of numbers, what the JSON holds and the figures
are drawn from. Runs that are compared are *paired*: the same seed gives the same
initial weights and the same order of training batches (the generator is re-seeded after the model and its
neuron parameters are built), so two methods differ only in the method.

How the control rate enters each neuron (the BSNN experiment):

- plain LIF, ``h_t = (1 - 1/tau_m) v_{t-1} + x_t`` (SpikingJelly's LIF with ``decay_input=False``, soft
  reset): the one eigenvalue of every neuron is ``-1/tau_m``;
- bifurcation dynamics, ``tau_m du/dt = -u + P u + I`` (Zhang, Zhang & Zhou, JMLR 2021): the eigenvalues
  of the membrane dynamics are those of ``(P - I)/tau_m``. With ``mu`` the eigenvalues of ``P - I`` (what
  the network learns) the discrete eigenvalues are ``lambda = mu / tau_m``; ``mu`` starts spread over the
  package default ``[-0.8, 0]`` and is held in ``[-1, 0.2]``, so the neuron is built with
  ``eigen_init = (-0.8/tau_m, 0)`` and ``bounds = (-1/tau_m, 0.2/tau_m)``. The bound ``mu = -1`` (``P = 0``)
  is exactly the LIF neuron above: at every tau_m the bifurcation neuron contains plain LIF and adds
  slower, conservative and (slightly) diffusive modes. The parameter the package's neuron holds, and the
  optimiser moves, is ``lambda`` itself, so one optimiser step moves ``mu`` by tau_m times more than if
  ``mu`` were the parameter; the set of reachable dynamics is the same.

In both, the input gain ``1/tau_m`` of the continuous equation is folded into the weights of the layer
before the neuron, as ``docs/methods.md`` states for the bifurcation neuron (and that layer is followed by
batch norm in the convolutional blocks), so tau_m changes only the eigenvalues.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from dataclasses import dataclass, field
from typing import Callable

import lightning as L
import numpy as np
import torch
from torch import nn

from ..analysis import eigenvalue_regimes
from ..classifier import SpikingClassifier
from ..convert import bifurcation_eigenvalues, materialize
from ..data import DigitEventsDataModule
from ..models import NeuronFactory, SpikingConvNet
from ..neurons import BifurcationNeuron, LIFNeuron
from . import stats


@dataclass(frozen=True)
class Settings:
    """What one report run trains; ``FULL`` and ``QUICK`` below are the two the command offers."""

    mode: str
    seeds_sweep: tuple[int, ...]
    seeds_pairs: tuple[int, ...]
    epochs_sweep: int
    epochs_pairs: int
    limit: int | None  # digits used (None: all 1,797; the split is the fixed stratified 80/20)
    time_steps_events: int = 8
    time_steps_static: int = 6
    taus: tuple[float, ...] = (1.5, 2.0, 4.0, 8.0, 16.0)
    channels: tuple[int, int] = (8, 16)
    hidden: int = 64
    batch_size: int = 32
    lr: float = 3e-3
    weight_decay: float = 0.01
    threads: int = 1  # torch intra-op threads while the report runs (see runner.run_report)
    cache_dir: str | None = field(default=None, compare=False)

    def replace(self, **changes) -> "Settings":
        return dataclasses.replace(self, **changes)


FULL = Settings(mode="full", seeds_sweep=(0, 1, 2, 3, 4), seeds_pairs=(0, 1, 2, 3, 4), epochs_sweep=5, epochs_pairs=5, limit=None)
QUICK = Settings(
    mode="quick", seeds_sweep=(0, 1), seeds_pairs=(0, 1), epochs_sweep=2, epochs_pairs=4, limit=300,
    time_steps_events=6, time_steps_static=4, channels=(4, 8), hidden=32, batch_size=16,
)

SWEEP_METHODS = ("LIF", "BSNN diagonal", "BSNN coupled")
EIGEN_INIT_MU = (-0.8, 0.0)  # eigenvalues of P - I at the start (the package default, tau_m = 1)
BOUNDS_MU = (-1.0, 0.2)  # and their clamp
CONSERVATIVE_TOL_MU = 1e-2  # |mu| below this counts as conservative (EigenvalueMonitor's default tolerance)


# --------------------------------------------------------------------------- the experiments


def control_rate_sweep(settings: Settings, run: "Runner") -> dict:
    """BSNN's claim: accuracy is insensitive to the control rate 1/tau_m, unlike plain LIF."""
    start = _clock()
    grid = [(i, tau, method, seed) for i, tau in enumerate(settings.taus) for method in SWEEP_METHODS for seed in settings.seeds_sweep]
    results = run([
        RunSpec(seed, "events", ("sweep", method, tau), "ce", settings.epochs_sweep, record_eigenvalues=method != "LIF")
        for _, tau, method, seed in grid
    ])
    accuracy = {m: [[] for _ in settings.taus] for m in SWEEP_METHODS}
    eigen_regimes = {m: [] for m in SWEEP_METHODS[1:]}
    spectrum_tau = 2.0 if 2.0 in settings.taus else settings.taus[0]
    spectra, coupled_check = {}, None
    for (i, tau, method, seed), result in zip(grid, results):
        accuracy[method][i].append(result["accuracy"])
        if method == "LIF":
            continue
        tol, bounds = CONSERVATIVE_TOL_MU / tau, (BOUNDS_MU[0] / tau, BOUNDS_MU[1] / tau)
        eigen_regimes[method].append({
            "tau_m": tau, "seed": seed,
            "before": eigenvalue_regimes(result["eigen_before"], tol, bounds),
            "after": eigenvalue_regimes(result["eigen_after"], tol, bounds),
        })
        if tau == spectrum_tau and seed == settings.seeds_sweep[0]:
            spectra[method] = {k: (result["eigen_before"][k], result["eigen_after"][k]) for k in result["eigen_after"]}
            if method == "BSNN coupled":
                coupled_check = result["coupled_check"]
    per_method = {
        method: {
            "by_tau": [{"tau_m": tau, **stats.describe(acc)} for tau, acc in zip(settings.taus, accuracy[method])],
            "spread": stats.bootstrap_spread(accuracy[method]),
            "no_effect_test": stats.permutation_spread(accuracy[method]),
        }
        for method in SWEEP_METHODS
    }
    comparisons = {}
    for method in SWEEP_METHODS[1:]:
        comparison = stats.bootstrap_spread_difference(accuracy["LIF"], accuracy[method])
        comparisons[method] = {**comparison, "verdict": stats.verdict(comparison["ci95"])}
    return {
        "claim": "Bifurcation dynamics make accuracy insensitive to the control rate 1/tau_m, which plain LIF is "
        "sensitive to (Zhang, Zhang & Zhou, JMLR 2021): spread(LIF) - spread(BSNN) > 0.",
        "setup": {
            "data": "event digits", "time_steps": settings.time_steps_events, "loss": "rate cross entropy (mean readout)",
            "taus": list(settings.taus), "seeds": list(settings.seeds_sweep), "epochs": settings.epochs_sweep,
            "lif": "LIFNeuron(tau=tau_m, decay_input=False, v_reset=None): lambda = -1/tau_m",
            "bsnn": f"BifurcationNeuron(eigen_init={EIGEN_INIT_MU}/tau_m, bounds={BOUNDS_MU}/tau_m): lambda = mu/tau_m",
        },
        "accuracy": accuracy,
        "methods": per_method,
        "spread_difference_lif_minus": comparisons,
        "eigen_regimes": eigen_regimes,
        "spectrum": {
            "tau_m": spectrum_tau, "seed": settings.seeds_sweep[0],
            "bounds": [BOUNDS_MU[0] / spectrum_tau, BOUNDS_MU[1] / spectrum_tau],
            "layers": {m: {k: {"before": list(b), "after": list(a)} for k, (b, a) in layers.items()} for m, layers in spectra.items()},
            "coupled_check": coupled_check,
        },
        **_elapsed(start, results),
    }


def imp_per_step(settings: Settings, run: "Runner") -> dict:
    """IMP paper: on static tasks accuracy grows with t from a zero IMP; a learnable IMP speeds this up."""
    start = _clock()
    methods = {"zero IMP": None, "learnable IMP": "neuron"}
    runs = _paired(settings, run, {
        name: RunSpec(0, "static", ("imp", imp), "label_smoothed_tet", settings.epochs_pairs, loss_options={"epsilon": 0.01})
        for name, imp in methods.items()
    })
    curves = {name: [r["per_step"] for r in rs] for name, rs in runs.items()}
    first = {name: [c[0] for c in cs] for name, cs in curves.items()}
    growth = [c[-1] - c[0] for c in curves["zero IMP"]]
    overall = {name: [r["accuracy"] for r in rs] for name, rs in runs.items()}
    claims = {
        "zero IMP: accuracy at the last step minus the first": _claim(stats.describe(growth)),
        "first-step accuracy, learnable minus zero IMP": _claim(stats.paired_difference(first["learnable IMP"], first["zero IMP"])),
        "test accuracy (mean readout), learnable minus zero IMP": _claim(
            stats.paired_difference(overall["learnable IMP"], overall["zero IMP"])
        ),
    }
    return {
        "claim": "On static tasks the accuracy at each time step increases as the membrane potential evolves from "
        "zero; a learnable IMP accelerates that evolution and gives higher accuracy within few time steps "
        "(Shen et al., NeurIPS 2024).",
        "setup": {
            "data": "static digits", "time_steps": settings.time_steps_static,
            "neuron": "LIFNeuron(tau=2, hard reset to 0): SpikingJelly's default LIF", "imp": "per neuron, U(0.4, 0.6)",
            "loss": "label-smoothed TET, epsilon 0.01 (trains the output of every step)", "seeds": list(settings.seeds_pairs),
            "epochs": settings.epochs_pairs,
        },
        "per_step_accuracy": curves,
        "accuracy": overall,
        "claims": claims,
        **_elapsed(start, [r for rs in runs.values() for r in rs]),
    }


def readout_comparison(settings: Settings, run: "Runner") -> dict:
    """IMP paper: the last-time-step (LTS) readout accelerates convergence on static tasks."""
    start = _clock()
    runs = _paired(settings, run, {
        name: RunSpec(0, "static", ("imp", "neuron"), loss, settings.epochs_pairs, track_epochs=True)
        for name, loss in {"LTS": "lts", "mean over time": "ce"}.items()
    })
    curves = {name: [r["epoch_accuracy"] for r in rs] for name, rs in runs.items()}
    final = {name: [r["accuracy"] for r in rs] for name, rs in runs.items()}
    first_epoch = {name: [c[0] for c in cs] for name, cs in curves.items()}
    claims = {
        "test accuracy after epoch 1, LTS minus mean": _claim(stats.paired_difference(first_epoch["LTS"], first_epoch["mean over time"])),
        "final test accuracy, LTS minus mean": _claim(stats.paired_difference(final["LTS"], final["mean over time"])),
    }
    return {
        "claim": "Training on and reading out the last time step only (LTS) accelerates convergence on static "
        "tasks (Shen et al., NeurIPS 2024).",
        "setup": {
            "data": "static digits", "time_steps": settings.time_steps_static,
            "neuron": "LIFNeuron(tau=2, hard reset to 0) with a learnable IMP per neuron",
            "LTS": "loss CE(O_T, y), prediction argmax O_T", "mean over time": "loss CE(mean_t O_t, y), prediction argmax mean_t O_t",
            "seeds": list(settings.seeds_pairs), "epochs": settings.epochs_pairs,
        },
        "epoch_accuracy": curves,
        "accuracy": final,
        "claims": claims,
        **_elapsed(start, [r for rs in runs.values() for r in rs]),
    }


def loss_comparison(settings: Settings, run: "Runner") -> dict:
    """IMP paper: label-smoothed TET does better than vanilla TET."""
    start = _clock()
    methods = {"TET": ("tet", {"lam": 1e-3, "phi": 1.0}), "label-smoothed TET": ("label_smoothed_tet", {"epsilon": 0.01, "lam": 0.0})}
    runs = _paired(settings, run, {
        name: RunSpec(0, "events", ("imp", "neuron"), loss, settings.epochs_pairs, loss_options=options)
        for name, (loss, options) in methods.items()
    })
    accuracy = {name: [r["accuracy"] for r in rs] for name, rs in runs.items()}
    claims = {
        "test accuracy, label-smoothed TET minus TET": _claim(stats.paired_difference(accuracy["label-smoothed TET"], accuracy["TET"]))
    }
    return {
        "claim": "A label-smoothed TET loss, which drops TET's MSE regulariser, trains better than vanilla TET "
        "(Shen et al., NeurIPS 2024, on TET of Deng et al., ICLR 2022).",
        "setup": {
            "data": "event digits", "time_steps": settings.time_steps_events,
            "neuron": "LIFNeuron(tau=2, hard reset to 0) with a learnable IMP per neuron",
            "TET": "lam 1e-3, phi 1", "label-smoothed TET": "epsilon 0.01, lam 0 (the paper's configs)",
            "seeds": list(settings.seeds_pairs), "epochs": settings.epochs_pairs,
        },
        "accuracy": accuracy,
        "claims": claims,
        **_elapsed(start, [r for rs in runs.values() for r in rs]),
    }


def firing_patterns(steps: int = 8, input_current: float = 1.2) -> dict:
    """IMP paper: with v_0 = 0 a neuron's spike trains are limited; other initial potentials add patterns.

    One LIF neuron (tau 2, hard reset to 0, threshold 1), constant input over ``steps`` steps. The raster is
    one input current for a range of v_0; the counts are the distinct spike trains over 301 constant
    inputs in [0, 3] with v_0 = 0 only, with v_0 in [0, 0.95] (the region the paper initialises in), and with
    v_0 in [-1, 0.95].
    """
    start = _clock()
    raster_v0 = [-0.6, -0.3, 0.0, 0.2, 0.4, 0.6, 0.8, 0.95]
    spikes = _constant_input_spikes(np.array(raster_v0), np.array([input_current]), steps)[:, 0, :]
    currents = np.linspace(0.0, 3.0, 301)
    grids = {"v_0 = 0": np.array([0.0]), "v_0 in [0, 0.95]": np.linspace(0.0, 0.95, 20), "v_0 in [-1, 0.95]": np.linspace(-1.0, 0.95, 40)}
    counts = {}
    for name, v0s in grids.items():
        trains = _constant_input_spikes(v0s, currents, steps).reshape(-1, steps)
        counts[name] = int(len(np.unique(trains, axis=0)))
    return {
        "claim": "With a zero initial membrane potential a neuron's firing patterns are limited; adjusting the IMP "
        "produces additional patterns (Shen et al., NeurIPS 2024).",
        "setup": {
            "neuron": "LIFNeuron(tau=2, v_reset=0, threshold=1)", "steps": steps, "raster_input": input_current,
            "raster_v0": raster_v0, "count_inputs": "301 constant inputs in [0, 3]",
        },
        "raster": spikes.astype(int).tolist(),
        "distinct_spike_trains": counts,
        "possible_spike_trains": 2**steps,
        "claims": {
            "distinct spike trains, v_0 in [0, 0.95] minus v_0 = 0": {
                "difference": counts["v_0 in [0, 0.95]"] - counts["v_0 = 0"],
                "verdict": "held" if counts["v_0 in [0, 0.95]"] > counts["v_0 = 0"] else "did not hold",
                "note": "exact count (no randomness), so no interval",
            }
        },
        **_elapsed(start),
    }


# --------------------------------------------------------------------------- running the training runs


@dataclass(frozen=True)
class RunSpec:
    """One training run, as plain (picklable) data: ``neuron`` is ``("sweep", method, tau_m)`` or
    ``("imp", None | "neuron" | ...)`` (see :func:`neuron_factory`)."""

    seed: int
    variant: str  # "events" or "static"
    neuron: tuple
    loss: str
    epochs: int
    loss_options: dict | None = None
    track_epochs: bool = False
    record_eigenvalues: bool = False


Runner = Callable[[list[RunSpec]], list[dict]]


class RunPool:
    """Runs :class:`RunSpec` lists, in this process (``jobs=1``) or in ``jobs`` worker processes.

    Each run is seeded on its own and every process uses ``settings.threads`` torch threads, so a result
    does not depend on which process ran it or in what order; results come back in the order asked for.
    Workers are started once (``spawn``: no state inherited from the parent) and keep their data loaded.
    """

    def __init__(self, settings: Settings, jobs: int = 1) -> None:
        if jobs < 1:
            raise ValueError(f"expected jobs >= 1, got {jobs}")
        self.settings = settings
        self.jobs = jobs
        self.data = DataCache(settings)
        for variant in ("events", "static"):  # build the event cache once, before any worker reads it
            self.data.get(variant)
        self._pool = None
        if jobs > 1:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self._pool = ProcessPoolExecutor(
                max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                initializer=_worker_start, initargs=(settings,),
            )

    def __call__(self, specs: list[RunSpec]) -> list[dict]:
        if self._pool is None:
            return [train_and_test(self.settings, self.data, spec) for spec in specs]
        return list(self._pool.map(_worker_run, specs))

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None

    def __enter__(self) -> "RunPool":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


_WORKER: dict = {}


def _worker_start(settings: Settings) -> None:
    import logging
    import warnings

    torch.set_num_threads(settings.threads)
    for name in ("lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for category in (DeprecationWarning, FutureWarning):
        warnings.filterwarnings("ignore", category=category, module=r"lightning\.")
    _WORKER.update(settings=settings, data=DataCache(settings))


def _worker_run(spec: RunSpec) -> dict:
    return train_and_test(_WORKER["settings"], _WORKER["data"], spec)


def _paired(settings: Settings, run: Runner, methods: dict[str, RunSpec]) -> dict[str, list[dict]]:
    """Every method at every seed of ``settings.seeds_pairs``; ``{method: [result per seed]}``."""
    names = list(methods)
    specs = [dataclasses.replace(methods[name], seed=seed) for seed in settings.seeds_pairs for name in names]
    results = run(specs)
    return {name: results[j :: len(names)] for j, name in enumerate(names)}


class DataCache:
    """The DataModules the runs share, built once per (variant, time steps): set up, never reloaded."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._modules: dict[tuple[str, int], DigitEventsDataModule] = {}

    def get(self, variant: str) -> DigitEventsDataModule:
        steps = self.settings.time_steps_events if variant == "events" else self.settings.time_steps_static
        key = (variant, steps)
        if key not in self._modules:
            dm = DigitEventsDataModule(
                time_steps=steps, variant=variant, batch_size=self.settings.batch_size,
                cache_dir=self.settings.cache_dir, limit=self.settings.limit,
            )
            dm.prepare_data()
            dm.setup()
            self._modules[key] = dm
        return self._modules[key]


def train_and_test(settings: Settings, data: DataCache, spec: RunSpec) -> dict:
    """Build, train and test one network; returns its test accuracy (and per-step accuracy, timings, ...).

    Runs with ``settings.threads`` torch threads (restored afterwards): the result depends on the thread
    count through the order of floating-point reductions, and on nothing else but ``spec`` and ``settings``.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(settings.threads)
    try:
        return _train_and_test(settings, data, spec)
    finally:
        torch.set_num_threads(threads)


def _train_and_test(settings: Settings, data: DataCache, spec: RunSpec) -> dict:
    start = _clock()
    dm = data.get(spec.variant)
    static = spec.variant == "static"
    steps = dm.time_steps
    L.seed_everything(spec.seed, workers=True, verbose=False)
    net = build_net(neuron_factory(spec.neuron), in_channels=1 if static else 2, channels=settings.channels, hidden=settings.hidden)
    model = SpikingClassifier(
        net, num_classes=10, static_steps=steps if static else None, loss=spec.loss, loss_options=spec.loss_options,
        optimizer=functools.partial(torch.optim.AdamW, lr=settings.lr, weight_decay=settings.weight_decay),
        lr_scheduler=functools.partial(torch.optim.lr_scheduler.CosineAnnealingLR, T_max=spec.epochs),
    )
    materialize(net, torch.zeros(steps, 2, *dm.input_shape[-3:]))
    before = _spectra(net) if spec.record_eigenvalues else None
    L.seed_everything(spec.seed, workers=True, verbose=False)  # paired runs: the same batch order whatever the method
    tracker = _EpochAccuracy()
    trainer = L.Trainer(
        max_epochs=spec.epochs, accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
        enable_checkpointing=False, enable_model_summary=False, num_sanity_val_steps=0,
        limit_val_batches=1.0 if spec.track_epochs else 0, deterministic=True, callbacks=[tracker],
    )
    trainer.fit(model, train_dataloaders=dm.train_dataloader(), val_dataloaders=dm.val_dataloader())
    metrics = trainer.test(model, dataloaders=dm.test_dataloader(), verbose=False)[0]
    result = {
        "seed": spec.seed,
        "accuracy": float(metrics["test/acc"]),
        "per_step": [float(metrics[f"test/acc_t{t}"]) for t in range(1, steps + 1)],
        **_elapsed(start),
    }
    if spec.track_epochs:
        if len(tracker.accuracy) != spec.epochs:
            raise RuntimeError(f"expected a validation accuracy for each of {spec.epochs} epochs, got {len(tracker.accuracy)}")
        result["epoch_accuracy"] = tracker.accuracy
    if spec.record_eigenvalues:
        result.update(eigen_before=before, eigen_after=_spectra(net), coupled_check=_coupled_check(net))
    return result


def build_net(make_neuron: NeuronFactory, in_channels: int, channels: tuple[int, int], hidden: int, num_classes: int = 10) -> SpikingConvNet:
    """The quickstart's :class:`~bsnn_lightning.models.SpikingConvNet` on ``[T, N, C, 34, 34]``: 2x2 average
    pooling to 17 x 17, two conv-BN-neuron-maxpool blocks (17 -> 8 -> 4), a spiking hidden layer, a linear
    read-out at every step. Small on purpose: the whole report runs in minutes on two CPU cores."""
    return SpikingConvNet(
        in_channels=in_channels, num_classes=num_classes, channels=channels, hidden=hidden, input_size=(34, 34),
        input_pool=2, neuron=make_neuron,
    )


def neuron_factory(neuron: tuple) -> NeuronFactory:
    """``("sweep", method, tau_m)`` -> :func:`sweep_neuron`; ``("imp", imp)`` -> :func:`imp_neuron`."""
    kind, *args = neuron
    if kind == "sweep":
        return sweep_neuron(*args)
    if kind == "imp":
        return imp_neuron(*args)
    raise ValueError(f"expected a neuron spec ('sweep', method, tau_m) or ('imp', imp), got {neuron!r}")


def sweep_neuron(method: str, tau: float) -> NeuronFactory:
    """The neuron of the control-rate sweep (see the module docstring for the mapping of tau_m)."""
    if method == "LIF":
        return lambda: LIFNeuron(tau=tau, decay_input=False, v_reset=None)
    structure = {"BSNN diagonal": "diagonal", "BSNN coupled": "coupled"}.get(method)
    if structure is None:
        raise ValueError(f"expected a method in {list(SWEEP_METHODS)}, got {method!r}")
    eigen_init = (EIGEN_INIT_MU[0] / tau, EIGEN_INIT_MU[1] / tau)
    bounds = (BOUNDS_MU[0] / tau, BOUNDS_MU[1] / tau)
    return lambda: BifurcationNeuron(structure=structure, eigen_init=eigen_init, bounds=bounds)


def imp_neuron(imp: str | None) -> NeuronFactory:
    """SpikingJelly's default LIF (tau 2, ``decay_input=True``, hard reset to 0), with or without an IMP."""
    return lambda: LIFNeuron(tau=2.0, v_reset=0.0, imp=imp)


class _EpochAccuracy(L.Callback):
    """Collects ``val/acc`` after every validation run (the validation loader is the test split)."""

    def __init__(self) -> None:
        self.accuracy: list[float] = []

    def on_validation_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self.accuracy.append(float(trainer.callback_metrics["val/acc"]))


# --------------------------------------------------------------------------- helpers


def _constant_input_spikes(v0s: np.ndarray, currents: np.ndarray, steps: int) -> np.ndarray:
    """Spike trains ``[len(v0s), len(currents), steps]`` of the IMP experiment's LIF neuron."""
    count = len(v0s) * len(currents)
    neuron = LIFNeuron(tau=2.0, v_reset=0.0, imp="neuron", shape=(count,))
    with torch.no_grad():
        neuron.imp.copy_(torch.as_tensor(np.repeat(v0s, len(currents)), dtype=torch.float32))
        x = torch.as_tensor(np.tile(currents, len(v0s)), dtype=torch.float32).expand(steps, 1, count)
        spikes = neuron(x)[:, 0, :]  # [steps, count]
    return spikes.T.reshape(len(v0s), len(currents), steps).numpy()


def _spectra(net: nn.Module) -> dict[str, list[float]]:
    """Eigenvalues per bifurcation layer, keyed ``conv1``, ``conv2``, ..., ``hidden`` (order in the network)."""
    spectra = bifurcation_eigenvalues(net)
    labels = [f"conv{i + 1}" for i in range(len(spectra) - 1)] + ["hidden"]
    return {label: [float(v) for v in lam] for label, lam in zip(labels, spectra.values())}


def _coupled_check(net: nn.Module) -> dict | None:
    """For coupled layers: the eigenvalues of the matrix the forward pass uses, ``A - I``, against the
    explicit (clamped) eigenvalues. ``A`` is symmetric by construction, so its spectrum is real."""
    worst_imag, worst_mismatch, found = 0.0, 0.0, False
    for module in net.modules():
        if isinstance(module, BifurcationNeuron) and module.bsnn_settings.structure == "coupled":
            found = True
            with torch.no_grad():
                matrix = module.coupling_matrix().double()
                eig = torch.linalg.eigvals(matrix) - 1
                explicit = module.effective_eigenvalues().double().sort().values
            worst_imag = max(worst_imag, float(eig.imag.abs().max()))
            worst_mismatch = max(worst_mismatch, float((eig.real.sort().values - explicit).abs().max()))
    if not found:
        return None
    return {"max_abs_imaginary": worst_imag, "max_abs_difference_to_explicit": worst_mismatch}


def _claim(description: dict) -> dict:
    return {**description, "verdict": stats.verdict(description["ci95"])}


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _elapsed(start: tuple[float, float], runs: list[dict] | None = None) -> dict:
    """Wall-clock since ``start``; CPU time of this process since then, or, for an experiment made of
    ``runs``, the sum of the runs' own CPU times (they may have run in worker processes)."""
    cpu = time.process_time() - start[1] if runs is None else sum(r["cpu_s"] for r in runs)
    return {"wall_s": round(time.perf_counter() - start[0], 2), "cpu_s": round(cpu, 2)}
