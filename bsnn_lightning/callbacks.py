"""Callbacks that bring the methods into any user's ``Trainer(callbacks=[...])``.

- :class:`ConvertNeurons`: converts the model's neurons at setup, before optimizers are built.
- :class:`ResetStates`: resets every neuron's state before (and after) every batch.
- :class:`FiringRateMonitor`: logs each neuron layer's firing rate every n training steps.
- :class:`EigenvalueMonitor`: logs the regimes of the bifurcation layers' eigenvalues every epoch.
- :class:`SpikeFigures`: spike raster, membrane traces, rates over epochs and eigenvalue spectrum every
  n epochs, to every logger.
- :class:`SpikeMonitor`: the three monitors in one callback, with the figures off by default.

Any library's neurons are monitored, native or converted (:func:`bsnn_lightning.spiking_neurons`).
"""

from __future__ import annotations

from pathlib import Path

import lightning as L
import numpy as np
import torch

from .analysis import eigenvalue_bounds, eigenvalue_summary, pick_neurons
from .convert import (
    CONVERT_NOTES,
    bifurcation_eigenvalues,
    check_optimized,
    convert,
    firing_rates,
    recordings,
    requested_changes,
    reset_states,
    set_monitoring,
)
from .engine import checks
from .figures import monitor as monitor_figures
from .figures.common import require_matplotlib, rgb_array, save_png
from .neuron_params import Recording, settings_keywords
from .user_warnings import warn_user


class _AroundEveryBatch(L.Callback):
    """A callback that does something before and after every train, validation, test and predict batch:
    :meth:`_before_batch` and :meth:`_after_batch`, each given the LightningModule."""

    def _before_batch(self, pl_module) -> None:
        raise NotImplementedError

    def _after_batch(self, pl_module) -> None:
        raise NotImplementedError

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self._before_batch(pl_module)

    def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        self._before_batch(pl_module)

    def on_test_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        self._before_batch(pl_module)

    def on_predict_batch_start(self, trainer, pl_module, batch, batch_idx, dataloader_idx=0):
        self._before_batch(pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self._after_batch(pl_module)

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        self._after_batch(pl_module)

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        self._after_batch(pl_module)

    def on_predict_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0):
        self._after_batch(pl_module)


