"""The neurons the report's runs train, as small picklable specs: each names its parameters and builds a
:data:`~bsnn_lightning.models.NeuronFactory` with :meth:`factory`.

How the control rate enters each neuron (the BSNN experiment):

- plain LIF, ``h_t = (1 - 1/tau_m) v_{t-1} + x_t`` (SpikingJelly's LIF with ``decay_input=False``, soft
  reset): the one eigenvalue of every neuron is ``-1/tau_m``;
- bifurcation dynamics, ``tau_m du/dt = -u + P u + I`` (Zhang, Zhang & Zhou, JMLR 2021): the eigenvalues
  of the membrane dynamics are those of ``(P - I)/tau_m``. With ``mu`` the eigenvalues of ``P - I`` (what
  the network learns) the discrete eigenvalues are ``lambda = mu / tau_m``; ``mu`` starts spread over the
  package default ``[-0.8, 0]`` and is held in ``[-1, 0.2]``, so the neuron is built with
  ``eigen_init = (-0.8/tau_m, 0)`` and ``bounds = (-1/tau_m, 0.2/tau_m)``. The bound ``mu = -1`` (``P = 0``)
  is exactly the LIF neuron above: at every tau_m the bifurcation neuron contains plain LIF and adds
  slower, conservative and (slightly) diffusive modes. The parameter the package's neuron holds, and the
  optimiser moves, is ``lambda`` itself, so one optimiser step moves ``mu`` by tau_m times more than if
  ``mu`` were the parameter; the set of reachable dynamics is the same.

In both, the input gain ``1/tau_m`` of the continuous equation is folded into the weights of the layer
before the neuron, as ``docs/methods.md`` states for the bifurcation neuron (and that layer is followed by
batch norm in the convolutional blocks), so tau_m changes only the eigenvalues.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from ..models import NeuronFactory
from ..neuron_params import MethodSettings
from ..neurons import BifurcationNeuron, LIFNeuron

SWEEP_METHODS = ("LIF", "BSNN diagonal", "BSNN coupled")
EIGEN_INIT_MU = (-0.8, 0.0)  # eigenvalues of P - I at the start (the package default, tau_m = 1)
BOUNDS_MU = (-1.0, 0.2)  # and their clamp
_STRUCTURES = {"BSNN diagonal": "diagonal", "BSNN coupled": "coupled"}


@dataclass(frozen=True)
class SweepNeuron:
    """The control-rate sweep's neuron: plain LIF at ``tau``, or a bifurcation neuron (diagonal or coupled)
    with ``mu`` in :data:`BOUNDS_MU`, both / ``tau`` (see the module docstring)."""

    kind: ClassVar[str] = "sweep"
    method: str  # one of SWEEP_METHODS
    tau: float

    def __post_init__(self) -> None:
        if self.method not in SWEEP_METHODS:
            raise ValueError(f"expected a method in {list(SWEEP_METHODS)}, got {self.method!r}")

    @property
    def bounds_mu(self) -> tuple[float, float]:
        """The clamp of ``mu`` (a bifurcation neuron's; plain LIF's single eigenvalue sits at its lower end)."""
        return BOUNDS_MU

    def factory(self) -> NeuronFactory:
        tau = self.tau
        if self.method == "LIF":
            return lambda: LIFNeuron(tau=tau, decay_input=False, v_reset=None)
        structure = _STRUCTURES[self.method]
        eigen_init = (EIGEN_INIT_MU[0] / tau, EIGEN_INIT_MU[1] / tau)
        bounds = (BOUNDS_MU[0] / tau, BOUNDS_MU[1] / tau)
        return lambda: BifurcationNeuron(structure=structure, eigen_init=eigen_init, bounds=bounds)


@dataclass(frozen=True)
class ClampNeuron:
    """The sweep's diagonal bifurcation neuron at ``tau`` with ``mu`` clamped to ``[-1, upper_mu]`` (both / tau_m)."""

    kind: ClassVar[str] = "clamp"
    tau: float
    upper_mu: float

    def __post_init__(self) -> None:
        if not self.upper_mu >= EIGEN_INIT_MU[1]:
            raise ValueError(f"expected an upper bound of mu >= {EIGEN_INIT_MU[1]} (the top of eigen_init), got {self.upper_mu}")

    @property
    def bounds_mu(self) -> tuple[float, float]:
        return (BOUNDS_MU[0], self.upper_mu)

    def factory(self) -> NeuronFactory:
        eigen_init = (EIGEN_INIT_MU[0] / self.tau, EIGEN_INIT_MU[1] / self.tau)
        bounds = (BOUNDS_MU[0] / self.tau, self.upper_mu / self.tau)
        return lambda: BifurcationNeuron(structure="diagonal", eigen_init=eigen_init, bounds=bounds)


@dataclass(frozen=True)
class DefaultNeuron:
    """The diagonal ``BifurcationNeuron`` with the package's default eigenvalues and bounds (tau_m = 1, where
    ``lambda = mu``)."""

    kind: ClassVar[str] = "default"
    tau: ClassVar[float] = 1.0

    @property
    def bounds_mu(self) -> tuple[float, float]:
        return tuple(MethodSettings().bounds)

    def factory(self) -> NeuronFactory:
        return lambda: BifurcationNeuron(structure="diagonal")


@dataclass(frozen=True)
class ImpNeuron:
    """The LIF neuron of the IMP, LTS and TET experiments, with or without an IMP: ``reset="hard"`` is
    SpikingJelly's default LIF (``decay_input=True``, hard reset to 0; tau 2 by default), ``"soft"`` the
    sweep's (``decay_input=False``, soft reset)."""

    kind: ClassVar[str] = "imp"
    imp: str | None
    tau: float = 2.0
    reset: str = "hard"

    def __post_init__(self) -> None:
        if self.reset not in ("hard", "soft"):
            raise ValueError(f"expected reset 'hard' or 'soft', got {self.reset!r}")

    def factory(self) -> NeuronFactory:
        tau, imp = self.tau, self.imp
        if self.reset == "hard":
            return lambda: LIFNeuron(tau=tau, v_reset=0.0, imp=imp)
        return lambda: LIFNeuron(tau=tau, decay_input=False, v_reset=None, imp=imp)

    def describe(self) -> str:
        """The neuron in the report's words (without its IMP)."""
        if self.reset == "hard":
            return f"LIFNeuron(tau={self.tau:g}, hard reset to 0): SpikingJelly's default LIF"
        return f"LIFNeuron(tau={self.tau:g}, decay_input=False, v_reset=None): the sweep's LIF, soft reset"


NeuronSpec = SweepNeuron | ClampNeuron | DefaultNeuron | ImpNeuron
NEURON_SPECS = (SweepNeuron, ClampNeuron, DefaultNeuron, ImpNeuron)
