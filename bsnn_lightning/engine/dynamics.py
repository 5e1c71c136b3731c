"""Neuron dynamics: one discrete step forward, and its exact derivative backward.

Each dynamics is a frozen dataclass of static choices (reset mode, surrogate, ...) with three pure step
functions over explicit state, in the order every backend follows::

    h_t = charge(x_t, v_{t-1})     # integrate the input
    s_t = fire(h_t)                # spike: Heaviside of h_t - threshold (surrogate gradient backward)
    v_t = reset(h_t, s_t)          # the state carried to the next step

and ``backward_step``, the vector-Jacobian product of one step, which the reference backend
(:mod:`bsnn_lightning.engine.reference`) runs in reverse time. Learnable quantities (tau, beta, threshold,
eigenvalues, ...) are not stored here: they arrive in ``p``, a dict of Python floats or tensors that
broadcast against one time step ``[N, ...]``. The backward needs only the charged potentials ``h`` of every
step (and the initial state), from which it recomputes spikes and the previous states; a dynamics whose
state does not follow from ``h`` alone (``state_from_charge = False``) has its states saved as well.

Choices that change the equations are classes, not flags, so that each class has one forward and one
backward and a backend says what it runs by listing classes: snnTorch's delayed reset
(:class:`SnnTorchLeaky`) and its immediate one (:class:`SnnTorchLeakyImmediate`); snnTorch ``Synaptic``'s
reset to zero of the charged membrane (:class:`SnnTorchSynapticZero`, :class:`SnnTorchSynapticZeroImmediate`);
SpikingJelly 2.0's LIF and PLIF charge (:class:`SpikingJellyLIF`, :class:`SpikingJellyPLIF`) and 0.0.0.0.14's
product form of it (:class:`SpikingJelly014LIF`, :class:`SpikingJelly014PLIF`); a diagonal
(:class:`DiagonalBifurcation`) and a coupled (:class:`CoupledBifurcation`) :class:`Bifurcation`.

The arithmetic is written in the same order as the libraries whose semantics each class reproduces, so
that a converted model's spikes equal the library's own bit for bit.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, ClassVar, Literal

import torch

from .surrogates import Surrogate

ParamGrads = dict[str, torch.Tensor]


_STATE_DTYPES = (None, torch.float32, torch.float64, torch.float16, torch.bfloat16)


@dataclass(frozen=True)
class Dynamics:
    """Base of every dynamics: subclasses define the three step functions and their backward.

    >>> DiagonalBifurcation.param_names, CoupledBifurcation.matrix_params
    (('eigenvalues', 'threshold'), ('coupling',))
    """

    surrogate: Surrogate = field(default_factory=Surrogate)
    #: replace the Heaviside step by the surrogate's primitive in the forward pass: a smooth relaxation
    #: whose exact derivative the backward computes, so ``torch.autograd.gradcheck`` can verify it
    relaxed: bool = False
    #: the dtype of the state and of every step's arithmetic. None (the default): float32, or float64 for
    #: float64 inputs. A 16-bit dtype reproduces a library that keeps its membrane in the input's precision
    #: (SpikingJelly's LIF and IF under mixed precision): every operation of a step then rounds to that dtype,
    #: as eager PyTorch does, so the spikes equal that library's bit for bit.
    state_dtype: torch.dtype | None = None
    #: spikes carry the surrogate gradient for autograd: ``H(z) + (sigma(z) - sigma(z).detach())``, exactly
    #: ``H(z)`` in value, so a plain loop over the step functions is differentiable without a hand-written
    #: backward (the reference backend runs this way while ``torch.compile`` traces it)
    autograd: bool = False
    #: names of the values ``p`` must hold; the engine checks them
    param_names: ClassVar[tuple[str, ...]] = ()
    #: the parameters that are ``[C, C]`` matrices acting on the channel dimension; the others are
    #: elementwise (per layer, per channel or per neuron)
    matrix_params: ClassVar[tuple[str, ...]] = ()
    #: True if ``v_t`` follows from ``h_t`` alone, so a backward can recompute states from the saved
    #: charged potentials; otherwise the reference backend saves the states too
    state_from_charge: ClassVar[bool] = True
    #: True if ``charge`` divides by a parameter at every step (SpikingJelly's LIF: ``/ tau``, a division so
    #: that it rounds as the library does): a vector division is slow on a CPU, so the ``cpu`` backend saves
    #: such a dynamics' charged potentials for the backward instead of charging again there from ``x``
    charge_divides: ClassVar[bool] = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "surrogate", Surrogate.parse(self.surrogate))
        if self.state_dtype not in _STATE_DTYPES:
            raise ValueError(
                f"expected state_dtype None or one of {[str(d) for d in _STATE_DTYPES[1:]]}, got {self.state_dtype!r}"
            )

    def compute_dtype(self, x_dtype: torch.dtype) -> torch.dtype:
        """The dtype the state and the step arithmetic use for an input of ``x_dtype``."""
        return self.state_dtype or torch.promote_types(x_dtype, torch.float32)

    def _step(self, z: torch.Tensor, strict: bool) -> torch.Tensor:
        """H(z) as 0/1 in z's dtype (``strict``: spike only when z > 0), or sigma(z) when relaxed."""
        if self.relaxed:
            return self.surrogate.primitive(z)
        return (z > 0 if strict else z >= 0).to(z.dtype)

    def _above(self, h: torch.Tensor, threshold, strict: bool) -> torch.Tensor:
        """H(h - threshold), compared directly (for finite values ``h - th >= 0`` iff ``h >= th``, so the
        result is the same and one pass over memory cheaper), or sigma(h - threshold) when relaxed; with
        :attr:`autograd`, carrying the surrogate gradient."""
        if self.relaxed:
            return self.surrogate.primitive(h - threshold)
        spikes = (h > threshold if strict else h >= threshold).to(h.dtype)
        if self.autograd:
            spikes = spikes + self.surrogate.gradient_carrier(h - threshold)
        return spikes

    def _reset_spikes(self, s: torch.Tensor, detach: bool) -> torch.Tensor:
        """The spikes as a reset uses them: without their gradient when ``detach`` (``detach_reset``); only
        the autograd form has a gradient to cut."""
        return s.detach() if detach and self.autograd else s

    def resting_state(self) -> float:
        """The state a sequence starts from when no initial state is given."""
        return 0.0

    def charge(self, x: torch.Tensor, v: torch.Tensor, p: dict) -> torch.Tensor:
        raise NotImplementedError

    def fire(self, h: torch.Tensor, p: dict) -> torch.Tensor:
        raise NotImplementedError

    def reset(self, h: torch.Tensor, s: torch.Tensor, p: dict, v_prev: torch.Tensor | None = None) -> torch.Tensor:
        """The state after the step; ``v_prev`` (the state before it) is needed only by dynamics whose
        :attr:`state_from_charge` is False."""
        raise NotImplementedError

    def backward_step(
        self,
        gs: torch.Tensor,
        gv: torch.Tensor,
        h: torch.Tensor,
        v_prev: Callable[[], torch.Tensor],
        p: dict,
        needs: frozenset[str],
    ) -> tuple[torch.Tensor, torch.Tensor, ParamGrads]:
        """Given dL/ds_t and dL/dv_t, return dL/dx_t, dL/dv_{t-1} and dL/dparam (elementwise, unreduced).

        ``v_prev()`` recomputes the state before the step; call it only when a gradient needs it.
        """
        raise NotImplementedError


