"""The multistep engine: ``x[T, N, ...]`` + initial state + parameters -> spikes (+ final state).

``multistep`` validates and dispatches to a backend (:mod:`.backends`); ``torch`` (:mod:`.reference`) is the
specification, and faster backends register themselves next to it.
"""

from .api import MultistepOutput, multistep
from .backends import CallSpec, available_backends, register_backend, resolve_backend
from .dynamics import (
    Bifurcation,
    CoupledBifurcation,
    DiagonalBifurcation,
    Dynamics,
    SnnTorchLeaky,
    SnnTorchLeakyImmediate,
    SnnTorchSynapticZero,
    SnnTorchSynapticZeroImmediate,
    SpikingJelly014LIF,
    SpikingJelly014PLIF,
    SpikingJellyIF,
    SpikingJellyLIF,
    SpikingJellyPLIF,
)
from .surrogates import Surrogate, available_surrogates, register_surrogate
from . import cpu_backend as _cpu_backend  # noqa: F401  registers "cpu" (inductor loads on its first call)
from . import triton_backend as _triton_backend  # noqa: F401  registers "triton" (triton itself loads lazily)
from . import triton_coupled as _triton_coupled  # noqa: F401  adds the coupled kernels to "triton"

__all__ = [
    "Bifurcation",
    "CoupledBifurcation",
    "DiagonalBifurcation",
    "Dynamics",
    "MultistepOutput",
    "SnnTorchLeaky",
    "SnnTorchLeakyImmediate",
    "SnnTorchSynapticZero",
    "SnnTorchSynapticZeroImmediate",
    "SpikingJelly014LIF",
    "SpikingJelly014PLIF",
    "SpikingJellyIF",
    "SpikingJellyLIF",
    "SpikingJellyPLIF",
    "Surrogate",
    "CallSpec",
    "available_backends",
    "available_surrogates",
    "multistep",
    "register_backend",
    "register_surrogate",
    "resolve_backend",
]
