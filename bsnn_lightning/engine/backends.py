"""The backend registry: who runs the time loop of :func:`bsnn_lightning.engine.multistep`.

A backend is a function ``run(x, v0, dynamics, params, return_v_seq) -> (spikes, v_final, v_seq | None)``
with the reference backend's exact semantics (``bsnn_lightning.engine.reference`` is the specification),
plus a ``supports(x, dynamics)`` check that returns ``None`` when it can run the call, or the reason it
cannot. A backend registered with ``state_sum=True`` returns a fourth value: the final state's sum in float32
(a 0-d tensor, computed in passing by its loop), which :func:`~bsnn_lightning.engine.multistep`'s finite check
reads instead of reading the state again (a NaN or Inf in the state makes the sum non-finite). ``"auto"``
picks the first registered backend in :data:`AUTO_ORDER` that supports the call, whose ``auto_devices`` (if it
names any) include x's device type, and whose ``auto_min_elements`` x reaches: ``"triton"`` for CUDA tensors,
``"cpu"`` (the fused CPU loop) for CPU tensors large enough to gain from it, and ``"torch"`` everywhere else.
An explicit name skips that device rule (the Triton interpreter runs on CPU). When ``"auto"`` passes over a
backend meant for the call's device (``"triton"`` on a GPU) it says why, once per dynamics class and reason,
at the user's line: a layer that silently lost its fused kernels would only show as a slow training step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, NamedTuple

import torch

from ..user_warnings import warn_user
from .dynamics import Dynamics
from .reference import run_reference

RunFn = Callable[..., tuple]
SupportsFn = Callable[[torch.Tensor, Dynamics], "str | None"]

#: the order in which "auto" tries backends
AUTO_ORDER = ("triton", "cpu", "torch")


@dataclass(frozen=True)
class Backend:
    """A registered backend (see the module docstring and :func:`register_backend`).

    >>> from bsnn_lightning.engine import SpikingJellyLIF
    >>> backend = Backend("plain", run_reference, lambda x, dynamics: None)  # float32 states only
    >>> backend.reason(torch.zeros(2, 1, 3), SpikingJellyLIF()) is None
    True
    >>> half = SpikingJellyLIF(state_dtype=torch.float16)  # a 16-bit membrane, as the library keeps it
    >>> backend.reason(torch.zeros(2, 1, 3, dtype=torch.float16), half)  # doctest: +ELLIPSIS
    "it keeps the state in float32, and this call asks for a torch.float16 state (as the library keeps its ..."
    """

    name: str
    run: RunFn
    supports: SupportsFn
    #: device types "auto" may choose this backend for; None: any device its ``supports`` accepts
    auto_devices: tuple[str, ...] | None = None
    #: True if it honours ``Dynamics.state_dtype`` (its ``supports`` refuses, with the reason, the state dtypes
    #: it cannot keep); False: it keeps only the default (float32, float64 for float64 inputs), and calls asking
    #: for another are left to a backend that can
    any_state_dtype: bool = False
    #: "auto" passes it over for an x of fewer elements (where its fixed cost per call outweighs its gain)
    auto_min_elements: int = 0
    #: True if its run returns a fourth value, the final state's float32 sum (a 0-d tensor)
    state_sum: bool = False

    def reason(self, x: torch.Tensor, dynamics: Dynamics) -> str | None:
        """None if this backend can run the call, else why not."""
        if not self.any_state_dtype and dynamics.compute_dtype(x.dtype) != torch.promote_types(x.dtype, torch.float32):
            return (
                f"it keeps the state in float32, and this call asks for a {dynamics.state_dtype} state (as the "
                "library keeps its membrane under 16-bit input; a neuron converted with state_dtype='float32' "
                "runs there, its membrane then more precise than the library's)"
            )
        return self.supports(x, dynamics)


_BACKENDS: dict[str, Backend] = {}


class CallSpec(NamedTuple):
    """What a backend's choice reads of x: its shape, dtype and device. Lets the choice be asked for a device this
    machine may not have (``CallSpec((16, 8, 128, 32, 32), torch.float16, torch.device("cuda"))``) without
    allocating anything; :func:`resolve_backend` takes it in place of x.

    >>> from bsnn_lightning.engine import SpikingJellyLIF
    >>> spec = CallSpec((16, 8, 128, 32, 32), torch.float16, torch.device("cuda"))
    >>> spec.dim(), spec.numel()
    (5, 16777216)
    >>> resolve_backend("auto", spec, SpikingJellyLIF()).name  # what a GPU would run, asked on any machine
    'triton'
    """

    shape: tuple
    dtype: torch.dtype
    device: torch.device

    def dim(self) -> int:
        return len(self.shape)

    def numel(self) -> int:
        return math.prod(self.shape)


def register_backend(
    name: str,
    run: RunFn,
    supports: SupportsFn | None = None,
    auto_devices: tuple[str, ...] | None = None,
    any_state_dtype: bool = False,
    auto_min_elements: int = 0,
    state_sum: bool = False,
) -> None:
    """Register (or replace) a backend under ``name``; ``auto_devices`` limits where "auto" picks it;
    ``any_state_dtype`` says it honours ``Dynamics.state_dtype`` (else only float32 states reach it);
    ``auto_min_elements``: "auto" leaves an x of fewer elements to the next backend; ``state_sum``: its run returns
    the final state's float32 sum as a fourth value (see the module docstring).

    A backend that runs only float64 input, its loop the reference's, says why it refuses the rest:

    >>> from bsnn_lightning.engine import SpikingJellyLIF
    >>> def float64_only(x, dynamics):
    ...     return None if x.dtype == torch.float64 else f"expected float64 x, got {x.dtype}"
    >>> register_backend("float64_only", run_reference, float64_only, any_state_dtype=True)
    >>> resolve_backend("float64_only", torch.zeros(4, 2, 3, dtype=torch.float64), SpikingJellyLIF()).name
    'float64_only'
    >>> resolve_backend("float64_only", torch.zeros(4, 2, 3), SpikingJellyLIF())
    Traceback (most recent call last):
        ...
    ValueError: backend 'float64_only' cannot run this call: expected float64 x, got torch.float32
    >>> _BACKENDS.pop("float64_only").name  # (the example takes it back out)
    'float64_only'
    >>> register_backend("auto", run_reference)
    Traceback (most recent call last):
        ...
    ValueError: 'auto' is reserved: 'auto' chooses a backend, 'native' keeps a library's own neuron
    """
    if name in ("auto", "native"):
        raise ValueError(f"{name!r} is reserved: 'auto' chooses a backend, 'native' keeps a library's own neuron")
    _BACKENDS[name] = Backend(
        name, run, supports or (lambda x, dynamics: None), auto_devices, any_state_dtype, auto_min_elements, state_sum
    )


def available_backends() -> list[str]:
    """The names of the registered backends, sorted (``"auto"`` is not one: it chooses among them).

    >>> {"cpu", "torch", "triton"} <= set(available_backends())  # the built-in ones, and any registered since
    True
    >>> "auto" in available_backends()
    False
    """
    return sorted(_BACKENDS)


def resolve_backend(name: str, x: "torch.Tensor | CallSpec", dynamics: Dynamics) -> Backend:
    """The backend that will run this call, or a ValueError that says why none can; x may be a :class:`CallSpec`
    (the decision reads only its shape, dtype and device type).

    >>> from bsnn_lightning.engine import SpikingJellyLIF
    >>> x = torch.zeros(2, 1, 8)  # [T, N, features]
    >>> resolve_backend("auto", x, SpikingJellyLIF()).name  # a call this small stays on the reference
    'torch'
    >>> resolve_backend("triton", x.double(), SpikingJellyLIF())  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    ValueError: backend 'triton' cannot run this call: expected x of dtype float32, ... got torch.float64 ...
    >>> resolve_backend("fast", x, SpikingJellyLIF())  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    ValueError: unknown backend 'fast'; expected one of ['cpu', ...'torch', 'triton', 'auto']
    """
    if name == "auto":
        for candidate in AUTO_ORDER:
            backend = _BACKENDS.get(candidate)
            if backend is None or (backend.auto_devices is not None and x.device.type not in backend.auto_devices):
                continue
            if x.numel() < backend.auto_min_elements:
                continue
            reason = backend.reason(x, dynamics)
            if reason is None:
                return backend
            if backend.auto_devices is not None:  # meant for this device, and passed over
                _say_passed_over(backend.name, dynamics, reason)
        raise ValueError(f"no registered backend supports {type(dynamics).__name__} on {x.device}")
    if name == "native":
        raise ValueError(
            "backend 'native' keeps a library's own neuron loop and is chosen at convert(); "
            f"the engine runs one of {available_backends() + ['auto']}"
        )
    if name not in _BACKENDS:
        raise ValueError(f"unknown backend {name!r}; expected one of {available_backends() + ['auto']}")
    backend = _BACKENDS[name]
    reason = backend.reason(x, dynamics)
    if reason is not None:
        raise ValueError(f"backend {name!r} cannot run this call: {reason}")
    return backend


#: (backend, dynamics class, reason) already said
_SAID: set[tuple[str, str, str]] = set()


def _say_passed_over(name: str, dynamics: Dynamics, reason: str) -> None:
    key = (name, type(dynamics).__name__, reason)
    if key in _SAID or torch.compiler.is_compiling():  # a warning inside a traced graph would break it
        return
    _SAID.add(key)
    warn_user(
        f"backend 'auto' runs {type(dynamics).__name__} on the next backend in {list(AUTO_ORDER)}, not on "
        f"{name!r}: {reason} (said once per dynamics class and reason)"
    )


register_backend("torch", run_reference, any_state_dtype=True)
