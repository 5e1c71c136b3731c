"""The methods' neuron parameters, owned by one component for every neuron that runs on the engine.

This package's own neurons (:mod:`bsnn_lightning.neurons`) and converted snnTorch / SpikingJelly neurons
(:mod:`bsnn_lightning.adapters`) both inherit :class:`MethodNeuron`. It owns what the methods add to a neuron:

- the learnable initial membrane potential (IMP; Shen et al., NeurIPS 2024), attribute ``imp``: per neuron
  (the shape of one sample), per channel, or per layer; initialised U(low, high) x threshold, by default
  U(0.4, 0.6); a new sequence starts from the neuron's resting state plus the IMP;
- the eigenvalues of bifurcation dynamics (Zhang, Zhang & Zhou, JMLR 2021), attribute ``eigenvalues``: per
  channel or per neuron, spread evenly over ``eigen_init`` and shuffled over neurons, so a layer starts with
  a range of time scales, clamped to ``bounds`` in the forward pass;
- for coupled dynamics, the skew-symmetric generator ``basis`` of the orthogonal ``Q = exp(S - S^T)``.

:class:`MethodSettings` holds the choices (checked once, when made); :class:`MethodNeuron` creates the
parameters from one sample's shape (:meth:`MethodNeuron.bsnn_materialize`), re-creates them from a state dict
being loaded, warns when they appear after an optimizer may have been built, builds (and caches) the
engine's dynamics, runs the engine (:meth:`MethodNeuron.bsnn_run`) and records spikes and membranes for
monitors. A neuron class supplies four small hooks: its own LIF dynamics, its reset, its threshold and its
surrogate.
"""

from __future__ import annotations

import inspect
import math
import typing
from dataclasses import dataclass, field, fields, replace
from typing import NamedTuple

import torch
from torch import nn

from .engine import (
    CoupledBifurcation,
    DiagonalBifurcation,
    Dynamics,
    Surrogate,
    available_backends,
    multistep,
)
from .engine.api import MultistepOutput
from .engine.checks import MODES as CHECK_MODES
from .user_warnings import warn_user

DYNAMICS = ("lif", "bifurcation")
IMP_MODES = ("neuron", "channel", "layer")
GRANULARITIES = ("neuron", "channel")
STRUCTURES = ("diagonal", "coupled")
STEP_MODES = ("s", "m")
STATE_DTYPES = ("native", "float32")
#: the options of ``convert`` that configure bifurcation dynamics (fields of :class:`MethodSettings`)
BIFURCATION_OPTIONS = ("structure", "granularity", "eigen_init", "bounds")
#: the parameters the methods add to a neuron, under these attribute (and state-dict) names
ADDED_PARAMETERS = ("imp", "eigenvalues", "basis")
#: the state-dict entry (no parameter, no buffer) that keeps a bifurcation neuron's eigenvalue bounds
BOUNDS_KEY = "eigenvalue_bounds"


