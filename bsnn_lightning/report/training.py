"""One training run of the report: :class:`RunSpec` (what to train, as plain picklable data) and
:func:`train_and_test` (build, train and test one :class:`~bsnn_lightning.SpikingClassifier` with a real
Lightning ``Trainer``).

Runs that are compared are *paired*: the same seed gives the same initial weights and the same order of
training batches (the generator is re-seeded after the model and its neuron parameters are built), so two
methods differ only in the method.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass
from typing import Callable

import lightning as L
import torch
from torch import nn

from ..classifier import SpikingClassifier
from ..convert import bifurcation_eigenvalues, materialize
from ..models import NeuronFactory, SpikingConvNet
from ..neurons import BifurcationNeuron
from .data_cache import DataCache
from .neuron_specs import NEURON_SPECS, NeuronSpec
from .settings import Settings


@dataclass(frozen=True)
class RunSpec:
    """One training run, as plain (picklable) data: ``neuron`` is one of :mod:`.neuron_specs`' specs;
    ``variant`` is ``"events"``, ``"static"`` (digits only) or ``"time_averaged"`` (the event frames averaged
    over time, presented at every step); ``eigen_lr_scale`` multiplies the eigenvalues' learning rate."""

    seed: int
    variant: str
    neuron: NeuronSpec
    loss: str
    epochs: int
    loss_options: dict | None = None
    track_epochs: bool = False
    record_eigenvalues: bool = False
    eigen_lr_scale: float = 1.0
    task: str = "digits"

    def __post_init__(self) -> None:
        if not isinstance(self.neuron, NEURON_SPECS):
            raise TypeError(f"expected a neuron spec ({', '.join(t.__name__ for t in NEURON_SPECS)}), got {self.neuron!r}")


#: runs a list of specs, returns their results in the same order (a :class:`~.pool.RunPool`, or a stand-in)
Runner = Callable[[list[RunSpec]], list[dict]]


def train_and_test(settings: Settings, data: DataCache, spec: RunSpec) -> dict:
    """Build, train and test one network; returns its test accuracy (and per-step accuracy, timings, ...).

    Runs with ``settings.threads`` torch threads (restored afterwards): the result depends on the thread
    count through the order of floating-point reductions, and on nothing else but ``spec`` and ``settings``.
    """
    if spec.task != settings.task:
        raise ValueError(f"expected a run of task {settings.task!r}, got one of {spec.task!r}")
    threads = torch.get_num_threads()
    torch.set_num_threads(settings.threads)
    try:
        return _train_and_test(settings, data, spec)
    finally:
        torch.set_num_threads(threads)


def _train_and_test(settings: Settings, data: DataCache, spec: RunSpec) -> dict:
    start = clock()
    task = data.get(spec.variant)
    steps = task.steps
    channels, height, width = task.sample_shape[-3:]
    L.seed_everything(spec.seed, workers=True, verbose=False)
    net = build_net(spec.neuron.factory(), in_channels=channels, channels=settings.channels, hidden=settings.hidden,
                    num_classes=task.num_classes, input_size=(height, width))
    model = SpikingClassifier(
        net, num_classes=task.num_classes, static_steps=steps if task.static else None, loss=spec.loss,
        loss_options=spec.loss_options,
        optimizer=_AdamW(net, settings.lr, settings.weight_decay, spec.eigen_lr_scale),
        lr_scheduler=functools.partial(torch.optim.lr_scheduler.CosineAnnealingLR, T_max=spec.epochs),
    )
    materialize(net, torch.zeros(steps, 2, channels, height, width))
    before = _spectra(net) if spec.record_eigenvalues else None
    L.seed_everything(spec.seed, workers=True, verbose=False)  # paired runs: the same batch order whatever the method
    tracker = _EpochAccuracy()
    trainer = L.Trainer(
        max_epochs=spec.epochs, accelerator="cpu", devices=1, logger=False, enable_progress_bar=False,
        enable_checkpointing=False, enable_model_summary=False, num_sanity_val_steps=0,
        limit_val_batches=1.0 if spec.track_epochs else 0, deterministic=True, callbacks=[tracker],
    )
    trainer.fit(model, train_dataloaders=task.loader("train"), val_dataloaders=task.loader("test"))
    metrics = trainer.test(model, dataloaders=task.loader("test"), verbose=False)[0]
    result = {
        "seed": spec.seed,
        "accuracy": float(metrics["test/acc"]),
        "per_step": [float(metrics[f"test/acc_t{t}"]) for t in range(1, steps + 1)],
        "num_classes": task.num_classes,
        **elapsed(start),
    }
    if spec.track_epochs:
        if len(tracker.accuracy) != spec.epochs:
            raise RuntimeError(f"expected a validation accuracy for each of {spec.epochs} epochs, got {len(tracker.accuracy)}")
        result["epoch_accuracy"] = tracker.accuracy
    if spec.record_eigenvalues:
        result.update(eigen_before=before, eigen_after=_spectra(net), eigen_param_after=_spectra(net, raw=True),
                      coupled_check=_coupled_check(net))
    return result