class ConvertNeurons(_AroundEveryBatch):
    """Run :func:`bsnn_lightning.convert` on the LightningModule at ``setup``.

    Lightning calls ``setup`` before it builds optimizers and wraps the model for DDP, so new parameters
    (IMP, eigenvalues) are trained and synchronised like any other. Per-neuron and per-channel parameters
    need the neurons' input shapes: they come from a dry run on ``example_input`` if given, else on the
    module's ``example_input_array``. Converting twice is harmless (fit, then test).

    Value checks deferred on a GPU (``check_finite="auto"``, see :mod:`bsnn_lightning.engine.checks`) are
    read once every ``trainer.log_every_n_steps`` training steps and at the end of every epoch: a NaN in a
    neuron layer then stops training there, without a host synchronisation in every step. The checks of each
    batch belong to this LightningModule: another model's flags are never raised here, and a fit starts by
    dropping what an interrupted fit of the same module left unread.

    The settings (every field of :class:`~bsnn_lightning.neuron_params.MethodSettings`, each with its help in
    ``bsnn fit --help``) are those of :func:`bsnn_lightning.convert`, given as keywords; ``backend="native"``
    keeps a library's own neurons, so one recipe key swaps who runs the loop.

    >>> callback = ConvertNeurons(dynamics="bifurcation", imp="channel")
    >>> callback.changes
    {'dynamics': 'bifurcation', 'imp': 'channel'}

    Args:
        example_input: one batch as the LightningModule's forward takes it.
        options: deprecated: the bifurcation options as a dict; give them as keywords (``structure``,
            ``granularity``, ``eigen_init``, ``bounds``) as for ``convert``.
    """

    @settings_keywords(CONVERT_NOTES)
    def __init__(self, *, example_input: torch.Tensor | None = None, options: dict | None = None, **changes) -> None:
        if options:
            warn_user(
                "ConvertNeurons(options={...}) is deprecated: give the bifurcation options as keywords, as for "
                f"convert (ConvertNeurons({', '.join(f'{k}={v!r}' for k, v in options.items())}); in a recipe: "
                "init_args.structure, ...)",
                DeprecationWarning,
            )
            twice = sorted(set(options) & {name for name, value in changes.items() if value is not None})
            if twice:
                raise ValueError(f"got {twice} both in options and as keywords")
            changes = {**changes, **options}
        requested_changes(None, changes)  # a wrong name or choice fails here, not at setup
        #: the settings to change (None values left out), as given to :func:`bsnn_lightning.convert`
        self.changes = {name: value for name, value in changes.items() if value is not None}
        self.example_input = example_input

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        example = self.example_input if self.example_input is not None else pl_module.example_input_array
        if example is not None:
            example = example.to(pl_module.device)
        convert(pl_module, example_input=example, **self.changes)

    # deferred value checks raised in a batch belong to this LightningModule (see engine.checks.owned_by)
    def on_fit_start(self, trainer, pl_module):
        checks.clear(pl_module)  # what an interrupted fit of this module left unread is not this fit's

    def on_train_start(self, trainer, pl_module):
        # the optimizers exist now: every neuron parameter meant to train must be in one (a LightningModule's
        # ``not_optimized`` kinds, as SpikingClassifier's, are left out on purpose)
        check_optimized(pl_module, trainer.optimizers, getattr(pl_module, "not_optimized", ()))
        self._checked_after_first_step = False

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
        checks.raise_deferred_every(trainer.global_step, trainer.log_every_n_steps, pl_module)
        if not getattr(self, "_checked_after_first_step", True):  # parameters a neuron's first forward created
            self._checked_after_first_step = True
            check_optimized(pl_module, trainer.optimizers, getattr(pl_module, "not_optimized", ()))

    def on_train_epoch_end(self, trainer, pl_module):
        checks.raise_deferred(pl_module)

    def on_validation_epoch_end(self, trainer, pl_module):
        checks.raise_deferred(pl_module)

    def on_test_epoch_end(self, trainer, pl_module):
        checks.raise_deferred(pl_module)

    def on_exception(self, trainer, pl_module, exception):
        self._disown()

    def _before_batch(self, pl_module) -> None:  # the batch's deferred checks belong to pl_module
        self._disown()
        self._owner_token = checks.enter(pl_module)

    def _after_batch(self, pl_module) -> None:
        self._disown()

    def _disown(self) -> None:
        token, self._owner_token = getattr(self, "_owner_token", None), None
        if token is not None:
            checks.leave(token)


class ResetStates(_AroundEveryBatch):
    """Reset every neuron's state before and after every train/validation/test/predict batch.

    Before: no state can leak from one batch into the next (a smaller last batch would otherwise meet the
    previous batch's state). After: the state, which holds the autograd graph, is released at once.

    >>> from bsnn_lightning import LIFNeuron
    >>> net = torch.nn.Sequential(LIFNeuron())
    >>> _ = net(torch.rand(3, 2, 4))
    >>> ResetStates().on_train_batch_end(None, net, None, None, 0)
    >>> net[0].v is None
    True
    """

    def _before_batch(self, pl_module) -> None:
        reset_states(pl_module)

    def _after_batch(self, pl_module) -> None:
        reset_states(pl_module)