def _setting(default, help: str):
    """A field of :class:`MethodSettings`: its default and the help that ``convert``, ``ConvertNeurons`` and the
    command line show for it."""
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class MethodSettings:
    """What a neuron runs: its dynamics, IMP, bifurcation options, backend and (for neurons of a library
    without step modes) step mode. The one place these settings and their defaults are declared: ``convert``,
    ``ConvertNeurons`` and the neurons take their keywords, defaults and help from these fields (see
    :func:`settings_keywords`). Checked when made; :meth:`updated` makes a changed copy.

    >>> settings = MethodSettings(dynamics="bifurcation")
    >>> settings.bounds, settings.updated(imp="channel").describe()
    ((-1.0, 0.2), 'dynamics=bifurcation, structure=diagonal, granularity=channel, bounds=(-1.0, 0.2), imp=channel, backend=auto')
    """

    dynamics: str = _setting("lif", '"lif" (the neuron\'s own LIF equations) or "bifurcation" (BSNN dynamics)')
    imp: str | None = _setting(
        None, 'a learnable initial membrane potential "neuron", "channel" or "layer" wide, or none'
    )
    imp_init: tuple[float, float] = _setting(
        (0.4, 0.6), "the range (low, high) a new IMP is drawn from, times the threshold; a learned IMP keeps its values"
    )
    structure: str = _setting(
        "diagonal", 'bifurcation dynamics: "diagonal" (one eigenvalue per mode) or "coupled" (across channels)'
    )
    granularity: str = _setting("channel", 'bifurcation dynamics: eigenvalues per "channel" or per "neuron"')
    eigen_init: tuple[float, float] = _setting(
        (-0.8, 0.0), "bifurcation dynamics: the range (low, high) new eigenvalues are spread evenly over"
    )
    bounds: tuple[float, float] = _setting(
        (-1.0, 0.2), "bifurcation dynamics: the range (lo, hi) the eigenvalues are clamped to, -1 <= lo < hi"
    )
    backend: str = _setting(
        "auto",
        'who runs the neuron loop: "torch" (the reference engine), "triton" (fused kernels, CUDA), "cpu" (the time '
        'loop compiled into one pass over memory, CPU), another registered backend, or "auto" ("triton" on CUDA, '
        '"cpu" for large CPU calls, else "torch")',
    )
    state_dtype: str = _setting(
        "native",
        'the precision of the membrane: "native" keeps it where the neuron\'s own code would (the input\'s dtype '
        "promoted with its tensor parameters': float32 for this package's and snnTorch's neurons, the input's "
        "16-bit dtype for SpikingJelly's LIF and IF under mixed precision), so converted neurons compute what the "
        'library computes; "float32" always keeps it in float32 (at least), a departure from a library that keeps '
        "it in 16 bits, traded for precision and the fused float32 Triton kernels",
    )
    check_finite: str = _setting(
        "auto",
        'the engine\'s NaN/Inf check of the state and parameters after every call: "auto" (immediate on the CPU, '
        'deferred on the device elsewhere: no host synchronisation in a training step), "sync", "defer" or "off" '
        "(see bsnn_lightning.engine.checks)",
    )
    step_mode: str | None = _setting(
        None,
        '"s" (one step per call) or "m" (a sequence [T, N, ...] per call); for neurons whose library has no step '
        "mode of its own (this package's and snnTorch's) it is a setting, for SpikingJelly's the library's own",
    )

    def __post_init__(self) -> None:
        for name in ("imp_init", "eigen_init", "bounds"):
            value = getattr(self, name)
            if not (isinstance(value, (tuple, list)) and len(value) == 2):
                raise ValueError(f"expected {name} as a pair (low, high), got {value!r}")
            object.__setattr__(self, name, (float(value[0]), float(value[1])))
        _check_choice("dynamics", self.dynamics, DYNAMICS)
        if self.imp is not None:
            _check_choice("imp", self.imp, IMP_MODES)
        _check_choice("structure", self.structure, STRUCTURES)
        _check_choice("granularity", self.granularity, GRANULARITIES)
        _check_choice("backend", self.backend, engine_backends())
        _check_choice("state_dtype", self.state_dtype, STATE_DTYPES)
        _check_choice("check_finite", self.check_finite, CHECK_MODES)
        if self.step_mode is not None:
            _check_choice("step_mode", self.step_mode, STEP_MODES)
        if self.structure == "coupled" and self.granularity != "channel":
            raise ValueError("coupled bifurcation dynamics couple channels: expected granularity='channel'")
        if not self.imp_init[0] <= self.imp_init[1]:
            raise ValueError(f"expected imp_init (low, high) with low <= high, got {self.imp_init}")
        lo, hi = self.bounds
        if not (math.isfinite(lo) and math.isfinite(hi) and -1.0 <= lo < hi):
            raise ValueError(
                f"expected eigenvalue bounds (lo, hi) with -1 <= lo < hi, got {self.bounds}: below -1 a mode's factor "
                "1 + lambda is negative and the membrane changes sign at every step"
            )
        if not (lo <= self.eigen_init[0] <= self.eigen_init[1] <= hi):
            raise ValueError(
                f"expected eigen_init {self.eigen_init} inside bounds {self.bounds} (lo <= low <= high <= hi)"
            )

    def updated(self, **changes) -> "MethodSettings":
        """A copy with ``changes`` (field names; ``imp="none"`` removes the IMP), checked."""
        known = {f.name for f in fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown neuron settings {unknown}; expected some of {sorted(known)}")
        if changes.get("imp") == "none":
            changes["imp"] = None
        return replace(self, **changes)

    @property
    def shaped(self) -> bool:
        """True if some parameter's shape depends on the input's (per-neuron or per-channel ones)."""
        return self.imp in ("neuron", "channel") or self.dynamics == "bifurcation"

    def describe(self) -> str:
        parts = [f"dynamics={self.dynamics}"]
        if self.dynamics == "bifurcation":
            parts += [f"structure={self.structure}", f"granularity={self.granularity}", f"bounds={self.bounds}"]
        if self.imp:
            parts.append(f"imp={self.imp}")
        parts.append(f"backend={self.backend}")
        if self.state_dtype != "native":
            parts.append(f"state_dtype={self.state_dtype}")
        if self.check_finite != "auto":
            parts.append(f"check_finite={self.check_finite}")
        if self.step_mode is not None:
            parts.append(f"step_mode={self.step_mode}")
        return ", ".join(parts)


def settings_keywords(
    notes: dict[str, str] | None = None,
    *,
    names: tuple[str, ...] | None = None,
    defaults: dict | None = None,
    keep_var_keyword: bool = False,
):
    """Declare the settings once: a decorator for ``function(..., **changes)`` that shows one keyword-only
    parameter per field of :class:`MethodSettings` (those in ``names``, else all) in the signature where
    ``**changes`` was, and adds an ``Args:`` line per field to the docstring: the field's help plus
    ``notes[name]`` if any. ``help()``, ``inspect.signature`` and jsonargparse (so the ``bsnn`` command's
    LightningCLI) see every setting; the function still receives the ones given in ``**changes``.

    Without ``defaults`` every parameter defaults to None, which leaves that setting as it is (``convert``);
    with ``defaults`` (a dict, possibly empty) each defaults to the field's own default unless ``defaults``
    names another (what the function itself must then apply). ``keep_var_keyword`` keeps ``**changes`` after
    them for keywords that the function hands on.

    >>> @settings_keywords(names=("dynamics", "imp"))
    ... def show(label, **changes):
    ...     return label, changes
    >>> inspect.signature(show)
    <Signature (label, *, dynamics: str | None = None, imp: str | None = None)>
    >>> show("a", imp="channel")
    ('a', {'imp': 'channel'})
    """
    notes = notes or {}
    hints = typing.get_type_hints(MethodSettings)
    chosen = [f for f in fields(MethodSettings) if names is None or f.name in names]
    keyword = inspect.Parameter.KEYWORD_ONLY

    def decorate(function):
        signature = inspect.signature(function)
        parameters = list(signature.parameters.values())
        var_keyword = [p for p in parameters if p.kind is inspect.Parameter.VAR_KEYWORD]
        if not var_keyword:
            raise TypeError(f"settings_keywords expected a function taking **changes, got {function.__qualname__}")
        taken = {p.name for p in parameters}
        if defaults is None:
            settings = [inspect.Parameter(f.name, keyword, default=None, annotation=hints[f.name] | None) for f in chosen]
        else:
            settings = [
                inspect.Parameter(f.name, keyword, default=defaults.get(f.name, f.default), annotation=hints[f.name])
                for f in chosen
            ]
        settings = [p for p in settings if p.name not in taken]
        leading = [p for p in parameters if p.kind in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)]
        var_positional = [p for p in parameters if p.kind is inspect.Parameter.VAR_POSITIONAL]
        trailing = [p for p in parameters if p.kind is keyword]
        rest = var_keyword if keep_var_keyword else []
        function.__signature__ = signature.replace(parameters=leading + var_positional + settings + trailing + rest)
        lines = [f"        {f.name}: {f.metadata['help']}{notes.get(f.name, '')}." for f in chosen]
        which = "None leaves one as it is" if defaults is None else "defaults from there"
        intro = f"Settings (fields of :class:`~bsnn_lightning.neuron_params.MethodSettings`; {which})."
        doc = (function.__doc__ or "").rstrip()
        function.__doc__ = doc + f"\n\n    {intro}\n\n    Args:\n" + "\n".join(lines) + "\n"
        return function

    return decorate


