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

The methods' parameters (IMP, eigenvalues, coupling basis) and everything about them (creation from one
sample's shape, given at construction with ``shape=``, found by a dry run with
:func:`bsnn_lightning.convert.materialize`, or taken from a state dict being loaded; monitoring; the engine
call) belong to :class:`~bsnn_lightning.neuron_params.MethodNeuron`, shared with converted library neurons.
A neuron module here adds only its own quantities (threshold, tau, reset, surrogate) and its state.
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn

from .engine import Dynamics, SpikingJellyLIF, Surrogate, checks
from .neuron_params import (
    BIFURCATION_OPTIONS,
    STEP_MODES,
    MethodNeuron,
    MethodSettings,
    settings_keywords,
)

#: the settings every neuron of this package takes (the bifurcation options are BifurcationNeuron's own)
NEURON_SETTINGS = ("imp", "imp_init", "backend", "state_dtype", "check_finite", "step_mode")
#: where a neuron's default differs from MethodSettings': a neuron of this package takes whole sequences
NEURON_DEFAULTS = {"step_mode": "m"}


def _setting_attribute(name: str) -> property:
    """Field ``name`` of a neuron's ``bsnn_settings`` as a module attribute: reading gives the field, setting
    replaces the settings by :meth:`~bsnn_lightning.neuron_params.MethodSettings.updated` (which checks the
    value); the field's help is its doc."""

    def get(self):
        return getattr(self.bsnn_settings, name)

    def set_(self, value) -> None:
        self.bsnn_settings = self.bsnn_settings.updated(**{name: value})

    return property(get, set_, doc=next(f.metadata["help"] for f in dataclasses.fields(MethodSettings) if f.name == name))


class EngineNeuron(MethodNeuron, nn.Module):
    """What every neuron of this package shares: threshold, reset, surrogate, state, step mode; the methods'
    parameters come from :class:`~bsnn_lightning.neuron_params.MethodNeuron`, and the settings' keywords and
    defaults from :class:`~bsnn_lightning.neuron_params.MethodSettings`.

    >>> neuron = LIFNeuron(step_mode="s")  # one step [N, ...] per call, the state kept until reset_state()
    >>> [neuron(torch.full((1, 1), 1.5)).item() for _ in range(3)]
    [0.0, 1.0, 0.0]
    >>> neuron.reset_state()
    >>> neuron.v is None
    True
    """

    #: the dynamics a neuron class runs ("lif" or "bifurcation")
    own_dynamics = "lif"

    @settings_keywords(names=NEURON_SETTINGS, defaults=NEURON_DEFAULTS)
    def __init__(
        self,
        *,
        threshold: float = 1.0,
        learn_threshold: bool = False,
        v_reset: float | None = 0.0,
        detach_reset: bool = False,
        surrogate: str | Surrogate = "atan",
        shape: tuple[int, ...] | None = None,
        **settings,
    ) -> None:
        super().__init__()
        if not (math.isfinite(threshold) and threshold > 0):
            raise ValueError(f"expected threshold > 0, got {threshold}")
        if v_reset is not None and not (math.isfinite(v_reset) and v_reset < threshold):
            raise ValueError(
                f"expected v_reset < threshold ({threshold}) or None (soft reset), got {v_reset}: a hard reset to a "
                "potential at or above the threshold fires again at every step"
            )
        settings = {**NEURON_DEFAULTS, **settings}
        if settings["step_mode"] not in STEP_MODES:
            raise ValueError(f"expected step_mode to be one of {list(STEP_MODES)}, got {settings['step_mode']!r}")
        own = NEURON_SETTINGS + (BIFURCATION_OPTIONS if self.own_dynamics == "bifurcation" else ())
        unknown = sorted(set(settings) - set(own))
        if unknown:
            raise TypeError(f"{type(self).__name__} got unexpected settings {unknown}; expected some of {list(own)}")
        threshold_t = torch.tensor(float(threshold))
        if learn_threshold:
            self.threshold = nn.Parameter(threshold_t)
        else:
            self.register_buffer("threshold", threshold_t)
        self.v_reset = v_reset
        self.detach_reset = detach_reset
        self.surrogate = Surrogate.parse(surrogate)
        self.v: torch.Tensor | None = None  # state; not a buffer, so never saved or broadcast
        self.bsnn_setup(MethodSettings(dynamics=self.own_dynamics, **settings), None if shape is None else tuple(shape))

    # --- the engine call ---------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        single = self.step_mode == "s"
        seq = x.unsqueeze(0) if single else x
        if seq.dim() < 2:
            raise ValueError(
                f"{type(self).__name__} in step mode {self.step_mode!r} expected "
                f"{'[N, ...]' if single else '[T, N, ...]'}, got shape {list(x.shape)}"
            )
        if self.v is None:
            out = self.bsnn_run(seq, self.resting_state(), fresh=True, single=single)
        else:
            if tuple(self.v.shape) != tuple(seq.shape[1:]):
                raise ValueError(
                    f"{type(self).__name__} holds a state of shape {list(self.v.shape)} from the previous call, "
                    f"but got input of shape {list(x.shape)}: call reset_state() (or "
                    "bsnn_lightning.reset_states(model)) between sequences, or check that x is [T, N, ...]"
                )
            out = self.bsnn_run(seq, self.v, fresh=False, single=single)
        self.v = out.v
        return out.spikes[0] if single else out.spikes

    def resting_state(self) -> float:
        """The state a sequence starts from before the IMP is added: ``v_reset``, or 0 for a soft reset."""
        return 0.0 if self.v_reset is None else float(self.v_reset)

    def initial_state(self, seq: torch.Tensor):
        """The state the next call on ``seq`` [T, N, ...] starts from: the carried state, or v_reset (+ IMP)."""
        return self.v if self.v is not None else self.bsnn_initial_state(self.resting_state())

    def _guard_learned(self, name: str, value: torch.Tensor, bad: torch.Tensor, requirement: str) -> None:
        """Check a learnable quantity against its range (``bad``: a 0-d bool tensor, True where it left it)
        without stalling the device: at once on the CPU, as a deferred flag elsewhere (``check_finite``'s mode,
        :mod:`bsnn_lightning.engine.checks`; read once per logging interval). Left out of a traced graph."""
        mode = checks.resolve(self.bsnn_settings.check_finite, value.device)
        if mode == "off" or torch.compiler.is_compiling():
            return
        what = f"the learnable {name} of {type(self).__name__} ({requirement})"
        with checks.unobserved():
            if mode == "defer":
                checks.defer(what, bad)
            elif bool(bad):
                raise ValueError(f"{what} left its range: {name} = {value.detach().flatten().tolist()}")

    def reset_state(self) -> None:
        """Forget the state: the next call starts a new sequence from v_reset (+ IMP)."""
        self.v = None

    def detach_state(self) -> None:
        """Keep the state but cut its graph (truncated back-propagation through time)."""
        if self.v is not None:
            self.v = self.v.detach()

    # --- what the component asks of a neuron class -------------------------------------------------------
    def _bsnn_reset(self):
        return self.v_reset, self.detach_reset

    def _bsnn_threshold(self, sample_shape=None):
        threshold = self.threshold
        if isinstance(threshold, nn.Parameter):
            self._guard_learned("threshold", threshold, ~(threshold.detach() > 0), "it must stay > 0")
        return threshold

    def _bsnn_surrogate(self) -> Surrogate:
        return self.surrogate

    # --- settings as module attributes -------------------------------------------------------------------
    backend = _setting_attribute("backend")
    step_mode = _setting_attribute("step_mode")

    @property
    def sample_shape(self) -> tuple[int, ...] | None:
        """The shape of one sample the neuron was built for (None until its shaped parameters exist)."""
        return self.bsnn_sample_shape

    def materialize(self, sample_shape: tuple[int, ...]) -> None:
        """Create the parameters whose shape depends on one sample's shape ``[C, ...]``."""
        self.bsnn_materialize(sample_shape)

    def extra_repr(self) -> str:
        return (
            f"threshold={_scalar(self.threshold)}, v_reset={self.v_reset}, "
            f"surrogate={self.surrogate.name}:{self.surrogate.alpha:g}, {self.bsnn_extra_repr()}"
        )


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
        if not (math.isfinite(tau) and tau > 1):
            raise ValueError(f"expected tau > 1, got {tau}: {_TAU_RANGE}")
        super().__init__(**kwargs)
        tau_t = torch.tensor(float(tau)).to(self.threshold.device)
        if learn_tau:
            self.tau = nn.Parameter(tau_t)
        else:
            self.register_buffer("tau", tau_t)
        self.decay_input = decay_input

    def _bsnn_lif(self, sample_shape) -> tuple[Dynamics, dict]:
        key = ("lif", self.surrogate, self.v_reset, self.detach_reset, self.decay_input)
        dynamics = self.bsnn_cached(
            key,
            lambda: SpikingJellyLIF(
                surrogate=self.surrogate, v_reset=self.v_reset, detach_reset=self.detach_reset, decay_input=self.decay_input
            ),
        )
        tau = self.tau
        if isinstance(tau, nn.Parameter):
            self._guard_learned("tau", tau, ~(tau.detach() > 1), f"it must stay > 1: {_TAU_RANGE}")
        return dynamics, {"tau": tau, "threshold": self._bsnn_threshold()}

    def extra_repr(self) -> str:
        return f"tau={_scalar(self.tau)}, " + super().extra_repr()