@dataclass(frozen=True)
class _FireThenReset(Dynamics):
    """Spike when ``h >= threshold``, then reset the potential that fired (SpikingJelly's order).

    hard reset (``v_reset`` a number): ``v = s * v_reset + (1 - s) * h``;
    soft reset (``v_reset=None``):     ``v = h - s * threshold``.
    ``detach_reset`` stops the gradient through ``s`` in the reset (not through the spike output).
    """

    v_reset: float | None = 0.0
    detach_reset: bool = False

    def resting_state(self) -> float:
        return 0.0 if self.v_reset is None else float(self.v_reset)

    def fire(self, h, p):
        return self._above(h, p["threshold"], strict=False)

    def reset(self, h, s, p, v_prev=None):
        s = self._reset_spikes(s, self.detach_reset)
        if self.v_reset is None:
            return h - s * p["threshold"]
        return s * self.v_reset + (1.0 - s) * h

    def _reset_backward(self, gs, gv, h, p, needs):
        """dL/dh through fire and reset, and dL/dthreshold (elementwise) if asked."""
        threshold = p["threshold"]
        z = h - threshold
        sg = self.surrogate.grad(z)
        # the spike itself is needed by a hard reset and by the threshold's gradient only
        s = self._step(z, strict=False) if self.v_reset is not None or "threshold" in needs else None
        if self.v_reset is None:
            dv_dh = 1.0 if self.detach_reset else 1.0 - threshold * sg
        else:
            dv_dh = 1.0 - s
            if not self.detach_reset:
                dv_dh = dv_dh - (h - self.v_reset) * sg if self.v_reset else dv_dh - h * sg
        gh = gs * sg + (gv if isinstance(dv_dh, float) else gv * dv_dh)  # dv_dh is the float 1.0 or a tensor
        grads: ParamGrads = {}
        if "threshold" in needs:
            if self.v_reset is None:
                dv_dth = -s if self.detach_reset else threshold * sg - s
            else:
                dv_dth = 0.0 if self.detach_reset else (h - self.v_reset) * sg
            grads["threshold"] = gv * dv_dth - gs * sg
        return gh, grads