class Recording(NamedTuple):
    """What a monitored neuron kept of its last forward call (see :func:`bsnn_lightning.set_monitoring`).

    >>> Recording(spikes=torch.zeros(4, 2, 3), membrane=None, threshold=1.0, sequence=True).sequence
    True
    """

    spikes: torch.Tensor  #: the call's output, detached: [T, N, ...] for a sequence, [N, ...] for one step
    membrane: torch.Tensor | None  #: [T, N, ...] state after every step (engine neurons, when asked), else None
    threshold: "torch.Tensor | float | None"  #: the firing threshold the call used, if known
    sequence: bool  #: True if the call took a whole sequence [T, N, ...]


#: attribute names kept in a module's ``__dict__`` that are rebuilt on demand (never pickled or copied)
DERIVED_ATTRIBUTES = ("_bsnn_cache", "_bsnn_state_cache", "_bsnn_surrogate_of", "bsnn_monitor", "bsnn_recording")


def record(module: nn.Module, recording: Recording) -> None:
    """Keep ``recording`` on ``module`` for monitors (the one place every kind of neuron records).

    >>> module = nn.Identity()
    >>> record(module, Recording(torch.ones(2, 3), None, 1.0, sequence=False))
    >>> module.bsnn_recording.spikes.shape
    torch.Size([2, 3])
    """
    module.__dict__["bsnn_recording"] = recording


