"""Surrogate gradients: the derivative used in place of the Heaviside step's in the backward pass.

The forward pass of every spiking neuron is a step function ``s = H(z)`` with ``z = h - threshold``; its
true derivative is zero almost everywhere, so training uses a smooth stand-in ``sigma'(z)``. Each surrogate
here is the derivative formula of one published function, with the parameter ``alpha`` that sets its width,
written so that it matches both snnTorch 1.0 (``snntorch.surrogate``) and SpikingJelly 2.0
(``spikingjelly.activation_based.surrogate``) where they implement the same function:

=================  ===========================================  ==========  ====================================
name               sigma'(z)                                    default     library equivalents
=================  ===========================================  ==========  ====================================
``atan``           alpha / 2 / (1 + (pi/2 * alpha * z)^2)       alpha=2     snnTorch ``atan(alpha)``,
                                                                            SpikingJelly ``ATan(alpha)``
``sigmoid``        alpha * sig(alpha z) * (1 - sig(alpha z))    alpha=4     snnTorch ``sigmoid(slope)``,
                                                                            SpikingJelly ``Sigmoid(alpha)``
``fast_sigmoid``   1 / (alpha * |z| + 1)^2                      alpha=25    snnTorch ``fast_sigmoid(slope)``;
                                                                            SuperSpike (Zenke & Ganguli 2018)
``triangle``       max(0, alpha - alpha^2 * |z|)                alpha=1     SpikingJelly
                                                                            ``PiecewiseQuadratic(alpha)``
=================  ===========================================  ==========  ====================================

``superspike`` is an alias of ``fast_sigmoid``. A new surrogate is one call to :func:`register_surrogate`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

GradFn = Callable[[torch.Tensor, float], torch.Tensor]

# name -> (sigma', sigma, default alpha); sigma is the smooth function whose derivative sigma' is
_REGISTRY: dict[str, tuple[GradFn, GradFn, float]] = {}
_ALIASES = {"superspike": "fast_sigmoid"}


@dataclass(frozen=True)
class Surrogate:
    """A surrogate gradient by name and width parameter, e.g. ``Surrogate("atan", 2.0)``.

    >>> Surrogate("atan").alpha
    2.0
    >>> Surrogate.parse("sigmoid:25")
    Surrogate(name='sigmoid', alpha=25.0)
    """

    name: str = "atan"
    alpha: float | None = None

    def __post_init__(self) -> None:
        name = _ALIASES.get(self.name, self.name)
        if name not in _REGISTRY:
            raise ValueError(
                f"unknown surrogate {self.name!r}; expected one of {available_surrogates()}"
            )
        object.__setattr__(self, "name", name)
        alpha = _REGISTRY[name][2] if self.alpha is None else float(self.alpha)
        if not math.isfinite(alpha) or alpha <= 0:
            raise ValueError(f"expected surrogate alpha > 0, got {self.alpha!r} for {name!r}")
        object.__setattr__(self, "alpha", alpha)

    @classmethod
    def parse(cls, spec: "str | Surrogate") -> "Surrogate":
        """Accept a Surrogate, a name (``"atan"``) or ``"name:alpha"`` (``"sigmoid:4"``)."""
        if isinstance(spec, Surrogate):
            return spec
        if not isinstance(spec, str):
            raise TypeError(f"expected a surrogate name such as 'atan' or 'sigmoid:4', got {type(spec).__name__}")
        name, _, alpha = spec.partition(":")
        return cls(name, float(alpha) if alpha else None)

    def grad(self, z: torch.Tensor) -> torch.Tensor:
        """sigma'(z), the surrogate derivative of H at ``z = h - threshold``."""
        return _REGISTRY[self.name][0](z, self.alpha)

    def primitive(self, z: torch.Tensor) -> torch.Tensor:
        """sigma(z), a smooth step whose derivative is :meth:`grad` (used by relaxed dynamics)."""
        return _REGISTRY[self.name][1](z, self.alpha)

    def gradient_carrier(self, z: torch.Tensor) -> torch.Tensor:
        """``f(z) - f(z).detach()``: zero in value, with the surrogate derivative as its gradient (``f`` the
        primitive, or a library's own spike function). Added to a Heaviside step, it gives autograd the
        surrogate gradient without changing a spike."""
        function = _FUNCTION_OF.get(self.name)
        carried = function(z) if function is not None else self.primitive(z)
        return carried - carried.detach()


def register_surrogate(name: str, grad_fn: GradFn, primitive_fn: GradFn, default_alpha: float) -> None:
    """Add a surrogate: ``grad_fn(z, alpha)`` returns sigma'(z), ``primitive_fn(z, alpha)`` sigma(z).

    Every backend must then support it (the reference backend does at once). The rectangular window of STBP
    (Wu et al. 2018), of width ``1 / alpha`` and area 1:

    >>> register_surrogate(
    ...     "boxcar",
    ...     lambda z, alpha: alpha * (z.abs() < 0.5 / alpha).to(z.dtype),
    ...     lambda z, alpha: (alpha * z + 0.5).clamp(0, 1),
    ...     default_alpha=1.0,
    ... )
    >>> z = torch.tensor([-0.5, -0.2, 0.0, 0.2, 0.5])
    >>> Surrogate.parse("boxcar:2").grad(z), Surrogate("boxcar", 2.0).primitive(z)
    (tensor([0., 2., 2., 2., 0.]), tensor([0.0000, 0.1000, 0.5000, 0.9000, 1.0000]))
    >>> _REGISTRY.pop("boxcar")[2]  # (the example takes it back out)
    1.0
    """
    _REGISTRY[name] = (grad_fn, primitive_fn, float(default_alpha))