@dataclass(frozen=True)
class SpikingJellyLIF(_FireThenReset):
    """LIF with SpikingJelly's semantics (``spikingjelly.activation_based.neuron.LIFNode``).

    decay_input=True:  ``h_t = v_{t-1} + (x_t - (v_{t-1} - v_reset)) / tau``
    decay_input=False: ``h_t = v_{t-1} - (v_{t-1} - v_reset) / tau + x_t``
    then ``s_t = H(h_t - threshold)`` (spike when equal) and the hard or soft reset of
    :class:`_FireThenReset`; a soft reset charges towards 0. Parameters: ``tau``, ``threshold``.

    >>> from bsnn_lightning.engine import multistep
    >>> params = {"tau": 2.0, "threshold": 1.0}
    >>> multistep(torch.full((4, 1, 1), 1.5), SpikingJellyLIF(), params, backend="torch").spikes.flatten().tolist()
    [0.0, 1.0, 0.0, 1.0]
    """

    surrogate: Surrogate = field(default_factory=lambda: Surrogate("sigmoid", 4.0))
    decay_input: bool = True
    param_names: ClassVar[tuple[str, ...]] = ("tau", "threshold")
    charge_divides: ClassVar[bool] = True

    def charge(self, x, v, p):
        tau = p["tau"]
        rest = 0.0 if self.v_reset is None else self.v_reset
        if self.decay_input:
            return v + (x - (v - rest)) / tau
        return v - (v - rest) / tau + x

    def backward_step(self, gs, gv, h, v_prev, p, needs):
        tau = p["tau"]
        gh, grads = self._reset_backward(gs, gv, h, p, needs)
        gh_over_tau = gh / tau
        gx = gh_over_tau if self.decay_input else gh
        gv_prev = gh - gh_over_tau
        if "tau" in needs:
            v = v_prev()
            if self.decay_input:  # dh/dtau = -(x - (v - rest)) / tau^2 = -(h - v) / tau
                grads["tau"] = -gh * (h - v) / tau
            else:  # dh/dtau = (v - rest) / tau^2
                rest = 0.0 if self.v_reset is None else self.v_reset
                grads["tau"] = gh * (v - rest) / (tau * tau)
        return gx, gv_prev, grads


@dataclass(frozen=True)
class _SnnTorchCharge(Dynamics):
    """What snnTorch 1.0's ``Leaky`` does before its reset: the delayed reset inside the charge, and the
    strict, graded spike. The delayed reset is decided from the previous step's membrane, detached::

        r_t = H(u_{t-1} - threshold)                   (strict, no gradient)
        subtract: h_t = clamp(beta, 0, 1) * u_{t-1} + x_t - r_t * threshold
        zero:     h_t = clamp(beta, 0, 1) * ((1 - r_t) * u_{t-1}) + x_t
        none:     h_t = clamp(beta, 0, 1) * u_{t-1} + x_t
        s_t = graded * H(h_t - threshold)              (spike only when strictly above)

    With the delayed reset alone (:meth:`reset`) the state carried is ``u_t = h_t``. Parameters: ``beta``,
    ``threshold``, ``graded`` (the graded spike factor).
    """

    surrogate: Surrogate = field(default_factory=lambda: Surrogate("atan", 2.0))
    reset_mechanism: Literal["subtract", "zero", "none"] = "subtract"
    param_names: ClassVar[tuple[str, ...]] = ("beta", "threshold", "graded")
    #: the reset mechanisms this class accepts
    mechanisms: ClassVar[tuple[str, ...]] = ("subtract", "zero", "none")

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.reset_mechanism not in self.mechanisms:
            *rest, last = (repr(m) for m in self.mechanisms)
            expected = f"{', '.join(rest)} or {last}"
            raise ValueError(f"expected reset_mechanism {expected}, got {self.reset_mechanism!r}")

    def _delayed(self, v, threshold):
        return (v > threshold).to(v.dtype)  # H(v - threshold), strict, detached

    def charge(self, x, v, p):
        beta, threshold = _clamp01(p["beta"]), p["threshold"]
        if self.reset_mechanism == "none":
            return beta * v + x
        r = self._delayed(v, threshold)
        if self.reset_mechanism == "subtract":
            return beta * v + x - r * threshold
        return beta * ((1 - r) * v) + x

    def fire(self, h, p):
        return self._above(h, p["threshold"], strict=True) * p["graded"]

    def reset(self, h, s, p, v_prev=None):
        """The delayed reset only (snnTorch's default, ``reset_delay=True``): it is already inside the next
        step's charge, so the state carried is ``u_t = h_t``. The immediate-reset dynamics override this."""
        return h

    def _charge_backward(self, gs, gh, z, sg, u_prev, r, p, needs) -> tuple[torch.Tensor, ParamGrads]:
        """Given dL/dh_t: dL/du_{t-1} and the gradients of beta, graded and threshold through the charge
        and the spike (``r`` is the delayed reset, needed for "zero" and for subtract's threshold)."""
        beta, threshold, graded = p["beta"], p["threshold"], p["graded"]
        keep = 1.0 - r if self.reset_mechanism == "zero" else 1.0  # dh/du_{t-1} = clamp(beta) * keep
        grads: ParamGrads = {}
        if "threshold" in needs:
            grads["threshold"] = -gs * graded * sg  # through the spike
            if self.reset_mechanism == "subtract":  # dh/dthreshold = -r
                grads["threshold"] = grads["threshold"] - r * gh
        if "graded" in needs:
            grads["graded"] = gs * self._step(z, strict=True)
        if "beta" in needs:
            grads["beta"] = gh * (keep * u_prev) * _clamp01_mask(beta)
        gv_prev = gh * _clamp01(beta) if self.reset_mechanism != "zero" else gh * _clamp01(beta) * keep
        return gv_prev, grads

    def _needs_delayed(self, needs) -> bool:
        return self.reset_mechanism == "zero" or (self.reset_mechanism == "subtract" and "threshold" in needs)