class MethodNeuron:
    """The component (a mixin, first in the MRO of an ``nn.Module`` class) that owns the methods' parameters.

    A neuron class implements four hooks (and may override ``_bsnn_native_state_dtype``):

    - ``_bsnn_lif(sample_shape)`` -> ``(Dynamics, params)``: its own equations, for ``dynamics="lif"``;
    - ``_bsnn_reset()`` -> ``(v_reset, detach_reset)``: its reset, which bifurcation dynamics keep;
    - ``_bsnn_threshold(sample_shape=None)``: its firing threshold (a float or tensor);
    - ``_bsnn_surrogate()`` -> :class:`~bsnn_lightning.engine.Surrogate`.

    and calls :meth:`bsnn_setup` once (after ``nn.Module.__init__``), then :meth:`bsnn_run` in its forward.

    >>> from bsnn_lightning import LIFNeuron
    >>> neuron = LIFNeuron(imp="channel", shape=(3, 5))  # a MethodNeuron: the IMP is its parameter
    >>> isinstance(neuron, MethodNeuron), tuple(neuron.imp.shape), neuron.bsnn_needs_shape()
    (True, (3,), False)
    """

    bsnn_settings: MethodSettings
    bsnn_sample_shape: tuple[int, ...] | None

    # --- hooks a neuron class implements -------------------------------------------------------------------
    def _bsnn_lif(self, sample_shape: tuple[int, ...]) -> tuple[Dynamics, dict]:
        raise NotImplementedError

    def _bsnn_reset(self) -> tuple[float | None, bool]:
        raise NotImplementedError

    def _bsnn_threshold(self, sample_shape: tuple[int, ...] | None = None):
        raise NotImplementedError

    def _bsnn_surrogate(self) -> Surrogate:
        raise NotImplementedError

    def _bsnn_native_state_dtype(self, dtype: torch.dtype, params: dict) -> torch.dtype:
        """The dtype the neuron's own code keeps its membrane in, for inputs of ``dtype``: by default the input's
        promoted with its tensor parameters' (a membrane buffer shares the module's dtype, as snnTorch's does);
        a library that keeps the membrane in the input's dtype overrides this."""
        for value in params.values():
            if isinstance(value, torch.Tensor):
                dtype = torch.promote_types(dtype, value.dtype)
        return dtype

    # --- settings ------------------------------------------------------------------------------------------
    def bsnn_setup(self, settings: MethodSettings, sample_shape: tuple[int, ...] | None = None) -> None:
        """Give a module the component: no added parameters yet, then :meth:`bsnn_configure`."""
        for name in ADDED_PARAMETERS:
            if name not in self._parameters:
                self.register_parameter(name, None)
        self.bsnn_sample_shape = None
        self.bsnn_configure(settings)
        if sample_shape is not None:
            self.bsnn_materialize(sample_shape)

    def bsnn_configure(self, settings: MethodSettings) -> None:
        """Apply ``settings``: create the parameters they ask for and the known shape allows, keep the ones
        that still fit (learned values survive a second conversion), drop the ones no longer asked for. While
        the sample shape is unknown, a parameter the new settings may shape differently (an IMP per layer made
        per neuron, eigenvalues per channel made per neuron) is refitted as soon as the shape is known."""
        previous = getattr(self, "bsnn_settings", None)
        self.bsnn_settings = settings
        if self.bsnn_sample_shape is None and previous is not None and _shaping(previous) != _shaping(settings):
            self.__dict__["bsnn_refit"] = True
        self._bsnn_make_parameters(refit=True)
        seen = self.__dict__.get("bsnn_seen_shape")
        if seen is not None and self.bsnn_sample_shape is None and self.bsnn_needs_shape():
            self.bsnn_materialize(seen)  # the neuron ran on the engine before: its input shape is known

    # --- shape-dependent parameters --------------------------------------------------------------------------
    def bsnn_needs_shape(self) -> bool:
        """True while a parameter that the settings ask for waits for the input's shape."""
        settings = self.bsnn_settings
        if self.bsnn_sample_shape is None and settings.shaped and self.__dict__.get("bsnn_refit"):
            return True
        if settings.imp in ("neuron", "channel") and self.imp is None:
            return True
        return settings.dynamics == "bifurcation" and self.eigenvalues is None

    def bsnn_materialize(self, sample_shape: tuple[int, ...], device: torch.device | None = None) -> None:
        """Create the parameters whose shape depends on one sample's shape ``[C, ...]`` (no time, no batch);
        a neuron built for one sample shape refuses another."""
        sample_shape = tuple(int(s) for s in sample_shape)
        if self.bsnn_sample_shape is not None:
            if self.bsnn_sample_shape != sample_shape:
                raise ValueError(
                    f"{type(self).__name__} was built for samples of shape {list(self.bsnn_sample_shape)}, "
                    f"got input with samples of shape {list(sample_shape)} (is x time-major [T, N, ...]?)"
                )
            return
        self.bsnn_sample_shape = sample_shape
        self._bsnn_make_parameters(device, refit=self.__dict__.pop("bsnn_refit", False))

    def bsnn_see_shape(self, sample_shape: tuple[int, ...], device: torch.device) -> None:
        """A forward call's sample shape: create the shaped parameters it allows (once), and remember it for a
        later conversion that adds some. Only a call that meets a new shape touches the module: one that mutates
        nothing (and reads no ``parameters()``) lets torch.compile trace a loop that calls the neuron several
        times into one graph."""
        if self.bsnn_settings.shaped and self.bsnn_sample_shape != sample_shape:
            self._bsnn_materialize_at_forward(sample_shape, device)
        if self.__dict__.get("bsnn_seen_shape") != sample_shape:
            self.__dict__["bsnn_seen_shape"] = sample_shape

    def _bsnn_materialize_at_forward(self, sample_shape: tuple[int, ...], device: torch.device) -> None:
        """:meth:`bsnn_materialize` from a forward call, warning if that created trainable parameters."""
        before = sum(1 for _ in self.parameters(recurse=False))
        self.bsnn_materialize(sample_shape, device)
        if sum(1 for _ in self.parameters(recurse=False)) > before and self.training and torch.is_grad_enabled():
            warn_user(
                f"{type(self).__name__} created its shape-dependent parameters (IMP, eigenvalues) at its first "
                "forward; an optimizer built before this call does not hold them. Pass example_input to convert "
                "(or to the ConvertNeurons callback), shape=... to a bsnn_lightning neuron, or call "
                "bsnn_lightning.materialize(model, example_input) before building the optimizer."
            )

    def _bsnn_make_parameters(self, device: torch.device | None = None, refit: bool = False) -> None:
        """Create missing parameters; with ``refit`` (new settings) also replace those whose mode or shape
        the settings changed. Without it an existing parameter is never replaced: one loaded from a checkpoint
        that does not fit the input is left for the engine to refuse, naming both shapes."""
        settings, shape, owner = self.bsnn_settings, self.bsnn_sample_shape, type(self).__name__
        device = device if device is not None else _device_of(self)
        if settings.imp is None:
            self.imp = None
        elif settings.imp == "layer" or shape is not None:
            imp_shape = granular_shape(settings.imp, shape, owner)
            # (per neuron and per channel are the same shape for 1-D samples: compare shapes, not modes)
            if self.imp is None or (refit and tuple(self.imp.shape) != imp_shape):
                threshold = torch.as_tensor(self._bsnn_threshold()).detach().float().mean()
                threshold = 1.0 if threshold.is_meta else float(threshold)  # meta: shapes only, no value to read
                self.imp = nn.Parameter(initial_imp(imp_shape, settings.imp_init, threshold, device))
        if settings.dynamics != "bifurcation":
            self.eigenvalues = None
            self.basis = None
            return
        if shape is None:
            return
        eig_shape = granular_shape(settings.granularity, shape, owner)
        if self.eigenvalues is None or (refit and tuple(self.eigenvalues.shape) != eig_shape):
            self.eigenvalues = nn.Parameter(initial_eigenvalues(eig_shape, settings.eigen_init, device))
        if settings.structure == "diagonal":
            self.basis = None
        elif self.basis is None or (refit and self.basis.shape[0] != math.prod(eig_shape)):
            count = math.prod(eig_shape)
            self.basis = nn.Parameter(torch.zeros(count, count, device=device))

    def _save_to_state_dict(self, destination, prefix, keep_vars):
        super()._save_to_state_dict(destination, prefix, keep_vars)
        # the eigenvalues' bounds clamp them in every forward, so they are part of what the eigenvalues mean: a
        # checkpoint keeps them, and a model with other bounds refuses it (the other settings show in the keys
        # and shapes of the added parameters)
        if self.bsnn_settings.dynamics == "bifurcation" and self.eigenvalues is not None:
            destination[prefix + BOUNDS_KEY] = torch.tensor(self.bsnn_settings.bounds, dtype=torch.float64)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):
        # A checkpoint of a materialised neuron loads into a fresh one: the shapes of the added parameters come
        # from the checkpoint, the settings (which parameters exist, and what they mean) from convert or the
        # constructor. A parameter the settings do not ask for is not loaded (PyTorch reports it as an unexpected
        # key; strict loading refuses it): eigenvalues loaded into a LIF neuron would never be used.
        settings, owner = self.bsnn_settings, type(self).__name__
        wanted = _wanted_parameters(settings)
        unused = [prefix + name for name in ADDED_PARAMETERS if prefix + name in state_dict and name not in wanted]
        if unused and "eigenvalues" not in wanted and prefix + BOUNDS_KEY in state_dict:
            unused.append(prefix + BOUNDS_KEY)
        if unused:
            warn_user(
                f"the state dict holds {unused}, which {owner} {prefix[:-1]!r} (bsnn: {settings.describe()}) does "
                f"not use; they need {_settings_needed(unused, prefix, state_dict)}: convert the model with those "
                "settings before loading (strict loading refuses these keys, non-strict loading leaves them out)"
            )
        for name in wanted:
            key = prefix + name
            if key not in state_dict:
                if getattr(self, name) is None:
                    missing_keys.append(key)  # the parameter is still waiting for its shape: it is missing all the same
                continue
            problem = _shape_problem(name, tuple(state_dict[key].shape), settings, state_dict, prefix)
            if problem:
                error_msgs.append(f"{key}: {problem}; the neuron's settings: {settings.describe()}")
                continue
            if getattr(self, name) is None:
                setattr(self, name, nn.Parameter(torch.empty_like(state_dict[key], device=_device_of(self))))
        if self.bsnn_sample_shape is None:
            self.bsnn_sample_shape = _sample_shape_from(state_dict, prefix, settings)
        self.__dict__.pop("bsnn_refit", None)  # the loaded values are the parameters now
        bounds_key = prefix + BOUNDS_KEY
        if bounds_key in state_dict and "eigenvalues" in wanted:
            stored = tuple(state_dict.pop(bounds_key).tolist())  # this load's own copy of the dict: consumed here
            if stored != settings.bounds:
                error_msgs.append(
                    f"{bounds_key}: the eigenvalues were trained clamped to bounds {stored}, but {owner} {prefix[:-1]!r} "
                    f"clamps to {settings.bounds}; convert with bounds={stored} before loading"
                )
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs)

    # --- the engine call -----------------------------------------------------------------------------------
    def bsnn_engine(self, sample_shape: tuple[int, ...], dtype: torch.dtype = torch.float32) -> tuple[Dynamics, dict]:
        """The dynamics and parameters the engine runs for inputs of ``dtype`` with samples of this shape."""
        dynamics, params = self._bsnn_dynamics(sample_shape)
        state = self._bsnn_native_state_dtype(dtype, params)
        if self.bsnn_settings.state_dtype == "float32":
            state = torch.promote_types(state, torch.float32)
        if state == torch.promote_types(dtype, torch.float32):
            return dynamics, params  # the engine's default precision
        key = ("state", dynamics, state)
        return self.bsnn_cached(key, lambda: replace(dynamics, state_dtype=state), slot="_bsnn_state_cache"), params

    def _bsnn_dynamics(self, sample_shape: tuple[int, ...]) -> tuple[Dynamics, dict]:
        settings = self.bsnn_settings
        if settings.dynamics == "lif":
            return self._bsnn_lif(sample_shape)
        if self.eigenvalues is None:
            raise RuntimeError(
                f"{type(self).__name__} has no eigenvalues yet: give convert an example_input, or call "
                "bsnn_lightning.materialize(model, example_input)"
            )
        v_reset, detach_reset = self._bsnn_reset()
        surrogate = self._bsnn_surrogate()
        threshold = self._bsnn_threshold(sample_shape)
        if settings.structure == "coupled":
            dynamics = self.bsnn_cached(
                ("coupled", surrogate, v_reset, detach_reset),
                lambda: CoupledBifurcation(surrogate=surrogate, v_reset=v_reset, detach_reset=detach_reset),
            )
            return dynamics, {"coupling": self.coupling_matrix(), "threshold": threshold}
        dynamics = self.bsnn_cached(
            ("diagonal", surrogate, v_reset, detach_reset, settings.bounds),
            lambda: DiagonalBifurcation(
                surrogate=surrogate, v_reset=v_reset, detach_reset=detach_reset, bounds=settings.bounds
            ),
        )
        return dynamics, {"eigenvalues": self.eigenvalues, "threshold": threshold}

    def bsnn_cached(self, key: tuple, make, slot: str = "_bsnn_cache"):
        """``make()``, rebuilt only when ``key`` (the settings it depends on) changes: building a dynamics
        object on every call costs more than the step itself for small layers."""
        cached = self.__dict__.get(slot)
        if cached is None or cached[0] != key:
            cached = (key, make())
            self.__dict__[slot] = cached
        return cached[1]

    def bsnn_initial_state(self, state: "torch.Tensor | float"):
        """The state a new sequence starts from: the resting ``state`` plus the IMP, if there is one."""
        if self.imp is None:
            return state
        if isinstance(state, torch.Tensor):
            imp = self.imp
            if imp.dim() == 1 and state.dim() > 2:  # per channel: broadcast over the spatial dimensions
                imp = imp.reshape(-1, *([1] * (state.dim() - 2)))
            return state + imp
        return self.imp + state if state else self.imp

    def bsnn_run(
        self,
        seq: torch.Tensor,
        state: "torch.Tensor | float",
        *,
        fresh: bool,
        return_v_seq: bool = False,
        single: bool = False,
    ) -> MultistepOutput:
        """Run the engine over ``seq`` [T, N, ...] from ``state`` (a new sequence, started from ``state`` plus
        the IMP, when ``fresh``), creating shaped parameters on the first call, and record for monitors
        (``single``: the call is one step of the user's own loop, ``seq`` holds it as [1, N, ...])."""
        sample_shape = tuple(seq.shape[2:])
        self.bsnn_see_shape(sample_shape, seq.device)
        dynamics, params = self.bsnn_engine(sample_shape, seq.dtype)
        monitor = self.__dict__.get("bsnn_monitor")
        keep_membrane = monitor == "membrane"
        out = multistep(
            seq,
            dynamics,
            params,
            self.bsnn_initial_state(state) if fresh else state,
            backend=self.bsnn_settings.backend,
            return_v_seq=return_v_seq or keep_membrane,
            check_finite=self.bsnn_settings.check_finite,
        )
        if monitor is not None:
            spikes = out.spikes.detach()
            membrane = out.v_seq.detach() if keep_membrane else None
            if single:
                spikes, membrane = spikes[0], (membrane[0] if membrane is not None else None)
            record(self, Recording(spikes, membrane, params["threshold"], not single))
            if not return_v_seq:
                out = out._replace(v_seq=None)
        return out

    # --- what monitors and analyses read ----------------------------------------------------------------------
    def coupling_matrix(self) -> torch.Tensor:
        """``Q diag(1 + clamp(lambda)) Q^T`` with ``Q = matrix_exp(S - S^T)`` (coupled dynamics)."""
        return coupling_matrix(self.basis, self.eigenvalues, self.bsnn_settings.bounds)

    def effective_eigenvalues(self) -> torch.Tensor | None:
        """The eigenvalues the forward pass uses (clamped to ``bounds``), flattened; None without any."""
        if self.eigenvalues is None:
            return None
        return self.eigenvalues.detach().clamp(*self.bsnn_settings.bounds).flatten()

    def bsnn_set_monitor(self, mode: str | None) -> None:
        """Record the spikes (``"spikes"``), spikes and membranes (``"membrane"``) or nothing (None) of the
        following forward calls; turning it off drops the last recording."""
        if mode not in (None, "spikes", "membrane"):
            raise ValueError(f"expected monitor mode None, 'spikes' or 'membrane', got {mode!r}")
        self.__dict__["bsnn_monitor"] = mode
        if mode is None:
            self.__dict__.pop("bsnn_recording", None)

    def __getstate__(self):
        # caches and monitoring state are rebuilt on demand; they are not part of a pickled or copied neuron
        return {k: v for k, v in self.__dict__.items() if k not in DERIVED_ATTRIBUTES}

    def bsnn_extra_repr(self) -> str:
        return "bsnn: " + self.bsnn_settings.describe()


