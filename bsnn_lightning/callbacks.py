"""Callbacks that bring the methods into any user's ``Trainer(callbacks=[...])``.

- :class:`ConvertNeurons`: converts the model's neurons at setup, before optimizers are built.
- :class:`ResetStates`: resets every neuron's state before (and after) every batch.
- :class:`SpikeMonitor`: logs firing rates per layer and, for bifurcation neurons, the eigenvalue spectrum;
  optionally figures of both (raster, membrane traces, rates over epochs, spectrum) to every logger.
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import torch

from .convert import bifurcation_eigenvalues, convert, firing_rates, reset_states, set_monitoring, spiking_neurons
from .engine import multistep
from .neurons import EngineNeuron


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
    """Log firing rates per neuron layer, the eigenvalue spectrum of bifurcation neurons, and (optionally)
    figures of both.

    Every ``every_n_steps`` training steps, the neurons record the spikes of that one batch
    (monitoring is off on all other steps, so it costs nothing there) and ``spikes/rate/{layer}`` is
    logged. At the end of every training epoch, for each bifurcation layer: the fraction of eigenvalues in
    the dissipative (< -tol), conservative (|lambda| <= tol) and diffusive (> tol) regimes, their min/mean/
    max, and, with a TensorBoard logger, a histogram.

    Figures (off by default): with ``figures_every_n_epochs=n``, at the end of every n-th training epoch
    four figures are made from that epoch (matplotlib, Agg backend, no display needed):

    - ``spikes/raster``: the spike trains of ``figure_neurons`` neurons per layer, for the first sample of
      the epoch's first batch (neurons picked across the range of activity, most to least active; layers
      whose neurons take the whole sequence in one call, any library: a neuron called once per time step
      keeps only its last step and is left out);
    - ``spikes/membrane``: the membrane potentials of those neurons over the same steps (neurons that run
      on this package's engine in multistep mode; recomputed for that one sample by the reference engine);
    - ``spikes/rates``: each layer's mean firing rate per epoch so far (the mean over the epoch's monitored
      steps);
    - ``eigen/spectrum``: per bifurcation layer, the eigenvalues at the start of training and now, with the
      dissipative / conservative / diffusive regions shaded.

    Where they go, for every logger the Trainer has: TensorBoard gets them as images (``add_image``, under
    the tags above); a logger with a ``log_image`` method (e.g. Weights & Biases) gets them through it; any
    other logger with a ``log_dir`` (CSV among them) gets PNG files in ``{log_dir}/figures/``, named
    ``{tag}_epoch{e}.png`` with ``/`` in the tag as ``_``. Without a logger the PNGs go to
    ``{default_root_dir}/figures/``. ``figure_paths`` lists every PNG written. Under DDP only global rank 0
    makes figures. With figures off, the only work on a training step that logs no rates is a comparison, a
    modulo and a flag test (``bench/monitor_overhead.py`` measures the cost against no callback at all).

    Args:
        every_n_steps: log firing rates every this many training steps.
        eigenvalues: log the eigenvalue statistics (and the spectrum figure).
        conservative_tol: ``|lambda|`` up to this counts as conservative.
        figures_every_n_epochs: make the figures every this many epochs; None (default) for never.
        figure_neurons: neurons per layer in the raster and membrane figures.
    """

    def __init__(
        self,
        every_n_steps: int = 50,
        eigenvalues: bool = True,
        conservative_tol: float = 1e-2,
        figures_every_n_epochs: int | None = None,
        figure_neurons: int = 8,
    ) -> None:
        if every_n_steps < 1:
            raise ValueError(f"expected every_n_steps >= 1, got {every_n_steps}")
        if figures_every_n_epochs is not None and figures_every_n_epochs < 1:
            raise ValueError(f"expected figures_every_n_epochs >= 1 or None, got {figures_every_n_epochs}")
        if figure_neurons < 1:
            raise ValueError(f"expected figure_neurons >= 1, got {figure_neurons}")
        if figures_every_n_epochs is not None:
            from .report.plots import require_matplotlib

            require_matplotlib("SpikeMonitor(figures_every_n_epochs=...)")
        self.every_n_steps = every_n_steps
        self.eigenvalues = eigenvalues
        self.tol = conservative_tol
        self.figures_every_n_epochs = figures_every_n_epochs
        self.figure_neurons = figure_neurons
        #: layer -> [(epoch, mean firing rate of the epoch's monitored steps)]
        self.rate_history: dict[str, list[tuple[int, float]]] = {}
        #: layer -> eigenvalues at the start of training (for the spectrum figure)
        self.initial_eigenvalues: dict[str, list[float]] = {}
        #: every PNG file written
        self.figure_paths: list[str] = []
        #: the data of the latest raster and membrane figures: ``epoch``; ``spikes``, ``membrane``, ``membrane_spikes``
        #: (the recomputation's spikes, equal to ``spikes``) per layer as ``[T, figure_neurons]`` arrays, and
        #: ``thresholds``; None before the first figure epoch
        self.last_snapshot: dict | None = None
        self._recording = False
        self._epoch_rates: dict[str, list[float]] = {}
        self._capture: _InputCapture | None = None

    # --- hooks -----------------------------------------------------------------------------------------
    def on_train_start(self, trainer, pl_module):
        if self.figures_every_n_epochs is not None and self.eigenvalues and not self.initial_eigenvalues:
            self.initial_eigenvalues = {k: v.float().tolist() for k, v in bifurcation_eigenvalues(pl_module).items()}

    def on_train_epoch_start(self, trainer, pl_module):
        self._epoch_rates = {}

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        snapshot = batch_idx == 0 and self._figure_epoch(trainer)
        if snapshot or trainer.global_step % self.every_n_steps == 0:
            set_monitoring(pl_module, True)
            self._recording = True
            if snapshot:
                self._capture = _InputCapture(pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if not self._recording:
            return
        self._recording = False
        try:
            rates = firing_rates(pl_module)
            for name, rate in rates.items():
                pl_module.log(f"spikes/rate/{name}", rate, on_step=True, on_epoch=False)
                self._epoch_rates.setdefault(name, []).append(float(rate))
            if self._capture is not None:
                self.last_snapshot = {"epoch": trainer.current_epoch, **self._capture.snapshot(pl_module, self.figure_neurons)}
        finally:
            if self._capture is not None:
                self._capture.remove()
                self._capture = None
            set_monitoring(pl_module, False)

    def on_train_epoch_end(self, trainer, pl_module):
        for name, rates in self._epoch_rates.items():
            self.rate_history.setdefault(name, []).append((trainer.current_epoch, sum(rates) / len(rates)))
        spectra = bifurcation_eigenvalues(pl_module) if self.eigenvalues else {}
        for name, lam in spectra.items():
            lam = lam.float()
            for key, value in eigenvalue_summary(lam, self.tol).items():
                pl_module.log(f"eigen/{name}/{key}", value)
            _log_histogram(trainer, f"eigen/{name}", lam, trainer.current_epoch)
        if self._figure_epoch(trainer) and trainer.is_global_zero:  # one set of figures, not one per process
            self._log_figures(trainer, pl_module, spectra)

    def state_dict(self) -> dict:
        return {"rate_history": {k: [list(p) for p in v] for k, v in self.rate_history.items()},
                "initial_eigenvalues": dict(self.initial_eigenvalues)}

    def load_state_dict(self, state_dict: dict) -> None:
        self.rate_history = {k: [tuple(p) for p in v] for k, v in state_dict.get("rate_history", {}).items()}
        self.initial_eigenvalues = dict(state_dict.get("initial_eigenvalues", {}))

    # --- figures ---------------------------------------------------------------------------------------
    def _figure_epoch(self, trainer) -> bool:
        n = self.figures_every_n_epochs
        return n is not None and (trainer.current_epoch + 1) % n == 0

    def _log_figures(self, trainer, pl_module, spectra) -> None:
        from .report import plots

        epoch = trainer.current_epoch
        figures = {}
        snapshot = self.last_snapshot if self.last_snapshot and self.last_snapshot["epoch"] == epoch else None
        if snapshot and snapshot["spikes"]:
            figures["spikes/raster"] = plots.raster(snapshot["spikes"], f"Spike raster, first sample of epoch {epoch}'s first batch")
        if snapshot and snapshot["membrane"]:
            figures["spikes/membrane"] = plots.membrane_traces(
                snapshot["membrane"], snapshot["thresholds"], f"Membrane potential, same neurons, epoch {epoch}",
                spikes=snapshot["spikes"],
            )
        if any(self.rate_history.values()):
            figures["spikes/rates"] = plots.rates_over_epochs(self.rate_history)
        if spectra:
            bounds = {name: _bounds_of(pl_module, name) for name in spectra}
            pairs = {name: (self.initial_eigenvalues.get(name), lam.float().tolist()) for name, lam in spectra.items()}
            figures["eigen/spectrum"] = plots.eigen_monitor(pairs, bounds, f"Eigenvalue spectrum, epoch {epoch}")
        for tag, fig in figures.items():
            self.figure_paths += log_figure(trainer, tag, fig, epoch)


def log_figure(trainer, tag: str, fig, epoch: int) -> list[str]:
    """Send one matplotlib figure to every logger of ``trainer`` (see :class:`SpikeMonitor`); returns the
    PNG paths written."""
    from .report import plots

    written = []
    targets = [lg for lg in trainer.loggers] if trainer.loggers else [None]
    for logger in targets:
        experiment = getattr(logger, "experiment", None) if logger is not None else None
        if logger is not None and hasattr(experiment, "add_image"):
            experiment.add_image(tag, plots.rgb_array(fig), global_step=trainer.global_step, dataformats="HWC")
        elif logger is not None and callable(getattr(logger, "log_image", None)):
            logger.log_image(key=tag, images=[plots.rgb_array(fig)], step=trainer.global_step)
        else:
            folder = getattr(logger, "log_dir", None) if logger is not None else None
            folder = Path(folder or trainer.default_root_dir) / "figures"
            written.append(str(plots.save_png(fig, folder / f"{tag.replace('/', '_')}_epoch{epoch}.png")))
    return written


class _InputCapture:
    """Forward pre-hooks on the engine neurons (multistep mode) that keep the first sample's input, initial
    state and parameters of one forward pass, so its membrane trajectory can be recomputed afterwards."""

    def __init__(self, model: torch.nn.Module) -> None:
        self.inputs: dict[str, tuple] = {}  # name -> (x of sample 0, v0, dynamics, parameters) at forward time
        self.handles = []
        for name, module, _ in spiking_neurons(model):
            if isinstance(module, EngineNeuron) and module.step_mode == "m":
                self.handles.append(module.register_forward_pre_hook(self._hook(name)))

    def _hook(self, name):
        def hook(module, args):
            x = args[0]
            if x.dim() < 3 or name in self.inputs:
                return
            with torch.no_grad():  # copies: the optimizer step after the forward updates IMP and eigenvalues in place
                x0 = x[:, :1].detach().clone()
                v0 = module.v[:1] if module.v is not None else module.initial_state(x0)
                v0 = v0.detach().clone() if isinstance(v0, torch.Tensor) else v0
                params = {k: (v.detach().clone() if isinstance(v, torch.Tensor) else v) for k, v in module.engine_params().items()}
                self.inputs[name] = (x0, v0, module.dynamics, params)

        return hook

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()
        self.handles = []

    def snapshot(self, model, count: int) -> dict:
        """Spikes and membrane of ``count`` neurons per layer for the captured sample: ``[T, count]`` each.

        ``membrane_spikes`` are the spikes of the recomputation that gave the membrane; they equal the
        recorded ``spikes`` (the figures show one neuron's train and potential, not two different runs)."""
        spikes, membrane, membrane_spikes, thresholds = {}, {}, {}, {}
        for name, module, adapter in spiking_neurons(model):
            recorded = adapter.spikes(module)
            if recorded is None or recorded.dim() != len(adapter.sample_shape(module, recorded)) + 2:
                continue  # a neuron called once per time step: its last call holds one step, no train to draw
            train = recorded[:, 0].flatten(1).float()
            chosen = _pick_neurons(train.sum(0), count)
            spikes[name] = train[:, chosen].cpu().numpy()
            if name in self.inputs:
                x0, v0, dynamics, params = self.inputs[name]
                with torch.no_grad():
                    out = multistep(x0, dynamics, params, v0, backend="torch", return_v_seq=True)
                membrane[name] = out.v_seq[:, 0].flatten(1)[:, chosen].float().cpu().numpy()
                membrane_spikes[name] = out.spikes[:, 0].flatten(1)[:, chosen].float().cpu().numpy()
                thresholds[name] = float(params["threshold"])
        return {"spikes": spikes, "membrane": membrane, "membrane_spikes": membrane_spikes, "thresholds": thresholds}


def _pick_neurons(counts: torch.Tensor, k: int) -> torch.Tensor:
    """``k`` neuron indices spread over the ranking by spike count (most active first), active ones first."""
    order = torch.argsort(counts, descending=True, stable=True)
    active = int((counts > 0).sum())
    pool = order[:active] if active >= k else order
    k = min(k, len(pool))
    positions = torch.linspace(0, len(pool) - 1, k).round().long()
    return pool[positions]


def _bounds_of(model, name: str) -> tuple[float, float]:
    module = model.get_submodule(name)
    bounds = getattr(module, "bounds", None) or module.bsnn_settings.bounds
    return float(bounds[0]), float(bounds[1])


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