class _Recorder(L.Callback):
    """A callback that reads what the neurons record on some training steps.

    The neurons have one recording switch (:func:`bsnn_lightning.set_monitoring`), and switching it off
    drops what they recorded, so the recorders of a Trainer share it: on a step that any of them asks for
    (:meth:`records`), the first of them in the Trainer's order switches recording on in
    ``on_train_batch_start`` (with membrane potentials if any asker needs them), each reads in
    ``on_train_batch_end`` (:meth:`on_recorded_batch`), and the last switches recording off. On other steps
    each only asks, which is a comparison or two.
    """

    #: whether this recorder reads the membrane potentials, not only the spikes
    needs_membrane = False

    def __init__(self) -> None:
        self._peers: list[_Recorder] = [self]  # the Trainer's recorders, set at setup
        self._step_recorded = False

    def records(self, trainer: L.Trainer, batch_idx: int) -> bool:
        """Whether this recorder needs the neurons' recordings of the training step about to run."""
        raise NotImplementedError

    def on_recorded_batch(self, trainer: L.Trainer, pl_module: L.LightningModule, batch_idx: int) -> None:
        """Read the recordings of a training step that recorded, for this recorder or another."""
        raise NotImplementedError

    def setup(self, trainer, pl_module, stage):
        self._peers = _recorders(trainer) or [self]

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        asking = [recorder for recorder in self._peers if recorder.records(trainer, batch_idx)]
        self._step_recorded = bool(asking)
        if asking and self is self._peers[0]:
            set_monitoring(pl_module, True, membrane=any(recorder.needs_membrane for recorder in asking))

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if not self._step_recorded:
            return
        self._step_recorded = False
        try:
            self.on_recorded_batch(trainer, pl_module, batch_idx)
        finally:
            if self is self._peers[-1]:
                set_monitoring(pl_module, False)


class FiringRateMonitor(_Recorder):
    """Log each neuron layer's firing rate (spikes per neuron per step) every ``every_n_steps`` training steps.

    On those steps the neurons record the spikes of that one batch (recording is off on all other steps,
    so it costs nothing there) and ``spikes/rate/{layer}`` is logged; it is logged too on a step on which
    the neurons record for another callback (the first step of a :class:`SpikeFigures` figure epoch).
    ``rate_history`` keeps each epoch's mean over its logged steps per layer, and is saved in checkpoints.

    Args:
        every_n_steps: log firing rates every this many training steps (counted by ``global_step``).

    >>> monitor = FiringRateMonitor(every_n_steps=10)
    >>> monitor.every_n_steps, monitor.rate_history
    (10, {})
    """

    def __init__(self, every_n_steps: int = 50) -> None:
        super().__init__()
        if every_n_steps < 1:
            raise ValueError(f"expected every_n_steps >= 1, got {every_n_steps}")
        self.every_n_steps = every_n_steps
        #: layer -> [(epoch, mean firing rate of the epoch's logged steps)]
        self.rate_history: dict[str, list[tuple[int, float]]] = {}
        self._epoch_rates: dict[str, list[float]] = {}

    def records(self, trainer, batch_idx):
        return trainer.global_step % self.every_n_steps == 0

    def on_train_epoch_start(self, trainer, pl_module):
        self._epoch_rates = {}

    def on_recorded_batch(self, trainer, pl_module, batch_idx):
        for name, rate in firing_rates(pl_module).items():
            pl_module.log(f"spikes/rate/{name}", rate, on_step=True, on_epoch=False)
            self._epoch_rates.setdefault(name, []).append(float(rate))

    def on_train_epoch_end(self, trainer, pl_module):
        self.close_epoch(trainer.current_epoch)

    def close_epoch(self, epoch: int) -> None:
        """Add the epoch's mean rates to ``rate_history``; a second call for the same epoch adds nothing
        (so a callback that draws the history can call it first, whatever the order of the callbacks)."""
        for name, rates in self._epoch_rates.items():
            self.rate_history.setdefault(name, []).append((epoch, sum(rates) / len(rates)))
        self._epoch_rates = {}

    def state_dict(self) -> dict:
        return {"rate_history": {k: [list(p) for p in v] for k, v in self.rate_history.items()}}

    def load_state_dict(self, state_dict: dict) -> None:
        self.rate_history = {k: [tuple(p) for p in v] for k, v in state_dict.get("rate_history", {}).items()}