def granular_shape(mode: str, sample_shape: tuple[int, ...] | None, owner: str = "neuron") -> tuple[int, ...]:
    """The shape of a parameter that is per ``"layer"`` (``()``), per ``"channel"`` or per ``"neuron"``.

    >>> granular_shape("layer", (4, 8, 8)), granular_shape("channel", (4, 8, 8)), granular_shape("neuron", (4, 8))
    ((), (4,), (4, 8))
    """
    if mode == "layer":
        return ()
    if sample_shape is None:
        raise RuntimeError(f"{owner}: the input shape is unknown before materialize()")
    if mode == "channel":
        if not sample_shape:
            raise ValueError(f"{owner}: per-channel parameters need samples with a channel dimension, got shape []")
        return (sample_shape[0],)
    return tuple(sample_shape)


def initial_imp(shape: tuple[int, ...], imp_init: tuple[float, float], threshold: float, device=None) -> torch.Tensor:
    """U(low, high) x threshold.

    >>> imp = initial_imp((1000,), (0.4, 0.6), threshold=2.0)
    >>> bool(((imp >= 0.8) & (imp <= 1.2)).all())
    True
    """
    low, high = imp_init
    return (torch.empty(shape).uniform_(low, high) * float(threshold)).to(device)


def initial_eigenvalues(shape: tuple[int, ...], eigen_init: tuple[float, float], device=None) -> torch.Tensor:
    """Evenly spread over ``eigen_init`` (the midpoint for a single value), in random order.

    >>> sorted(initial_eigenvalues((5,), (-0.8, 0.0)).tolist()) == torch.linspace(-0.8, 0.0, 5).tolist()
    True
    >>> initial_eigenvalues((1,), (-0.8, 0.0))
    tensor([-0.4000])
    """
    count = math.prod(shape)
    low, high = eigen_init
    spread = torch.linspace(low, high, count) if count > 1 else torch.tensor([(low + high) / 2])
    return spread[torch.randperm(count)].reshape(shape).to(device)


