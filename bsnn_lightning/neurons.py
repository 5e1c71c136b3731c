"""Spiking neuron modules that run on the multistep engine.

A neuron module holds what the engine does not: the parameters (threshold, tau, eigenvalues, the initial
membrane potential), the state between calls, the backend choice and the step mode. Its forward is one
call of :func:`bsnn_lightning.engine.multistep`.

- :class:`LIFNeuron`: leaky integrate-and-fire with SpikingJelly's equations (see
  :class:`~bsnn_lightning.engine.SpikingJellyLIF`).
- :class:`BifurcationNeuron`: bifurcation dynamics (Zhang, Zhang & Zhou, JMLR 2021), diagonal or coupled
  (see :class:`~bsnn_lightning.engine.Bifurcation` and ``docs/methods.md``).

Both take an optional learnable initial membrane potential (IMP; Shen et al., NeurIPS 2024):
``v_0 = v_reset + imp``, applied at the start of each sequence only (after :meth:`reset_state`), per neuron
(shape of one sample), per channel, or per layer, initialised U(0.4, 0.6) x threshold.

Step modes: ``"m"`` takes a whole sequence ``[T, N, ...]`` (one engine call: the fast path); ``"s"`` takes
one step ``[N, ...]`` from a user's own time loop and keeps the state until :meth:`reset_state`. Either way
the state persists across calls until reset, which allows truncated back-propagation through time; a
sequence of a different batch size without a reset in between is an error, not a silent restart.

Parameters whose shape depends on the input (per-neuron or per-channel IMP and eigenvalues) are created by
:meth:`materialize` from the shape of one sample, either given at construction (``shape=``), found by a
dry run (:func:`bsnn_lightning.convert.materialize`), or taken from a state dict being loaded.
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import nn

from .engine import Bifurcation, Dynamics, SpikingJellyLIF, Surrogate, multistep
from .neuron_params import (
    GRANULARITIES,
    IMP_MODES,
    coupling_matrix,
    granular_shape,
    initial_eigenvalues,
    initial_imp,
    mode_of,
)

STEP_MODES = ("m", "s")


class EngineNeuron(nn.Module):
    """What every engine-backed neuron shares: state, IMP, backend, step mode, firing-rate monitoring."""

    #: attribute names of parameters created by :meth:`materialize` (shape depends on the input)
    _shaped_params: tuple[str, ...] = ("imp",)

    def __init__(
        self,
        *,
        threshold: float = 1.0,
        learn_threshold: bool = False,
        v_reset: float | None = 0.0,
        detach_reset: bool = False,
        surrogate: str | Surrogate = "atan",
        imp: str | None = None,
        imp_init: tuple[float, float] = (0.4, 0.6),
        backend: str = "auto",
        step_mode: str = "m",
        shape: tuple[int, ...] | None = None,
    ) -> None:
        super().__init__()
        _check_choice("step_mode", step_mode, STEP_MODES)
        if imp is not None:
            _check_choice("imp", imp, IMP_MODES)
        if not (math.isfinite(threshold) and threshold > 0):
            raise ValueError(f"expected threshold > 0, got {threshold}")
        lo, hi = imp_init
        if not lo <= hi:
            raise ValueError(f"expected imp_init (low, high) with low <= high, got {imp_init}")
        threshold_t = torch.tensor(float(threshold))
        if learn_threshold:
            self.threshold = nn.Parameter(threshold_t)
        else:
            self.register_buffer("threshold", threshold_t)
        self.v_reset = v_reset
        self.detach_reset = detach_reset
        self.surrogate = Surrogate.parse(surrogate)
        self.imp_mode = imp
        self.imp_init = (float(lo), float(hi))
        self.imp: nn.Parameter | None = None
        self.backend = backend
        self.step_mode = step_mode
        self.sample_shape: tuple[int, ...] | None = None
        self.v: torch.Tensor | None = None  # state; not a buffer, so never saved or broadcast
        self.monitor = False
        self.last_spikes: torch.Tensor | None = None
        if shape is not None:
            self.materialize(tuple(shape))

    # --- the engine call ---------------------------------------------------------------------------------
    @property
    def dynamics(self) -> Dynamics:
        raise NotImplementedError

    def engine_params(self) -> dict:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seq = x.unsqueeze(0) if self.step_mode == "s" else x
        if seq.dim() < 2:
            raise ValueError(
                f"{type(self).__name__} in step mode {self.step_mode!r} expected "
                f"{'[N, ...]' if self.step_mode == 's' else '[T, N, ...]'}, got shape {list(x.shape)}"
            )
        self._ensure_materialized(tuple(seq.shape[2:]))
        out = multistep(seq, self.dynamics, self.engine_params(), self.initial_state(seq), backend=self.backend)
        self.v = out.v
        spikes = out.spikes[0] if self.step_mode == "s" else out.spikes
        if self.monitor:
            self.last_spikes = spikes.detach()
        return spikes

    def initial_state(self, seq: torch.Tensor):
        """The state the next call on ``seq`` [T, N, ...] starts from: the carried state, or v_reset (+ IMP)."""
        if self.v is not None:
            if tuple(self.v.shape) != tuple(seq.shape[1:]):
                raise ValueError(
                    f"{type(self).__name__} holds a state of shape {list(self.v.shape)} from the previous call, "
                    f"but got input of shape {list(seq.shape)}: call reset_state() (or "
                    "bsnn_lightning.reset_states(model)) between sequences, or check that x is [T, N, ...]"
                )
            return self.v
        rest = 0.0 if self.v_reset is None else float(self.v_reset)
        if self.imp is None:
            return rest
        return self.imp + rest if rest else self.imp

    def reset_state(self) -> None:
        """Forget the state: the next call starts a new sequence from v_reset (+ IMP)."""
        self.v = None

    def detach_state(self) -> None:
        """Keep the state but cut its graph (truncated back-propagation through time)."""
        if self.v is not None:
            self.v = self.v.detach()

    # --- shape-dependent parameters ------------------------------------------------------------------
    @property
    def is_materialized(self) -> bool:
        return self.sample_shape is not None

    def set_imp(self, mode: str | None) -> None:
        """Add (or remove, with None) the learnable initial membrane potential."""
        if mode is not None:
            _check_choice("imp", mode, IMP_MODES)
        self.imp_mode = mode
        self.imp = None
        if mode is not None and (mode == "layer" or self.sample_shape is not None):
            self._make_imp()

    def materialize(self, sample_shape: tuple[int, ...]) -> None:
        """Create the parameters whose shape depends on one sample's shape ``[C, ...]``."""
        sample_shape = tuple(int(s) for s in sample_shape)
        if self.sample_shape is not None and self.sample_shape != sample_shape:
            raise ValueError(
                f"{type(self).__name__} was built for samples of shape {list(self.sample_shape)}, "
                f"got {list(sample_shape)}"
            )
        if self.sample_shape is None:
            self.sample_shape = sample_shape
            if self.imp_mode is not None and self.imp is None:
                self._make_imp()
            self._materialize_dynamics()

    def _materialize_dynamics(self) -> None:
        """Subclasses create their shape-dependent dynamics parameters here."""

    def _ensure_materialized(self, sample_shape):
        if self.sample_shape is None:
            before = len(list(self.parameters()))
            self.materialize(sample_shape)
            if len(list(self.parameters())) > before and self.training and torch.is_grad_enabled():
                warnings.warn(
                    f"{type(self).__name__} created its shape-dependent parameters at its first forward; an "
                    "optimizer built before this call does not hold them. Build optimizers after a first forward, "
                    "pass shape=..., or use bsnn_lightning.materialize(model, example_input).",
                    stacklevel=3,
                )
        elif self.sample_shape != sample_shape:
            raise ValueError(
                f"{type(self).__name__} was built for samples of shape {list(self.sample_shape)}, "
                f"got input with samples of shape {list(sample_shape)} (is x time-major [T, N, ...]?)"
            )

    def _make_imp(self) -> None:
        shape = granular_shape(self.imp_mode, self.sample_shape, type(self).__name__)
        self.imp = nn.Parameter(initial_imp(shape, self.imp_init, float(self.threshold), self.threshold.device))

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):
        # a checkpoint of a materialized neuron loads into a fresh one: take the shapes from the checkpoint
        imp_key = prefix + "imp"
        if imp_key in state_dict and self.imp is None:
            stored = state_dict[imp_key]
            self.imp_mode = self.imp_mode or mode_of(tuple(stored.shape))
            self.imp = nn.Parameter(torch.empty_like(stored))
        self._load_shaped_dynamics(state_dict, prefix)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs)

    def _load_shaped_dynamics(self, state_dict, prefix) -> None:
        """Subclasses create shape-dependent dynamics parameters found in a state dict."""

    def extra_repr(self) -> str:
        parts = [f"threshold={float(self.threshold):g}", f"v_reset={self.v_reset}", f"surrogate={self.surrogate.name}:{self.surrogate.alpha:g}"]
        if self.imp_mode:
            parts.append(f"imp={self.imp_mode}")
        parts += [f"backend={self.backend}", f"step_mode={self.step_mode}"]
        return ", ".join(parts)