class EigenvalueMonitor(L.Callback):
    """At the end of every training epoch, for each bifurcation layer: log the fractions of its eigenvalues
    in the dissipative (< -tol), conservative (``|lambda| <= tol``) and diffusive (> tol) regimes and their
    min / mean / max as ``eigen/{layer}/{key}``, and, with a TensorBoard logger, a histogram
    (``eigen/{layer}``).

    Args:
        conservative_tol: ``|lambda|`` up to this counts as conservative.

    >>> EigenvalueMonitor(conservative_tol=0.05).conservative_tol
    0.05
    """

    def __init__(self, conservative_tol: float = 1e-2) -> None:
        self.conservative_tol = conservative_tol

    def on_train_epoch_end(self, trainer, pl_module):
        for name, lam in bifurcation_eigenvalues(pl_module).items():
            lam = lam.float()
            for key, value in eigenvalue_summary(lam, self.conservative_tol).items():
                pl_module.log(f"eigen/{name}/{key}", value)
            _log_histogram(trainer, f"eigen/{name}", lam, trainer.current_epoch)


class SpikeFigures(_Recorder):
    """Every ``every_n_epochs`` training epochs, four figures of that epoch to every logger (matplotlib,
    Agg backend, no display needed):

    - ``spikes/raster``: the spike trains of ``neurons`` neurons per layer, for the first sample of the
      epoch's first batch (neurons picked across the range of activity, most to least active; layers whose
      neurons take the whole sequence in one call, any library: a neuron called once per time step keeps
      only its last step and is left out);
    - ``spikes/membrane``: the membrane potentials of those neurons in that same forward pass, after each
      step's reset (neurons that run on this package's engine: its own and converted snnTorch/SpikingJelly
      neurons), with the firing threshold;
    - ``spikes/rates``: each layer's mean firing rate per epoch so far, from a :class:`FiringRateMonitor`;
    - ``eigen/spectrum``: per bifurcation layer, the eigenvalues at the start of training and now, with the
      dissipative / conservative / diffusive regions shaded.

    A figure with nothing to draw (no layer recorded a sequence, no rates, no bifurcation layer) is left
    out. Where they go, for every logger the Trainer has: TensorBoard gets them as images (``add_image``,
    under the tags above); a logger with a ``log_image`` method (e.g. Weights & Biases) gets them through
    it; any other logger with a ``log_dir`` (CSV among them) gets PNG files in ``{log_dir}/figures/``, named
    ``{tag}_epoch{e}.png`` with ``/`` in the tag as ``_``. Without a logger the PNGs go to
    ``{default_root_dir}/figures/``. ``figure_paths`` lists every PNG written. Under DDP only global rank 0
    draws. The eigenvalues at the start of training are saved in checkpoints.

    Args:
        every_n_epochs: make the figures at the end of every this many epochs.
        neurons: neurons per layer in the raster and membrane figures.
        spectrum: draw the eigenvalue spectrum.
        rates: the :class:`FiringRateMonitor` whose history the rates figure draws; by default the
            Trainer's (no rates figure without one).

    >>> SpikeFigures(every_n_epochs=0)
    Traceback (most recent call last):
    ...
    ValueError: expected every_n_epochs >= 1, got 0
    """

    needs_membrane = True

    def __init__(
        self, every_n_epochs: int = 1, neurons: int = 8, spectrum: bool = True, rates: FiringRateMonitor | None = None
    ) -> None:
        super().__init__()
        if every_n_epochs < 1:
            raise ValueError(f"expected every_n_epochs >= 1, got {every_n_epochs}")
        if neurons < 1:
            raise ValueError(f"expected neurons >= 1, got {neurons}")
        require_matplotlib("SpikeFigures")
        self.every_n_epochs = every_n_epochs
        self.neurons = neurons
        self.spectrum = spectrum
        self.rates = rates
        #: layer -> eigenvalues at the start of training
        self.initial_eigenvalues: dict[str, list[float]] = {}
        #: every PNG file written
        self.figure_paths: list[str] = []
        #: the data of the latest raster and membrane figures (see :func:`first_sample_traces`), with its
        #: ``epoch``; None before the first figure epoch
        self.last_snapshot: dict | None = None
        self._rates: FiringRateMonitor | None = rates

    def setup(self, trainer, pl_module, stage):
        super().setup(trainer, pl_module, stage)
        if self.rates is None:
            self._rates = next((r for r in self._peers if isinstance(r, FiringRateMonitor)), None)

    def records(self, trainer, batch_idx):
        return batch_idx == 0 and self._figure_epoch(trainer)

    def on_train_start(self, trainer, pl_module):
        if self.spectrum and not self.initial_eigenvalues:  # a resumed run keeps the spectrum it started from
            self.initial_eigenvalues = {k: v.float().tolist() for k, v in bifurcation_eigenvalues(pl_module).items()}

    def on_recorded_batch(self, trainer, pl_module, batch_idx):
        if self.records(trainer, batch_idx):
            self.last_snapshot = {"epoch": trainer.current_epoch, **first_sample_traces(recordings(pl_module), self.neurons)}

    def on_train_epoch_end(self, trainer, pl_module):
        if not self._figure_epoch(trainer):
            return
        if self._rates is not None:
            self._rates.close_epoch(trainer.current_epoch)
        if trainer.is_global_zero:  # one set of figures, not one per process
            for tag, fig in self._figures(trainer, pl_module).items():
                self.figure_paths += log_figure(trainer, tag, fig, trainer.current_epoch)

    def state_dict(self) -> dict:
        return {"initial_eigenvalues": dict(self.initial_eigenvalues)}

    def load_state_dict(self, state_dict: dict) -> None:
        self.initial_eigenvalues = dict(state_dict.get("initial_eigenvalues", {}))

    def _figure_epoch(self, trainer) -> bool:
        return (trainer.current_epoch + 1) % self.every_n_epochs == 0

    def _figures(self, trainer, pl_module) -> dict:
        epoch = trainer.current_epoch
        figures = {}
        snapshot = self.last_snapshot if self.last_snapshot and self.last_snapshot["epoch"] == epoch else None
        if snapshot and snapshot["spikes"]:
            figures["spikes/raster"] = monitor_figures.raster(
                snapshot["spikes"], f"Spike raster, first sample of epoch {epoch}'s first batch"
            )
        if snapshot and snapshot["membrane"]:
            figures["spikes/membrane"] = monitor_figures.membrane_traces(
                snapshot["membrane"], snapshot["thresholds"], f"Membrane potential, same neurons, epoch {epoch}",
                spikes=snapshot["spikes"],
            )
        if self._rates is not None and any(self._rates.rate_history.values()):
            figures["spikes/rates"] = monitor_figures.rates_over_epochs(self._rates.rate_history)
        spectra = bifurcation_eigenvalues(pl_module) if self.spectrum else {}
        if spectra:
            bounds = {name: eigenvalue_bounds(pl_module, name) for name in spectra}
            pairs = {name: (self.initial_eigenvalues.get(name), lam.float().tolist()) for name, lam in spectra.items()}
            figures["eigen/spectrum"] = monitor_figures.eigen_monitor(pairs, bounds, f"Eigenvalue spectrum, epoch {epoch}")
        return figures


