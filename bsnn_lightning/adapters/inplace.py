"""Converting a library's neuron in place: the same object keeps its place, class lineage and state dict.

A converted neuron's class is a subclass made on the fly, ``(LibraryMixin, OriginalClass)``, whose forward
runs the multistep engine instead of the library's loop. So ``isinstance(m, snntorch.Leaky)`` still holds,
the module tree and (with ``dynamics="lif"`` and no IMP) the ``state_dict`` keys are unchanged, the
library's own reset utilities still find the module, and nothing new is registered with the library.
:func:`restore_class` undoes it. Converted modules pickle and deep-copy (the class is rebuilt on load).

The new parameters the methods add live on the converted module itself, under fixed names:
``imp`` (initial membrane potential), ``eigenvalues`` and, for coupled dynamics, ``basis``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, replace

import torch
from torch import nn

from ..engine import Bifurcation
from ..neuron_params import (
    GRANULARITIES,
    IMP_MODES,
    coupling_matrix,
    granular_shape,
    initial_eigenvalues,
    initial_imp,
    mode_of,
)

#: parameters a conversion may add to a library's neuron
ADDED_PARAMETERS = ("imp", "eigenvalues", "basis")
BIFURCATION_OPTIONS = ("structure", "granularity", "eigen_init", "bounds")
#: attributes rebuilt on demand, not pickled (caches, monitoring hooks and their last spikes)
_DERIVED = ("_bsnn_cache", "_bsnn_surrogate_of", "_bsnn_monitor_handle", "_bsnn_last_spikes")


@dataclass(frozen=True)
class Settings:
    """What a conversion asked for; stored on the converted module as ``bsnn_settings``."""

    dynamics: str = "lif"  #: "lif" (the library's own equations) or "bifurcation"
    backend: str = "auto"
    imp: str | None = None
    imp_init: tuple[float, float] = (0.4, 0.6)
    structure: str = "diagonal"
    granularity: str = "channel"
    eigen_init: tuple[float, float] = (-0.8, 0.0)
    bounds: tuple[float, float] = (-1.0, 0.2)
    step_mode: str | None = None  #: a library without step modes (snnTorch): "s" (default) or "m"

    def updated(self, *, dynamics, imp, backend, options) -> "Settings":
        unknown = sorted(set(options) - set(BIFURCATION_OPTIONS))
        if unknown:
            raise ValueError(f"unknown convert options {unknown}; expected some of {list(BIFURCATION_OPTIONS)}")
        new = dict(options)
        for key in ("eigen_init", "bounds"):
            if key in new:
                new[key] = tuple(float(v) for v in new[key])
        if dynamics is not None:
            new["dynamics"] = dynamics
        if imp is not None:
            new["imp"] = None if imp == "none" else imp
        if backend is not None:
            new["backend"] = backend
        settings = replace(self, **new)
        settings.check()
        return settings

    def check(self) -> None:
        if self.imp is not None and self.imp not in IMP_MODES:
            raise ValueError(f"expected imp to be one of {list(IMP_MODES)} or None, got {self.imp!r}")
        if self.structure not in ("diagonal", "coupled"):
            raise ValueError(f"expected structure 'diagonal' or 'coupled', got {self.structure!r}")
        if self.granularity not in GRANULARITIES:
            raise ValueError(f"expected granularity to be one of {list(GRANULARITIES)}, got {self.granularity!r}")
        if self.structure == "coupled" and self.granularity != "channel":
            raise ValueError("coupled bifurcation dynamics couple channels: expected granularity='channel'")
        lo, hi = self.bounds
        if not (lo <= self.eigen_init[0] <= self.eigen_init[1] <= hi):
            raise ValueError(f"expected eigen_init {self.eigen_init} inside bounds {self.bounds}")

    @property
    def needs_shape(self) -> bool:
        return self.imp in ("neuron", "channel") or self.dynamics == "bifurcation"


class ConvertedNeuron:
    """The mixin every converted library neuron gets first in its MRO (see the module docstring).

    Library mixins implement ``_bsnn_library_dynamics(sample_shape)`` -> (Dynamics, params) for ``dynamics="lif"``,
    ``_bsnn_bifurcation_reset()`` -> (v_reset, detach_reset), ``_bsnn_threshold(sample_shape)`` and
    ``_bsnn_surrogate()``.
    """

    bsnn_settings: Settings
    bsnn_sample_shape: tuple[int, ...] | None

    # --- the engine call -------------------------------------------------------------------------------
    def _bsnn_engine(self, sample_shape: tuple[int, ...]):
        """(dynamics, params) for the current settings and samples of this shape."""
        settings = self.bsnn_settings
        if settings.dynamics == "lif":
            return self._bsnn_library_dynamics(sample_shape)
        v_reset, detach_reset = self._bsnn_bifurcation_reset()
        surrogate = self._bsnn_surrogate()
        dynamics = self._bsnn_cached(
            ("bifurcation", surrogate, v_reset, detach_reset, settings.structure, settings.bounds),
            lambda: Bifurcation(
                surrogate=surrogate,
                v_reset=v_reset,
                detach_reset=detach_reset,
                structure=settings.structure,
                bounds=settings.bounds,
            ),
        )
        threshold = self._bsnn_threshold(sample_shape)
        if settings.structure == "coupled":
            return dynamics, {"coupling": coupling_matrix(self.basis, self.eigenvalues, settings.bounds), "threshold": threshold}
        return dynamics, {"eigenvalues": self.eigenvalues, "threshold": threshold}

    def _bsnn_cached(self, key: tuple, make):
        """``make()``, rebuilt only when ``key`` (the module's settings it depends on) changes: the dynamics
        object is rebuilt on every call otherwise, which costs more than the step itself for small layers."""
        cached = self.__dict__.get("_bsnn_cache")
        if cached is None or cached[0] != key:
            cached = (key, make())
            self.__dict__["_bsnn_cache"] = cached
        return cached[1]

    def _bsnn_initial_state(self, state: "torch.Tensor | float"):
        """The state a new sequence starts from: ``state`` plus the IMP, if there is one."""
        if self.imp is None:
            return state
        if isinstance(state, torch.Tensor):
            imp = self.imp
            if imp.dim() == 1 and state.dim() > 2:  # per channel: broadcast over the spatial dimensions
                imp = imp.reshape(-1, *([1] * (state.dim() - 2)))
            return state + imp
        return self.imp + state if state else self.imp

    # --- shape-dependent parameters ----------------------------------------------------------------------
    def _bsnn_materialize(self, sample_shape: tuple[int, ...], device: torch.device | None = None) -> None:
        sample_shape = tuple(int(s) for s in sample_shape)
        if self.bsnn_sample_shape is not None:
            if self.bsnn_sample_shape != sample_shape:
                raise ValueError(
                    f"converted {type(self).__name__} was built for samples of shape {list(self.bsnn_sample_shape)}, "
                    f"got input with samples of shape {list(sample_shape)} (is x time-major [T, N, ...]?)"
                )
            return
        self.bsnn_sample_shape = sample_shape
        before = sum(1 for _ in self.parameters(recurse=False))
        self._bsnn_make_parameters(device)
        if sum(1 for _ in self.parameters(recurse=False)) > before and self.training and torch.is_grad_enabled():
            warnings.warn(
                f"converted {type(self).__name__} created its shape-dependent parameters at its first forward; an "
                "optimizer built before this call does not hold them. Pass example_input to convert (or to the "
                "ConvertNeurons callback), or run the model once before converting.",
                stacklevel=4,
            )

    def _bsnn_learn_shape_from_state(self, state) -> None:
        """If the library neuron already ran (its state is a tensor [N, ...]), take the sample shape from it."""
        if self.bsnn_sample_shape is None and isinstance(state, torch.Tensor) and state.dim() >= 1 and state.numel():
            self._bsnn_materialize(tuple(state.shape[1:]), state.device)

    def _bsnn_make_parameters(self, device: torch.device | None = None) -> None:
        """Create the parameters the settings ask for and the known shape allows (keeping existing ones)."""
        settings, shape, name = self.bsnn_settings, self.bsnn_sample_shape, type(self).__name__
        device = device if device is not None else _device_of(self)
        if settings.imp is None:
            self.imp = None
        elif self.imp is None or mode_of(tuple(self.imp.shape)) != settings.imp:
            if settings.imp == "layer" or shape is not None:
                imp_shape = granular_shape(settings.imp, shape, name)
                threshold = float(torch.as_tensor(self._bsnn_threshold()).detach().float().mean())
                self.imp = nn.Parameter(initial_imp(imp_shape, settings.imp_init, threshold, device))
        if settings.dynamics != "bifurcation":
            self.eigenvalues = None
            self.basis = None
        elif shape is not None and self.eigenvalues is None:
            eig_shape = granular_shape(settings.granularity, shape, name)
            self.eigenvalues = nn.Parameter(initial_eigenvalues(eig_shape, settings.eigen_init, device))
            if settings.structure == "coupled":
                count = math.prod(eig_shape)
                self.basis = nn.Parameter(torch.zeros(count, count, device=device))

    def _bsnn_needs_shape(self) -> bool:
        settings = self.bsnn_settings
        if settings.imp in ("neuron", "channel") and self.imp is None:
            return True
        return settings.dynamics == "bifurcation" and self.eigenvalues is None

    def _bsnn_check_ready(self) -> None:
        if self.bsnn_settings.dynamics == "bifurcation" and self.eigenvalues is None:
            raise RuntimeError(f"converted {type(self).__name__} has no eigenvalues yet: materialize it first")

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs):
        # a checkpoint of a converted neuron loads into a freshly converted one: shapes come from the checkpoint
        for name in ADDED_PARAMETERS:
            key = prefix + name
            if key in state_dict and getattr(self, name) is None:
                setattr(self, name, nn.Parameter(torch.empty_like(state_dict[key], device=_device_of(self))))
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs)

    def __reduce_ex__(self, protocol):
        # the class is made at run time: pickle the original class and rebuild the converted one on load
        state = {k: v for k, v in self.__getstate__().items() if k not in _DERIVED}
        return (_rebuild, (type(self).__bases__[0], type(self).__bases__[1]), state)

    def extra_repr(self) -> str:
        settings = self.bsnn_settings
        parts = [super().extra_repr(), f"bsnn: dynamics={settings.dynamics}, backend={settings.backend}"]
        if settings.imp:
            parts.append(f"imp={settings.imp}")
        return ", ".join(p for p in parts if p)


_CLASSES: dict[tuple[type, type], type] = {}


def converted_class(mixin: type, library_class: type) -> type:
    """The class ``(mixin, library_class)``, made once and cached; it keeps the library class's name."""
    key = (mixin, library_class)
    if key not in _CLASSES:
        _CLASSES[key] = type(library_class.__name__, (mixin, library_class), {"__module__": mixin.__module__})
    return _CLASSES[key]


def convert_in_place(module: nn.Module, mixin: type, settings: Settings) -> nn.Module:
    """Swap ``module``'s class for the converted one (once) and apply ``settings``."""
    if not isinstance(module, ConvertedNeuron):
        module.__class__ = converted_class(mixin, type(module))
        for name in ADDED_PARAMETERS:
            module.register_parameter(name, None)
        module.bsnn_sample_shape = None
    module.bsnn_settings = settings
    module._bsnn_make_parameters()
    return module


#: the plan "give the module its library class back"
NATIVE = "native"


def check_native_request(dynamics, imp, options, step_mode) -> None:
    """Raise if ``backend="native"`` comes with something only the engine can do."""
    if dynamics == "bifurcation" or imp not in (None, "none") or options or step_mode == "m":
        raise ValueError(
            "backend='native' keeps the library's own neuron loop, which has no bifurcation dynamics, IMP or "
            "sequence mode; choose backend 'torch', 'triton' or 'auto' for those"
        )


def warn_autograd_surrogate(neuron: str, surrogate: str) -> None:
    """The one warning a conversion gives for a surrogate with no built-in formula."""
    warnings.warn(
        f"{neuron} uses the surrogate {surrogate}, which has no built-in formula: its derivative is taken from "
        "it by autograd, in the reference ('torch') backend only",
        stacklevel=4,  # this function, apply, convert, then the line that called convert
    )


def check_restorable(module: nn.Module) -> None:
    """Raise unless ``module`` is native already or a converted module without added parameters."""
    if not isinstance(module, ConvertedNeuron):
        return
    added = [name for name in ADDED_PARAMETERS if getattr(module, name) is not None]
    if added:
        raise ValueError(
            f"cannot return converted {type(module).__name__} to its native implementation: it holds the added "
            f"parameters {added}; convert with dynamics='lif', imp='none' first, or rebuild the model"
        )


def restore_class(module: nn.Module) -> nn.Module:
    """Give a converted module its library class back (it must hold no added parameters)."""
    check_restorable(module)
    if not isinstance(module, ConvertedNeuron):
        return module
    for name in ADDED_PARAMETERS:
        del module._parameters[name]
    for name in ("bsnn_settings", "bsnn_sample_shape"):
        module.__dict__.pop(name, None)
    module.__class__ = type(module).__bases__[1]
    return module


def _rebuild(mixin: type, library_class: type):
    return object.__new__(converted_class(mixin, library_class))


def _device_of(module: nn.Module) -> torch.device:
    for tensor in list(module.parameters(recurse=False)) + list(module.buffers(recurse=False)):
        return tensor.device
    return torch.device("cpu")