class LIFNeuron(EngineNeuron):
    """Leaky integrate-and-fire neuron, SpikingJelly's equations:

    ``h_t = v_{t-1} + (x_t - (v_{t-1} - v_reset)) / tau`` (``decay_input=True``), spike when
    ``h_t >= threshold``, then hard reset to ``v_reset`` or, with ``v_reset=None``, soft reset
    ``v_t = h_t - threshold``.

    >>> lif = LIFNeuron(tau=2.0)
    >>> lif(torch.tensor([[[1.5]], [[0.0]], [[2.5]]])).flatten().tolist()
    [0.0, 0.0, 1.0]
    """

    def __init__(self, tau: float = 2.0, *, decay_input: bool = True, learn_tau: bool = False, **kwargs) -> None:
        if not (math.isfinite(tau) and tau > 0):
            raise ValueError(f"expected tau > 0, got {tau}")
        super().__init__(**kwargs)
        tau_t = torch.tensor(float(tau))
        if learn_tau:
            self.tau = nn.Parameter(tau_t)
        else:
            self.register_buffer("tau", tau_t)
        self.decay_input = decay_input

    @property
    def dynamics(self) -> Dynamics:
        return SpikingJellyLIF(
            surrogate=self.surrogate, v_reset=self.v_reset, detach_reset=self.detach_reset, decay_input=self.decay_input
        )

    def engine_params(self) -> dict:
        return {"tau": self.tau, "threshold": self.threshold}

    def extra_repr(self) -> str:
        return f"tau={float(self.tau):g}, " + super().extra_repr()