class SpikeMonitor(L.Callback):
    """Firing rates, eigenvalue statistics and, optionally, figures of both, in one callback.

    It holds a :class:`FiringRateMonitor` (``every_n_steps``), an :class:`EigenvalueMonitor` (unless
    ``eigenvalues=False``) and a :class:`SpikeFigures` (only with ``figures_every_n_epochs``, drawing the
    spectrum if ``eigenvalues``), in ``parts``, and calls each in turn from every hook; see those classes
    for what is logged and drawn. Its ``rate_history``, ``initial_eigenvalues``, ``figure_paths`` and
    ``last_snapshot`` are those of its parts, and its checkpoint state is theirs together. With the figures
    off, a training step that logs no rates costs one comparison and one modulo
    (``bench/monitor_overhead.py`` measures it against no callback at all).

    Args:
        every_n_steps: log firing rates every this many training steps.
        eigenvalues: log the eigenvalue statistics (and draw the spectrum figure).
        conservative_tol: ``|lambda|`` up to this counts as conservative.
        figures_every_n_epochs: make the figures every this many epochs; None (default) for never.
        figure_neurons: neurons per layer in the raster and membrane figures.

    >>> [type(part).__name__ for part in SpikeMonitor(every_n_steps=10).parts]
    ['FiringRateMonitor', 'EigenvalueMonitor']
    """

    def __init__(
        self,
        every_n_steps: int = 50,
        eigenvalues: bool = True,
        conservative_tol: float = 1e-2,
        figures_every_n_epochs: int | None = None,
        figure_neurons: int = 8,
    ) -> None:
        if figures_every_n_epochs is not None and figures_every_n_epochs < 1:
            raise ValueError(f"expected figures_every_n_epochs >= 1 or None, got {figures_every_n_epochs}")
        if figure_neurons < 1:
            raise ValueError(f"expected figure_neurons >= 1, got {figure_neurons}")
        self.rate_monitor = FiringRateMonitor(every_n_steps)
        self.eigenvalue_monitor = EigenvalueMonitor(conservative_tol) if eigenvalues else None
        self.figures = None
        if figures_every_n_epochs is not None:
            self.figures = SpikeFigures(figures_every_n_epochs, figure_neurons, spectrum=eigenvalues, rates=self.rate_monitor)
        self.parts: list[L.Callback] = [p for p in (self.rate_monitor, self.eigenvalue_monitor, self.figures) if p is not None]

    @property
    def rate_history(self) -> dict[str, list[tuple[int, float]]]:
        return self.rate_monitor.rate_history

    @rate_history.setter
    def rate_history(self, value: dict[str, list[tuple[int, float]]]) -> None:
        self.rate_monitor.rate_history = value

    @property
    def initial_eigenvalues(self) -> dict[str, list[float]]:
        return self.figures.initial_eigenvalues if self.figures is not None else {}

    @initial_eigenvalues.setter
    def initial_eigenvalues(self, value: dict[str, list[float]]) -> None:
        if self.figures is None:
            raise AttributeError("a SpikeMonitor without figures keeps no initial eigenvalues")
        self.figures.initial_eigenvalues = value

    @property
    def figure_paths(self) -> list[str]:
        return self.figures.figure_paths if self.figures is not None else []

    @property
    def last_snapshot(self) -> dict | None:
        return self.figures.last_snapshot if self.figures is not None else None

    def setup(self, trainer, pl_module, stage):
        for part in self.parts:
            part.setup(trainer, pl_module, stage)

    def on_train_start(self, trainer, pl_module):
        for part in self.parts:
            part.on_train_start(trainer, pl_module)

    def on_train_epoch_start(self, trainer, pl_module):
        for part in self.parts:
            part.on_train_epoch_start(trainer, pl_module)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        for part in self.parts:
            part.on_train_batch_start(trainer, pl_module, batch, batch_idx)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        for part in self.parts:
            part.on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)

    def on_train_epoch_end(self, trainer, pl_module):
        for part in self.parts:
            part.on_train_epoch_end(trainer, pl_module)

    def state_dict(self) -> dict:
        state = {}
        for part in self.parts:
            state.update(part.state_dict())
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        for part in self.parts:
            part.load_state_dict(state_dict)