def coupling_matrix(basis: torch.Tensor, eigenvalues: torch.Tensor, bounds: tuple[float, float]) -> torch.Tensor:
    """``Q diag(1 + clamp(lambda)) Q^T`` with ``Q = matrix_exp(S - S^T)``: explicit eigenvalues, orthogonal Q.

    >>> basis, eigenvalues = torch.randn(3, 3), torch.tensor([-0.5, 0.0, 0.9])
    >>> matrix = coupling_matrix(basis, eigenvalues, bounds=(-1.0, 0.2))  # 0.9 is clamped to 0.2
    >>> torch.allclose(torch.linalg.eigvalsh(matrix), torch.tensor([0.5, 1.0, 1.2]), atol=1e-5)
    True
    """
    q = torch.linalg.matrix_exp(basis - basis.transpose(0, 1))
    return q @ torch.diag(1 + eigenvalues.clamp(*bounds)) @ q.transpose(0, 1)


def mode_of(shape: tuple[int, ...]) -> str:
    """The IMP mode a stored IMP tensor of this shape was made with.

    >>> mode_of(()), mode_of((4,)), mode_of((4, 8, 8))
    ('layer', 'channel', 'neuron')
    """
    return "layer" if shape == () else ("channel" if len(shape) == 1 else "neuron")