#: library spike functions wrapped by :func:`surrogate_from_function`, by id (kept alive by this dict)
_FROM_FUNCTION: dict[int, tuple[Callable, str]] = {}

#: surrogate name -> the library spike function it wraps
_FUNCTION_OF: dict[str, Callable] = {}
#: names of surrogates whose derivative comes from a library's own function (only the reference backend runs them)
FUNCTION_PREFIX = "function:"


def surrogate_from_function(fn: Callable[[torch.Tensor], torch.Tensor], label: str) -> Surrogate:
    """A surrogate whose derivative is that of a library's own spike function ``fn(z)`` (e.g. a custom
    snnTorch ``spike_grad``), taken by autograd at every step of the backward.

    ``fn`` must be elementwise with a Heaviside forward; only its backward is used. Its surrogates are
    slower than the built-in formulas, and fused backends refuse them (``auto`` falls back to ``torch``).

    >>> def spike(z):  # a Heaviside step whose backward is the sigmoid's, slope 4
    ...     sig = torch.sigmoid(4 * z)
    ...     return (z >= 0).to(z.dtype) + sig - sig.detach()
    >>> surrogate = surrogate_from_function(spike, "my_spike")
    >>> surrogate.name.startswith("function:my_spike@"), surrogate.grad(torch.tensor([-0.5, 0.0, 0.5]))
    (True, tensor([0.4200, 1.0000, 0.4200]))
    >>> surrogate_from_function(spike, "my_spike") == surrogate  # one surrogate per function
    True
    """
    key = id(fn)
    if key not in _FROM_FUNCTION:
        name = f"{FUNCTION_PREFIX}{label}@{key:x}"
        _FROM_FUNCTION[key] = (fn, name)
        _FUNCTION_OF[name] = fn

        def grad(z: torch.Tensor, alpha: float) -> torch.Tensor:
            with torch.enable_grad():
                leaf = z.detach().requires_grad_()
                (g,) = torch.autograd.grad(fn(leaf), leaf, torch.ones_like(leaf))
            return g.to(z.dtype)

        def primitive(z: torch.Tensor, alpha: float) -> torch.Tensor:
            raise NotImplementedError(f"surrogate {name!r} (a library's own function) has no smooth primitive")

        register_surrogate(name, grad, primitive, 1.0)
    return Surrogate(_FROM_FUNCTION[key][1])


def available_surrogates() -> list[str]:
    """Names of the built-in and registered surrogates (not the wrapped library functions).

    >>> available_surrogates()
    ['atan', 'fast_sigmoid', 'sigmoid', 'triangle', 'superspike']
    >>> Surrogate("superspike")  # an alias
    Surrogate(name='fast_sigmoid', alpha=25.0)
    >>> Surrogate("erf")
    Traceback (most recent call last):
        ...
    ValueError: unknown surrogate 'erf'; expected one of ['atan', 'fast_sigmoid', 'sigmoid', 'triangle', 'superspike']
    """
    return sorted(n for n in _REGISTRY if not n.startswith(FUNCTION_PREFIX)) + sorted(_ALIASES)


def _atan(z: torch.Tensor, alpha: float) -> torch.Tensor:
    return alpha / 2 / (1 + (math.pi / 2 * alpha * z).square())


def _sigmoid(z: torch.Tensor, alpha: float) -> torch.Tensor:
    sig = torch.sigmoid(alpha * z)
    return alpha * sig * (1 - sig)


def _fast_sigmoid(z: torch.Tensor, alpha: float) -> torch.Tensor:
    return 1 / (alpha * z.abs() + 1).square()


def _triangle(z: torch.Tensor, alpha: float) -> torch.Tensor:
    return (alpha - alpha * alpha * z.abs()).clamp_min(0)


def _atan_primitive(z, alpha):
    return torch.atan(math.pi / 2 * alpha * z) / math.pi + 0.5


def _sigmoid_primitive(z, alpha):
    return torch.sigmoid(alpha * z)


def _fast_sigmoid_primitive(z, alpha):
    return z / (alpha * z.abs() + 1) + 0.5


def _triangle_primitive(z, alpha):
    inside = -(alpha**2) / 2 * z.abs() * z + alpha * z + 0.5
    return torch.where(z > 1 / alpha, torch.ones_like(z), torch.where(z < -1 / alpha, torch.zeros_like(z), inside))


register_surrogate("atan", _atan, _atan_primitive, 2.0)
register_surrogate("sigmoid", _sigmoid, _sigmoid_primitive, 4.0)
register_surrogate("fast_sigmoid", _fast_sigmoid, _fast_sigmoid_primitive, 25.0)
register_surrogate("triangle", _triangle, _triangle_primitive, 1.0)