@dataclass(frozen=True)
class SnnTorchLeaky(_SnnTorchCharge):
    """LIF with snnTorch 1.0's ``Leaky`` semantics and its default delayed reset (``reset_delay=True``).

    The charge and spike of :class:`_SnnTorchCharge` (reset mechanism "subtract", "zero" or "none"); the
    reset is already inside the next step's charge, so the state carried is ``u_t = h_t``.

    >>> from bsnn_lightning.engine import multistep
    >>> params = {"beta": 0.9, "threshold": 1.0, "graded": 1.0}
    >>> multistep(torch.full((4, 1, 1), 0.6), SnnTorchLeaky(), params, backend="torch").spikes.flatten().tolist()
    [0.0, 1.0, 0.0, 1.0]
    """

    def backward_step(self, gs, gv, h, v_prev, p, needs):
        threshold, graded = p["threshold"], p["graded"]
        z = h - threshold
        sg = self.surrogate.grad(z)
        need_r = self._needs_delayed(needs)
        u_prev = v_prev() if need_r or "beta" in needs else None
        r = self._delayed(u_prev, threshold) if need_r else None
        gh = gs * graded * sg + gv  # du_t/dh_t = 1
        gv_prev, grads = self._charge_backward(gs, gh, z, sg, u_prev, r, p, needs)
        return gh, gv_prev, grads


@dataclass(frozen=True)
class SnnTorchLeakyImmediate(_SnnTorchCharge):
    """snnTorch 1.0's ``Leaky(reset_delay=False)``: the delayed reset of :class:`_SnnTorchCharge`, and the
    reset also applied at once, minus the delayed part already applied (snnTorch's "avoid double reset"),
    with a gradient through the spike::

        subtract: u_t = h_t - (s_t / graded - r_t) * threshold
        zero:     u_t = h_t - (s_t / graded - r_t) * h_t

    ``u_t`` needs ``r_t``, hence ``u_{t-1}``, besides ``h_t``: the reference backend saves the states.
    With no reset there is nothing immediate, and the dynamics is :class:`SnnTorchLeaky`'s "none".
    Parameters: ``beta``, ``threshold``, ``graded``.

    >>> from bsnn_lightning.engine import multistep
    >>> params = {"beta": 0.9, "threshold": 1.0, "graded": 1.0}
    >>> multistep(torch.full((4, 1, 1), 0.6), SnnTorchLeakyImmediate(), params, backend="torch").spikes.flatten().tolist()
    [0.0, 1.0, 0.0, 1.0]
    """

    reset_mechanism: Literal["subtract", "zero"] = "subtract"
    mechanisms: ClassVar[tuple[str, ...]] = ("subtract", "zero")
    state_from_charge: ClassVar[bool] = False

    def __post_init__(self) -> None:
        if self.reset_mechanism == "none":
            raise ValueError(
                "SnnTorchLeakyImmediate needs reset_mechanism 'subtract' or 'zero'; with no reset there is "
                "nothing to apply at once and it equals SnnTorchLeaky(reset_mechanism='none')"
            )
        super().__post_init__()

    def reset(self, h, s, p, v_prev=None):
        if v_prev is None:
            raise ValueError("SnnTorchLeakyImmediate.reset needs the state before the step, v_prev")
        do_reset = s / p["graded"] - self._delayed(v_prev, p["threshold"])  # H(h_t - threshold) - r_t
        if self.reset_mechanism == "subtract":
            return h - do_reset * p["threshold"]
        return h - do_reset * h

    def backward_step(self, gs, gv, h, v_prev, p, needs):
        threshold, graded = p["threshold"], p["graded"]
        z = h - threshold
        sg = self.surrogate.grad(z)
        u_prev = v_prev()
        r = self._delayed(u_prev, threshold)
        fired = self._step(z, strict=True)  # H(h_t - threshold), whose derivative is sg
        if self.reset_mechanism == "subtract":  # du/dh = 1 - threshold * sg
            gh = gs * graded * sg + gv * (1 - threshold * sg)
        else:  # zero: u = h * (1 - (fired - r)), du/dh = 1 - (fired - r) - h * sg
            gh = gs * graded * sg + gv * (1 - (fired - r) - h * sg)
        gv_prev, grads = self._charge_backward(gs, gh, z, sg, u_prev, r, p, needs)
        if "threshold" in needs:  # the immediate reset's own dependence on the threshold
            if self.reset_mechanism == "subtract":  # du/dthreshold = threshold * sg - (fired - r)
                grads["threshold"] = grads["threshold"] + gv * (threshold * sg - (fired - r))
            else:  # du/dthreshold = h * sg
                grads["threshold"] = grads["threshold"] + gv * h * sg
        return gh, gv_prev, grads