def _wanted_parameters(settings: MethodSettings) -> tuple[str, ...]:
    """The added parameters (:data:`ADDED_PARAMETERS`) a neuron with ``settings`` holds once materialised."""
    wanted = ("imp",) if settings.imp is not None else ()
    if settings.dynamics == "bifurcation":
        wanted += ("eigenvalues", "basis") if settings.structure == "coupled" else ("eigenvalues",)
    return wanted


def _shaping(settings: MethodSettings) -> tuple:
    """What decides the shapes of a neuron's added parameters."""
    return settings.imp, settings.dynamics, settings.granularity, settings.structure


def _settings_needed(keys: list[str], prefix: str, state_dict) -> str:
    """The convert settings under which a neuron holds the added parameters ``keys``."""
    names = {key[len(prefix):] for key in keys}
    needed = []
    if "eigenvalues" in names or "basis" in names:
        needed.append("dynamics='bifurcation'")
        needed.append("structure='coupled'" if "basis" in names else "structure='diagonal'")
        if BOUNDS_KEY in names:
            needed.append(f"bounds={tuple(state_dict[prefix + BOUNDS_KEY].tolist())}")
    if "imp" in names:
        shape = tuple(state_dict[prefix + 'imp'].shape)
        needed.append("imp='channel' or 'neuron'" if len(shape) == 1 else f"imp={mode_of(shape)!r}")
    return ", ".join(needed)