def _recorders(trainer: L.Trainer) -> list[_Recorder]:
    """The Trainer's recorders in the order Lightning calls them, a SpikeMonitor's parts in its place."""
    found = []
    for callback in trainer.callbacks:
        parts = callback.parts if isinstance(callback, SpikeMonitor) else [callback]
        found += [part for part in parts if isinstance(part, _Recorder)]
    return found


def first_sample_traces(records: dict[str, Recording], count: int) -> dict:
    """What the raster and membrane figures draw, from :func:`bsnn_lightning.recordings` of a batch:

    - ``spikes``: per layer whose last call took a whole sequence, the spike trains ``[T, count]`` of the
      batch's first sample, for ``count`` neurons picked across the range of activity
      (:func:`~bsnn_lightning.analysis.pick_neurons`);
    - ``membrane``: for those layers that recorded it, the same neurons' membrane potentials ``[T, count]``
      after each step's reset;
    - ``thresholds``: per layer in ``membrane``, the firing threshold: a float, a ``[count]`` array when it
      differs between the neurons shown, or None when the neuron does not say.

    >>> spikes = torch.zeros(4, 2, 3)  # [T, N, neurons]; the first sample's neuron 1 fires at t = 2
    >>> spikes[2, 0, 1] = 1.0
    >>> traces = first_sample_traces({"lif": Recording(spikes, None, 1.0, sequence=True)}, count=1)
    >>> traces["spikes"]["lif"].ravel().tolist(), traces["membrane"]
    ([0.0, 0.0, 1.0, 0.0], {})
    """
    spikes, membrane, thresholds = {}, {}, {}
    for name, record in records.items():
        if not record.sequence:
            continue  # a neuron called once per time step: its last call holds one step, no train to draw
        train = record.spikes[:, 0].flatten(1).float()
        chosen = pick_neurons(train.sum(0), count)
        spikes[name] = train[:, chosen].cpu().numpy()
        if record.membrane is not None:
            membrane[name] = record.membrane[:, 0].flatten(1)[:, chosen].float().cpu().numpy()
            thresholds[name] = _thresholds_of(record.threshold, record.spikes.shape[2:], chosen)
    return {"spikes": spikes, "membrane": membrane, "thresholds": thresholds}