def build_net(
    make_neuron: NeuronFactory, in_channels: int, channels: tuple[int, int], hidden: int, num_classes: int = 10,
    input_size: tuple[int, int] = (34, 34),
) -> SpikingConvNet:
    """The quickstart's :class:`~bsnn_lightning.models.SpikingConvNet` on ``[T, N, C, H, W]``: 2x2 average
    pooling (34 x 34 digits to 17 x 17, 16 x 16 intervals to 8 x 8), two conv-BN-neuron-maxpool blocks, a
    spiking hidden layer, a linear read-out at every step. Small on purpose: the whole report runs in minutes
    on two CPU cores."""
    return SpikingConvNet(
        in_channels=in_channels, num_classes=num_classes, channels=channels, hidden=hidden, input_size=input_size,
        input_pool=2, neuron=make_neuron,
    )


class _AdamW:
    """The report's optimizer factory: AdamW over the classifier's parameter groups, with the learning rate of
    the bifurcation neurons' eigenvalues multiplied by ``eigen_lr_scale`` (1: one learning rate for all)."""

    def __init__(self, net: nn.Module, lr: float, weight_decay: float, eigen_lr_scale: float = 1.0) -> None:
        if not eigen_lr_scale > 0:
            raise ValueError(f"expected eigen_lr_scale > 0, got {eigen_lr_scale}")
        self.net, self.lr, self.weight_decay, self.eigen_lr_scale = net, lr, weight_decay, eigen_lr_scale

    def __call__(self, groups) -> torch.optim.Optimizer:
        if self.eigen_lr_scale != 1.0:
            eigen = {id(p) for name, p in self.net.named_parameters() if name.endswith("eigenvalues")}
            if not eigen:
                raise ValueError("expected bifurcation neurons for a scaled eigenvalue learning rate, found no eigenvalues")
            split = []
            for group in groups:
                rest = [p for p in group["params"] if id(p) not in eigen]
                mine = [p for p in group["params"] if id(p) in eigen]
                split += [{**group, "params": rest}] if rest else []
                split += [{**group, "params": mine, "lr": self.lr * self.eigen_lr_scale}] if mine else []
            groups = split
        return torch.optim.AdamW(groups, lr=self.lr, weight_decay=self.weight_decay)


class _EpochAccuracy(L.Callback):
    """Collects ``val/acc`` after every validation run (the validation loader is the test split)."""

    def __init__(self) -> None:
        self.accuracy: list[float] = []

    def on_validation_end(self, trainer, pl_module) -> None:
        if not trainer.sanity_checking:
            self.accuracy.append(float(trainer.callback_metrics["val/acc"]))


def _spectra(net: nn.Module, raw: bool = False) -> dict[str, list[float]]:
    """Eigenvalues per bifurcation layer, keyed ``conv1``, ``conv2``, ..., ``hidden`` (order in the network): the
    ones the forward pass uses (clamped to the bounds), or with ``raw`` the parameters themselves, which may lie
    past a bound (where the clamp passes no gradient)."""
    spectra = bifurcation_eigenvalues(net)
    if raw:
        spectra = {name: net.get_submodule(name).eigenvalues.detach().flatten() for name in spectra}
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




def clock() -> tuple[float, float]:
    """``(perf_counter, process_time)`` now: the start of what :func:`elapsed` measures."""
    return time.perf_counter(), time.process_time()


def elapsed(start: tuple[float, float], runs: list[dict] | None = None) -> dict:
    """Wall-clock since ``start``; CPU time of this process since then, or, for an experiment made of
    ``runs``, the sum of the runs' own CPU times (they may have run in worker processes)."""
    cpu = time.process_time() - start[1] if runs is None else sum(r["cpu_s"] for r in runs)
    return {"wall_s": round(time.perf_counter() - start[0], 2), "cpu_s": round(cpu, 2)}