@dataclass(frozen=True)
class _SnnTorchZeroCharged(_SnnTorchCharge):
    """The reset to zero of snnTorch 1.0's ``Synaptic`` (and ``RLeaky``): unlike ``Leaky``'s, which zeroes the
    previous membrane before the input is added, it zeroes the charged membrane, input included::

        r_t = H(u_{t-1} - threshold)                   (strict, no gradient)
        m_t = clamp(beta, 0, 1) * u_{t-1} + x_t
        h_t = m_t - m_t * r_t                          (0 when the delayed reset fires, else m_t)
        s_t = graded * H(h_t - threshold)              (spike only when strictly above)

    For ``Synaptic``, ``x_t`` is the synaptic current ``syn_t``. The derivatives of the charge:
    ``dh/dx = 1 - r``, ``dh/du_{t-1} = clamp(beta) (1 - r)``, ``dh/dbeta = (1 - r) u_{t-1}`` inside [0, 1];
    the threshold enters the charge only through the detached ``r_t``. Parameters: ``beta``, ``threshold``,
    ``graded``.
    """

    reset_mechanism: Literal["zero"] = "zero"
    mechanisms: ClassVar[tuple[str, ...]] = ("zero",)

    def __post_init__(self) -> None:
        if self.reset_mechanism != "zero":
            raise ValueError(
                f"{type(self).__name__} is snnTorch Synaptic's reset to zero, got reset_mechanism "
                f"{self.reset_mechanism!r}; with 'subtract' or 'none' its membrane is SnnTorchLeaky's "
                "(SnnTorchLeakyImmediate's for reset_delay=False) on the synaptic current"
            )
        super().__post_init__()

    def charge(self, x, v, p):
        m = _clamp01(p["beta"]) * v + x
        return m - m * self._delayed(v, p["threshold"])  # snnTorch: mem -= mem * reset

    def _zero_charge_backward(self, gs, gh, z, sg, u_prev, p, needs) -> tuple[torch.Tensor, torch.Tensor, ParamGrads]:
        """Given dL/dh_t: dL/dx_t, dL/du_{t-1} and the gradients of beta, graded and threshold through the
        charge and the spike."""
        beta, graded = p["beta"], p["graded"]
        gm = gh * (1.0 - self._delayed(u_prev, p["threshold"]))  # dL/dm_t = dL/dh_t (1 - r_t)
        grads: ParamGrads = {}
        if "threshold" in needs:
            grads["threshold"] = -gs * graded * sg  # through the spike only
        if "graded" in needs:
            grads["graded"] = gs * self._step(z, strict=True)
        if "beta" in needs:
            grads["beta"] = gm * u_prev * _clamp01_mask(beta)
        return gm, gm * _clamp01(beta), grads


@dataclass(frozen=True)
class SnnTorchSynapticZero(_SnnTorchZeroCharged):
    """snnTorch 1.0's ``Synaptic(reset_mechanism="zero")`` membrane with its default delayed reset: the charge
    of :class:`_SnnTorchZeroCharged` on the synaptic current ``x_t = syn_t``, and ``u_t = h_t``.

    (The synaptic current ``syn_t = clamp(alpha, 0, 1) syn_{t-1} + I_t`` does not depend on spikes; the
    converted neuron filters it before the engine runs the membrane. With reset "subtract" or "none" the
    membrane is :class:`SnnTorchLeaky`'s on ``syn_t``.) Parameters: ``beta``, ``threshold``, ``graded``.

    >>> from bsnn_lightning.engine import multistep
    >>> params = {"beta": 0.9, "threshold": 1.0, "graded": 1.0}
    >>> multistep(torch.full((4, 1, 1), 0.6), SnnTorchSynapticZero(), params, backend="torch").spikes.flatten().tolist()
    [0.0, 1.0, 0.0, 0.0]
    """

    def backward_step(self, gs, gv, h, v_prev, p, needs):
        z = h - p["threshold"]
        sg = self.surrogate.grad(z)
        gh = gs * p["graded"] * sg + gv  # du_t/dh_t = 1
        return self._zero_charge_backward(gs, gh, z, sg, v_prev(), p, needs)


