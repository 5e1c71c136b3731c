"""Callbacks that bring the methods into any user's ``Trainer(callbacks=[...])``.

- :class:`ConvertNeurons`: converts the model's neurons at setup, before optimizers are built.
- :class:`ResetStates`: resets every neuron's state before (and after) every batch.
- :class:`SpikeMonitor`: logs firing rates per layer and, for bifurcation neurons, the eigenvalue spectrum.
"""

from __future__ import annotations

import lightning as L
import torch

from .convert import bifurcation_eigenvalues, convert, firing_rates, reset_states, set_monitoring


class ConvertNeurons(L.Callback):
    """Run :func:`bsnn_lightning.convert` on the LightningModule at ``setup``.

    Lightning calls ``setup`` before it builds optimizers and wraps the model for DDP, so new parameters
    (IMP, eigenvalues) are trained and synchronised like any other. Per-neuron and per-channel parameters
    need the neurons' input shapes: they come from a dry run on ``example_input`` if given, else on the
    module's ``example_input_array``. Converting twice is harmless (fit, then test).

    Args:
        dynamics, imp, backend, step_mode: as in :func:`bsnn_lightning.convert` (``backend="native"`` keeps
            a library's own neurons, so one recipe key swaps who runs the neuron loop).
        options: bifurcation options (``structure``, ``granularity``, ``eigen_init``, ``bounds``).
        example_input: one batch as the LightningModule's forward takes it.
    """

    def __init__(
        self,
        dynamics: str | None = None,
        imp: str | None = None,
        backend: str | None = None,
        step_mode: str | None = None,
        options: dict | None = None,
        example_input: torch.Tensor | None = None,
    ) -> None:
        self.dynamics = dynamics
        self.imp = imp
        self.backend = backend
        self.step_mode = step_mode
        self.options = dict(options or {})
        self.example_input = example_input

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        example = self.example_input if self.example_input is not None else pl_module.example_input_array
        if example is not None:
            example = example.to(pl_module.device)
        convert(
            pl_module, self.dynamics, self.imp, self.backend, step_mode=self.step_mode, example_input=example, **self.options
        )


class ResetStates(L.Callback):
    """Reset every neuron's state before and after every train/validation/test/predict batch.

    Before: no state can leak from one batch into the next (a smaller last batch would otherwise meet the
    previous batch's state). After: the state, which holds the autograd graph, is released at once.
    """

    def _reset(self, pl_module):
        reset_states(pl_module)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self._reset(pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self._reset(pl_module)

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        self._reset(pl_module)

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        self._reset(pl_module)

    def on_test_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        self._reset(pl_module)

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        self._reset(pl_module)

    def on_predict_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        self._reset(pl_module)

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        self._reset(pl_module)


class SpikeMonitor(L.Callback):
    """Log firing rates per neuron layer and the eigenvalue spectrum of bifurcation neurons.

    Every ``every_n_steps`` training steps, the neurons record the spikes of that one batch
    (monitoring is off on all other steps, so it costs nothing there) and ``spikes/rate/{layer}`` is
    logged. At the end of every training epoch, for each bifurcation layer: the fraction of eigenvalues in
    the dissipative (< -tol), conservative (|lambda| <= tol) and diffusive (> tol) regimes, their min/mean/
    max, and, with a TensorBoard logger, a histogram.
    """

    def __init__(self, every_n_steps: int = 50, eigenvalues: bool = True, conservative_tol: float = 1e-2) -> None:
        if every_n_steps < 1:
            raise ValueError(f"expected every_n_steps >= 1, got {every_n_steps}")
        self.every_n_steps = every_n_steps
        self.eigenvalues = eigenvalues
        self.tol = conservative_tol

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step % self.every_n_steps == 0:
            set_monitoring(pl_module, True)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        rates = firing_rates(pl_module)
        if rates:
            for name, rate in rates.items():
                pl_module.log(f"spikes/rate/{name}", rate, on_step=True, on_epoch=False)
            set_monitoring(pl_module, False)

    def on_train_epoch_end(self, trainer, pl_module):
        if not self.eigenvalues:
            return
        for name, lam in bifurcation_eigenvalues(pl_module).items():
            lam = lam.float()
            for key, value in eigenvalue_summary(lam, self.tol).items():
                pl_module.log(f"eigen/{name}/{key}", value)
            _log_histogram(trainer, f"eigen/{name}", lam, trainer.current_epoch)


def eigenvalue_summary(eigenvalues: torch.Tensor, tol: float = 1e-2) -> dict[str, float]:
    """Regime fractions and range of a set of (real) eigenvalues of the membrane dynamics.

    >>> eigenvalue_summary(torch.tensor([-0.5, 0.0, 0.1, -0.2]))["dissipative"]
    0.5
    """
    lam = eigenvalues.flatten()
    return {
        "dissipative": float((lam < -tol).float().mean()),
        "conservative": float((lam.abs() <= tol).float().mean()),
        "diffusive": float((lam > tol).float().mean()),
        "min": float(lam.min()),
        "mean": float(lam.mean()),
        "max": float(lam.max()),
    }


def _log_histogram(trainer, tag, values, step):
    for logger in trainer.loggers:
        experiment = getattr(logger, "experiment", None)
        if hasattr(experiment, "add_histogram"):
            experiment.add_histogram(tag, values, global_step=step)