class BifurcationNeuron(EngineNeuron):
    """Spiking neuron with bifurcation dynamics: learnable, diverse eigenvalues of the membrane dynamics.

    diagonal: ``h_t = (1 + lambda) * v_{t-1} + x_t``, one eigenvalue per channel or per neuron;
    coupled:  ``h_t = Q diag(1 + lambda) Q^T v_{t-1} + x_t`` across channels, ``Q = exp(S - S^T)``
    orthogonal and learnable, so the eigenvalues stay explicit.

    Eigenvalues start spread evenly over ``eigen_init`` (in random order over neurons) and are clamped
    to ``bounds`` in the forward pass. Default reset: soft (``v_reset=None``).
    """

    _shaped_params = ("imp", "eigenvalues", "basis")

    def __init__(
        self,
        *,
        structure: str = "diagonal",
        granularity: str = "channel",
        eigen_init: tuple[float, float] = (-0.8, 0.0),
        bounds: tuple[float, float] = (-1.0, 0.2),
        v_reset: float | None = None,
        **kwargs,
    ) -> None:
        _check_choice("structure", structure, ("diagonal", "coupled"))
        _check_choice("granularity", granularity, GRANULARITIES)
        if structure == "coupled" and granularity != "channel":
            raise ValueError("coupled bifurcation dynamics couple channels: expected granularity='channel'")
        lo, hi = bounds
        if not (lo <= eigen_init[0] <= eigen_init[1] <= hi):
            raise ValueError(f"expected eigen_init {eigen_init} inside bounds {bounds} (lo <= low <= high <= hi)")
        self.structure = structure
        self.granularity = granularity
        self.eigen_init = (float(eigen_init[0]), float(eigen_init[1]))
        self.bounds = (float(lo), float(hi))
        self.eigenvalues: nn.Parameter | None = None
        self.basis: nn.Parameter | None = None
        super().__init__(v_reset=v_reset, **kwargs)

    @property
    def dynamics(self) -> Dynamics:
        return Bifurcation(
            surrogate=self.surrogate,
            v_reset=self.v_reset,
            detach_reset=self.detach_reset,
            structure=self.structure,
            bounds=self.bounds,
        )

    def engine_params(self) -> dict:
        if self.structure == "diagonal":
            return {"eigenvalues": self.eigenvalues, "threshold": self.threshold}
        return {"coupling": self.coupling_matrix(), "threshold": self.threshold}

    def coupling_matrix(self) -> torch.Tensor:
        """``Q diag(1 + clamp(lambda)) Q^T`` with ``Q = matrix_exp(S - S^T)``."""
        return coupling_matrix(self.basis, self.eigenvalues, self.bounds)

    def effective_eigenvalues(self) -> torch.Tensor:
        """The eigenvalues the forward pass uses (clamped to ``bounds``), flattened."""
        return self.eigenvalues.detach().clamp(*self.bounds).flatten()

    def _materialize_dynamics(self) -> None:
        shape = granular_shape(self.granularity, self.sample_shape, type(self).__name__)
        self.eigenvalues = nn.Parameter(initial_eigenvalues(shape, self.eigen_init, self.threshold.device))
        if self.structure == "coupled":
            count = math.prod(shape)
            self.basis = nn.Parameter(torch.zeros(count, count, device=self.threshold.device))

    def _load_shaped_dynamics(self, state_dict, prefix) -> None:
        for name in ("eigenvalues", "basis"):
            key = prefix + name
            if key in state_dict and getattr(self, name) is None:
                setattr(self, name, nn.Parameter(torch.empty_like(state_dict[key])))
        if self.sample_shape is None and self.eigenvalues is not None and self.granularity == "neuron":
            self.sample_shape = tuple(self.eigenvalues.shape)

    def _ensure_materialized(self, sample_shape):
        if self.eigenvalues is not None and self.sample_shape is None:
            self.sample_shape = sample_shape  # loaded from a checkpoint; shapes checked by the engine
        super()._ensure_materialized(sample_shape)

    def extra_repr(self) -> str:
        return f"structure={self.structure}, granularity={self.granularity}, bounds={self.bounds}, " + super().extra_repr()


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"expected {name} to be one of {list(choices)}, got {value!r}")