@dataclass(frozen=True)
class SnnTorchSynapticZeroImmediate(_SnnTorchZeroCharged):
    """snnTorch 1.0's ``Synaptic(reset_mechanism="zero", reset_delay=False)``: the charge of
    :class:`_SnnTorchZeroCharged`, then the reset also applied at once, minus the delayed part already applied,
    with a gradient through the spike (as :class:`SnnTorchLeakyImmediate`'s "zero")::

        u_t = h_t - (s_t / graded - r_t) * h_t

    ``u_t`` needs ``r_t``, hence ``u_{t-1}``, besides ``h_t``: the reference backend saves the states.
    Parameters: ``beta``, ``threshold``, ``graded``.

    >>> from bsnn_lightning.engine import multistep
    >>> params = {"beta": 0.9, "threshold": 1.0, "graded": 1.0}
    >>> multistep(torch.full((4, 1, 1), 0.6), SnnTorchSynapticZeroImmediate(), params, backend="torch").spikes.flatten().tolist()
    [0.0, 1.0, 0.0, 1.0]
    """

    state_from_charge: ClassVar[bool] = False

    def reset(self, h, s, p, v_prev=None):
        if v_prev is None:
            raise ValueError("SnnTorchSynapticZeroImmediate.reset needs the state before the step, v_prev")
        do_reset = s / p["graded"] - self._delayed(v_prev, p["threshold"])  # H(h_t - threshold) - r_t
        return h - do_reset * h

    def backward_step(self, gs, gv, h, v_prev, p, needs):
        threshold = p["threshold"]
        z = h - threshold
        sg = self.surrogate.grad(z)
        u_prev = v_prev()
        fired = self._step(z, strict=True)  # H(h_t - threshold), whose derivative is sg
        # u = h (1 - (fired - r)): du/dh = 1 - (fired - r) - h sg, du/dthreshold = h sg (where r = 1, h = 0
        # whatever the inputs, and the charge's backward multiplies dL/dh by 1 - r = 0)
        gh = gs * p["graded"] * sg + gv * (1 - (fired - self._delayed(u_prev, threshold)) - h * sg)
        gx, gv_prev, grads = self._zero_charge_backward(gs, gh, z, sg, u_prev, p, needs)
        if "threshold" in needs:
            grads["threshold"] = grads["threshold"] + gv * h * sg
        return gx, gv_prev, grads


@dataclass(frozen=True)
class SpikingJellyPLIF(SpikingJellyLIF):
    """SpikingJelly's ``ParametricLIFNode``: LIF whose decay ``q = sigmoid(w) = 1 / tau`` multiplies::

        decay_input=True:  h_t = v_{t-1} + (x_t - (v_{t-1} - v_reset)) * q
        decay_input=False: h_t = v_{t-1} - (v_{t-1} - v_reset) * q + x_t

    Parameters: ``q`` (pass ``torch.sigmoid(w)``; the gradient reaches ``w`` through autograd), ``threshold``.

    >>> from bsnn_lightning.engine import multistep
    >>> x = torch.full((4, 1, 1), 1.5)
    >>> plif = multistep(x, SpikingJellyPLIF(), {"q": 0.5, "threshold": 1.0}, backend="torch").spikes
    >>> torch.equal(plif, multistep(x, SpikingJellyLIF(), {"tau": 2.0, "threshold": 1.0}, backend="torch").spikes)  # q = 1/tau
    True
    """

    param_names: ClassVar[tuple[str, ...]] = ("q", "threshold")
    charge_divides: ClassVar[bool] = False  # q multiplies

    def charge(self, x, v, p):
        q = p["q"]
        rest = 0.0 if self.v_reset is None else self.v_reset
        if self.decay_input:
            return v + (x - (v - rest)) * q
        return v - (v - rest) * q + x

    def backward_step(self, gs, gv, h, v_prev, p, needs):
        q = p["q"]
        gh, grads = self._reset_backward(gs, gv, h, p, needs)
        gh_q = gh * q
        gx = gh_q if self.decay_input else gh
        gv_prev = gh - gh_q
        if "q" in needs:
            v = v_prev()
            if self.decay_input:  # dh/dq = x - (v - rest) = (h - v) / q
                grads["q"] = gh * (h - v) / q
            else:  # dh/dq = -(v - rest)
                rest = 0.0 if self.v_reset is None else self.v_reset
                grads["q"] = -gh * (v - rest)
        return gx, gv_prev, grads


@dataclass(frozen=True)
class SpikingJelly014LIF(SpikingJellyLIF):
    """SpikingJelly 0.0.0.0.14's LIF charge with ``decay_input=False`` and a reset towards 0:
    ``h_t = v_{t-1} * (1 - 1/tau) + x_t`` (SpikingJelly 2.0 charges ``v_{t-1} - (v_{t-1} - v_reset) / tau + x_t``),
    then fire and reset as :class:`SpikingJellyLIF`; ``decay_input`` is not read. The SpikingJelly adapter picks
    it for the nodes that charge so.
    Parameters: ``tau``, ``threshold``.

    >>> from bsnn_lightning.engine import multistep
    >>> params = {"tau": 2.0, "threshold": 1.0}
    >>> multistep(torch.full((4, 1, 1), 0.6), SpikingJelly014LIF(), params, backend="torch").spikes.flatten().tolist()
    [0.0, 0.0, 1.0, 0.0]
    """

    charge_divides: ClassVar[bool] = False  # one division per call, not per neuron: ``decay``

    def decay(self, p):
        """The factor ``1 - 1/tau`` that multiplies the membrane (the triton backend computes it with this
        method too): for a Python-float tau in double, rounded once where it multiplies a tensor; for a tensor,
        ``1/tau`` and then ``1 - 1/tau`` each rounded to its dtype."""
        return 1.0 - 1.0 / p["tau"]

    def charge(self, x, v, p):
        return v * self.decay(p) + x

    def backward_step(self, gs, gv, h, v_prev, p, needs):
        tau = p["tau"]
        gh, grads = self._reset_backward(gs, gv, h, p, needs)
        if "tau" in needs:  # dh/dtau = v / tau^2
            grads["tau"] = gh * v_prev() / (tau * tau)
        return gh, gh * self.decay(p), grads