_TAU_RANGE = (
    "the membrane keeps 1 - 1/tau of its distance from v_reset per step, which is a leak only for tau > 1 (tau = 1 "
    "forgets the membrane at every step, tau < 1 overshoots the input and fires below the threshold, tau < 1/2 "
    "oscillates with a growing amplitude); SpikingJelly's LIFNode refuses tau <= 1 likewise"
)


class BifurcationNeuron(EngineNeuron):
    """Spiking neuron with bifurcation dynamics: learnable, diverse eigenvalues of the membrane dynamics.

    diagonal: ``h_t = (1 + lambda) * v_{t-1} + x_t``, one eigenvalue per channel or per neuron;
    coupled:  ``h_t = Q diag(1 + lambda) Q^T v_{t-1} + x_t`` across channels, ``Q = exp(S - S^T)``
    orthogonal and learnable, so the eigenvalues stay explicit.

    Eigenvalues start spread evenly over ``eigen_init`` (in random order over neurons) and are clamped
    to ``bounds`` in the forward pass. Default reset: soft (``v_reset=None``).

    >>> neuron = BifurcationNeuron(shape=(1,), eigen_init=(0.0, 0.0))  # conservative: h_t = v_{t-1} + x_t
    >>> neuron(torch.full((3, 1, 1), 0.4)).flatten().tolist()
    [0.0, 0.0, 1.0]
    """

    own_dynamics = "bifurcation"

    @settings_keywords(names=BIFURCATION_OPTIONS, defaults={}, keep_var_keyword=True)
    def __init__(self, *, v_reset: float | None = None, **kwargs) -> None:
        super().__init__(v_reset=v_reset, **kwargs)

    def _bsnn_lif(self, sample_shape):
        raise ValueError(f"{type(self).__name__} has no LIF dynamics (its time constant is not defined)")


def _scalar(value: torch.Tensor) -> str:
    """A 0-d parameter as ``repr`` shows it; on the meta device (shapes only) there is no value to show."""
    return "meta" if value.is_meta else f"{float(value):g}"