def _thresholds_of(threshold, sample_shape: torch.Size, chosen: torch.Tensor) -> float | np.ndarray | None:
    """The threshold of the neurons ``chosen`` (flat indices into a sample of ``sample_shape``)."""
    if threshold is None:
        return None
    threshold = torch.as_tensor(threshold).detach().float().cpu()
    if threshold.numel() == 1:
        return float(threshold)
    per_neuron = torch.broadcast_to(threshold, sample_shape).flatten()[chosen.cpu()]
    return float(per_neuron[0]) if bool((per_neuron == per_neuron[0]).all()) else per_neuron.numpy()


def log_figure(trainer: L.Trainer, tag: str, fig, epoch: int) -> list[str]:
    """Send one matplotlib figure to every logger of ``trainer`` (see :class:`SpikeFigures`); returns the
    PNG paths written.

    >>> import tempfile, matplotlib.pyplot as plt
    >>> folder = tempfile.mkdtemp()
    >>> trainer = L.Trainer(logger=False, default_root_dir=folder, enable_progress_bar=False)
    >>> paths = log_figure(trainer, "spikes/raster", plt.figure(), epoch=3)  # no logger: a PNG in the root
    >>> [path[len(folder):] for path in paths]
    ['/figures/spikes_raster_epoch3.png']
    """
    written = []
    targets = [lg for lg in trainer.loggers] if trainer.loggers else [None]
    for logger in targets:
        experiment = getattr(logger, "experiment", None) if logger is not None else None
        if logger is not None and hasattr(experiment, "add_image"):
            experiment.add_image(tag, rgb_array(fig), global_step=trainer.global_step, dataformats="HWC")
        elif logger is not None and callable(getattr(logger, "log_image", None)):
            logger.log_image(key=tag, images=[rgb_array(fig)], step=trainer.global_step)
        else:
            folder = getattr(logger, "log_dir", None) if logger is not None else None
            folder = Path(folder or trainer.default_root_dir) / "figures"
            written.append(str(save_png(fig, folder / f"{tag.replace('/', '_')}_epoch{epoch}.png")))
    return written


def _log_histogram(trainer, tag, values, step):
    for logger in trainer.loggers:
        experiment = getattr(logger, "experiment", None)
        if hasattr(experiment, "add_histogram"):
            experiment.add_histogram(tag, values, global_step=step)