@dataclass(frozen=True)
class SpikingJelly014PLIF(SpikingJellyPLIF):
    """SpikingJelly 0.0.0.0.14's PLIF charge with ``decay_input=False`` and a reset towards 0:
    ``h_t = v_{t-1} * (1 - q) + x_t`` with ``q = sigmoid(w)``, then fire and reset as :class:`SpikingJellyPLIF`;
    ``decay_input`` is not read. Parameters: ``q``, ``threshold``.

    >>> from bsnn_lightning.engine import multistep
    >>> params = {"q": 0.5, "threshold": 1.0}  # for x = 0.6: h = 0.6, 0.9, 1.05 (fires), 0.6
    >>> multistep(torch.full((4, 1, 1), 0.6), SpikingJelly014PLIF(), params, backend="torch").spikes.flatten().tolist()
    [0.0, 0.0, 1.0, 0.0]
    """

    def decay(self, p):
        """The factor ``1 - q`` that multiplies the membrane (the triton backend computes it with this method
        too)."""
        return 1.0 - p["q"]

    def charge(self, x, v, p):
        return v * self.decay(p) + x

    def backward_step(self, gs, gv, h, v_prev, p, needs):
        gh, grads = self._reset_backward(gs, gv, h, p, needs)
        if "q" in needs:  # dh/dq = -v
            grads["q"] = -gh * v_prev()
        return gh, gh * self.decay(p), grads


@dataclass(frozen=True)
class SpikingJellyIF(_FireThenReset):
    """SpikingJelly's ``IFNode``: ``h_t = v_{t-1} + x_t``, then fire and reset as :class:`SpikingJellyLIF`.

    Parameters: ``threshold``.

    >>> from bsnn_lightning.engine import multistep
    >>> params = {"threshold": 1.0}  # for x = 0.6: h = v + x = 0.6, 1.2 (fires, resets to 0), 0.6, 1.2
    >>> multistep(torch.full((4, 1, 1), 0.6), SpikingJellyIF(), params, backend="torch").spikes.flatten().tolist()
    [0.0, 1.0, 0.0, 1.0]
    """

    surrogate: Surrogate = field(default_factory=lambda: Surrogate("sigmoid", 4.0))
    param_names: ClassVar[tuple[str, ...]] = ("threshold",)

    def charge(self, x, v, p):
        return v + x

    def backward_step(self, gs, gv, h, v_prev, p, needs):
        gh, grads = self._reset_backward(gs, gv, h, p, needs)
        return gh, gh, grads


@dataclass(frozen=True)
class Bifurcation(_FireThenReset):
    """Bifurcation dynamics (Zhang, Zhang & Zhou, "Bifurcation Spiking Neural Network", JMLR 2021): the base
    of :class:`DiagonalBifurcation` and :class:`CoupledBifurcation`, which alone can be constructed.

    The continuous membrane ``tau_m du/dt = -u + P u + I`` with a learnable self-connection ``P``,
    Euler-discretised with step 1 and the constant ``1/tau_m`` folded into the input weights::

        diagonal: h_t = (1 + clamp(lambda, lo, hi)) * v_{t-1} + x_t     lambda per neuron or per channel
        coupled:  h_t = A v_{t-1} + x_t,  A = Q diag(1 + lambda) Q^T acting on the channel dimension
        s_t = H(h_t - threshold),  v_t = h_t - s_t * threshold  (soft reset, the default; or a hard one)

    ``lambda`` are the eigenvalues of ``(P - I) / tau_m``: dissipative below 0, conservative at 0, energy
    diffusing above 0. Plain LIF (``decay_input=False``, reset to 0) is the special case
    ``lambda = -1/tau``. The guard against blow-up: diagonal eigenvalues are clamped to ``bounds`` in the
    forward pass (no gradient outside them, like snnTorch's clamp of beta); for the coupled structure the
    neuron module builds ``A`` from clamped eigenvalues and passes the matrix as the parameter ``coupling``.
    Fire and reset as :class:`_FireThenReset`. See ``docs/methods.md``.

    >>> Bifurcation()
    Traceback (most recent call last):
    ...
    TypeError: Bifurcation is a base class; construct DiagonalBifurcation or CoupledBifurcation
    """

    v_reset: float | None = None

    def __post_init__(self) -> None:
        if type(self) is Bifurcation:
            raise TypeError("Bifurcation is a base class; construct DiagonalBifurcation or CoupledBifurcation")
        super().__post_init__()