def _shape_problem(name: str, shape: tuple[int, ...], settings: MethodSettings, state_dict, prefix: str) -> str | None:
    """Why a stored added parameter of this shape cannot be the one ``settings`` ask for, or None if it can."""
    mode = settings.imp if name == "imp" else settings.granularity
    if name in ("imp", "eigenvalues"):
        fits = {"layer": len(shape) == 0, "channel": len(shape) == 1, "neuron": len(shape) >= 1}[mode]
        if not fits:
            return f"a stored shape {list(shape)} is not per {mode} ({'a scalar' if mode == 'layer' else 'one value per ' + mode})"
        return None
    eigenvalues = state_dict.get(prefix + "eigenvalues")
    count = None if eigenvalues is None else eigenvalues.numel()
    if len(shape) != 2 or shape[0] != shape[1] or (count is not None and shape[0] != count):
        return f"a stored coupling basis of shape {list(shape)} is not square over the {count} eigenvalues"
    return None


def _sample_shape_from(state_dict, prefix: str, settings: MethodSettings) -> tuple[int, ...] | None:
    """The sample shape a checkpoint's per-neuron parameters reveal, if any."""
    for name, mode in (("imp", settings.imp), ("eigenvalues", settings.granularity)):
        tensor = state_dict.get(prefix + name)
        if tensor is not None and mode == "neuron" and tensor.dim() >= 1:
            return tuple(tensor.shape)
    return None


def _device_of(module: nn.Module) -> torch.device:
    for tensor in list(module.parameters(recurse=False)) + list(module.buffers(recurse=False)):
        return tensor.device
    return torch.device("cpu")


def engine_backends() -> tuple[str, ...]:
    """The backends a neuron can name: every registered one (:func:`~bsnn_lightning.engine.available_backends`, so a
    backend registered by the user's code too), and "auto".

    >>> engine_backends()
    ('cpu', 'torch', 'triton', 'auto')
    """
    return (*available_backends(), "auto")


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"expected {name} to be one of {list(choices)}, got {value!r}")


__all__ = [
    "ADDED_PARAMETERS",
    "BIFURCATION_OPTIONS",
    "MethodNeuron",
    "MethodSettings",
    "Recording",
    "coupling_matrix",
    "granular_shape",
    "initial_eigenvalues",
    "initial_imp",
    "mode_of",
    "record",
    "settings_keywords",
]