@dataclass(frozen=True)
class DiagonalBifurcation(Bifurcation):
    """``h_t = (1 + clamp(lambda, lo, hi)) * v_{t-1} + x_t``, then fire and reset as :class:`Bifurcation`.

    Parameters: ``eigenvalues`` (per layer, channel or neuron), ``threshold``; ``bounds = (lo, hi)``.

    >>> from bsnn_lightning.engine import multistep
    >>> params = {"eigenvalues": torch.tensor([0.0, -0.5]), "threshold": 1.0}  # conservative, then leaky
    >>> multistep(torch.full((4, 1, 2), 0.6), DiagonalBifurcation(), params, backend="torch").spikes[:, 0].T.tolist()
    [[0.0, 1.0, 0.0, 1.0], [0.0, 0.0, 1.0, 0.0]]
    """

    bounds: tuple[float, float] = (-1.0, 0.2)
    param_names: ClassVar[tuple[str, ...]] = ("eigenvalues", "threshold")

    def __post_init__(self) -> None:
        super().__post_init__()
        lo, hi = self.bounds
        if not lo < hi:
            raise ValueError(f"expected eigenvalue bounds (lo, hi) with lo < hi, got {self.bounds!r}")
        object.__setattr__(self, "bounds", (float(lo), float(hi)))

    def charge(self, x, v, p):
        return (1 + _clamp(p["eigenvalues"], *self.bounds)) * v + x

    def backward_step(self, gs, gv, h, v_prev, p, needs):
        gh, grads = self._reset_backward(gs, gv, h, p, needs)
        lam = p["eigenvalues"]
        gv_prev = gh * (1 + _clamp(lam, *self.bounds))  # dh/dv_{t-1} = 1 + clamp(lambda)
        if "eigenvalues" in needs:  # dh/dlambda = v_{t-1} inside the bounds, 0 outside
            lo, hi = self.bounds
            grads["eigenvalues"] = gh * v_prev() * ((lam >= lo) & (lam <= hi)).to(gh.dtype)
        return gh, gv_prev, grads


@dataclass(frozen=True)
class CoupledBifurcation(Bifurcation):
    """``h_t = A v_{t-1} + x_t`` with ``A`` a ``[C, C]`` matrix mixing channels, then fire and reset as
    :class:`Bifurcation`. The module that owns the eigenvalues builds ``A`` from clamped ones, so no bounds
    are applied here. Parameters: ``coupling`` (``A``), ``threshold``.

    >>> from bsnn_lightning.engine import multistep
    >>> params = {"coupling": torch.eye(2), "threshold": 1.0}  # Q diag(1 + lambda) Q^T with lambda = 0: h = v + x
    >>> multistep(torch.full((4, 1, 2), 0.6), CoupledBifurcation(), params, backend="torch").spikes[:, 0].T.tolist()
    [[0.0, 1.0, 0.0, 1.0], [0.0, 1.0, 0.0, 1.0]]
    """

    param_names: ClassVar[tuple[str, ...]] = ("coupling", "threshold")
    matrix_params: ClassVar[tuple[str, ...]] = ("coupling",)

    def charge(self, x, v, p):
        return _mix_channels(p["coupling"], v) + x

    def backward_step(self, gs, gv, h, v_prev, p, needs):
        gh, grads = self._reset_backward(gs, gv, h, p, needs)
        gv_prev = torch.einsum("ji,nj...->ni...", p["coupling"], gh)  # A^T gh (a gradient: any order)
        if "coupling" in needs:  # dL/dA_ij = sum over batch and space of gh_i * v_j
            grads["coupling"] = torch.einsum("ni...,nj...->ij", gh, v_prev())
        return gh, gv_prev, grads


def _mix_channels(matrix: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``out[n, i, ...] = sum_j matrix[i, j] * v[n, j, ...]``, summed in the order ``j = 0, 1, ..., C - 1``,
    every product and every partial sum rounded (no fused multiply-add).

    The order is fixed so that the result is defined to the bit: a matrix product sums in the order of the
    BLAS library underneath, which differs between CPU and GPU and between versions. The triton backend's
    coupled kernel sums in this order, and so gives the same state and spikes. It costs ``2C`` elementwise
    operations per step instead of one matrix product (the backward, which need only be exact to rounding,
    keeps the matrix product)."""
    column = matrix.reshape(*matrix.shape, *([1] * (v.dim() - 2)))  # [C, C, 1, ...]: column j broadcasts on v
    out = column[:, 0] * v[:, 0:1]
    for j in range(1, matrix.shape[1]):
        out = out + column[:, j] * v[:, j : j + 1]
    return out


def _clamp(value, lo: float, hi: float):
    """clamp for a tensor or a float parameter."""
    return value.clamp(lo, hi) if isinstance(value, torch.Tensor) else min(max(value, lo), hi)


def _clamp01(beta):
    return _clamp(beta, 0.0, 1.0)


def _clamp01_mask(beta):
    """The derivative of clamp(beta, 0, 1), as torch defines it (1 on the closed interval)."""
    return ((beta >= 0) & (beta <= 1)).to(beta.dtype)
