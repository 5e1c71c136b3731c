"""Converting a library's neuron in place: the same object keeps its place, class lineage and state dict.

A converted neuron's class is a subclass made on the fly, ``(LibraryMixin, OriginalClass)``, whose forward
runs the multistep engine instead of the library's loop. So ``isinstance(m, snntorch.Leaky)`` still holds,
the module tree and (with ``dynamics="lif"`` and no IMP) the ``state_dict`` keys are unchanged, the
library's own reset utilities still find the module, and nothing new is registered with the library.
:func:`restore_class` undoes it. Converted modules pickle and deep-copy (the class is rebuilt on load).

The library mixins (:class:`ConvertedNeuron` subclasses) only translate the library's state and arguments;
the methods' parameters (``imp``, ``eigenvalues``, ``basis``), their settings, monitoring and the engine call
come from :class:`~bsnn_lightning.neuron_params.MethodNeuron`, as for this package's own neurons.
"""

from __future__ import annotations

from types import FunctionType

from torch import nn

from ..engine.torch_modes import ops_observed
from ..neuron_params import ADDED_PARAMETERS, DERIVED_ATTRIBUTES, MethodNeuron, MethodSettings
from ..user_warnings import warn_user


class ConvertedNeuron(MethodNeuron):
    """The mixin every converted library neuron gets first in its MRO (see the module docstring).

    >>> import torch, bsnn_lightning as bl
    >>> from spikingjelly.activation_based import neuron
    >>> node = bl.convert(nn.Sequential(neuron.LIFNode()), "lif")[0]
    >>> [kind.__name__ for kind in type(node).__mro__[:4]]  # the mixins first, then the library's class
    ['LIFNode', 'ConvertedNode', 'ExplicitStateForward', 'ConvertedNeuron']
    >>> isinstance(node, ConvertedNeuron), isinstance(node, neuron.LIFNode)
    (True, True)
    >>> type(node)(tau=4.0)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    TypeError: LIFNode here is a class made by bsnn_lightning.convert for existing modules; build the library's ...
    """

    def __init__(self, *args, **kwargs):
        # conversion swaps an existing module's class and unpickling/deep copies rebuild without __init__, so only
        # a direct call gets here: e.g. a config that builds neurons from a class path (SpikingJelly's distributed
        # NeuronConfig) given a converted class
        kind = type(self)
        if library_class_of(kind) is kind:  # the mixin itself (ConvertedNode, ...), not a class convert made
            raise TypeError(
                f"{kind.__name__} is the mixin that bsnn_lightning.convert adds to a library neuron's class and "
                "cannot be built on its own; build the library's neuron (e.g. SpikingJelly's LIFNode, snnTorch's "
                "Leaky) and convert the model"
            )
        raise TypeError(
            f"{kind.__name__} here is a class made by bsnn_lightning.convert for existing modules; build the "
            f"library's own {library_class_of(kind).__qualname__} and convert the model (a converted neuron's "
            "IMP and eigenvalues are learned per module, not given as constructor arguments)"
        )

    def bsnn_runs_library_code(self) -> bool:
        """True if this call should run the library's own forward instead of the engine: when a tool watches
        the individual PyTorch operations (see :func:`ops_observed`) and the library's code computes exactly
        what the engine would (``dynamics="lif"``, no IMP, the library's own state precision). Op and energy
        counters (SpikingJelly's ``op_counter``, ``torch.utils.flop_counter``) then count the library's
        operations, as for the native model; the engine's are an implementation detail, not the model's."""
        settings = self.bsnn_settings
        return settings.dynamics == "lif" and self.imp is None and settings.state_dtype == "native" and ops_observed()

    def __reduce_ex__(self, protocol):
        # the class is made at run time: pickle the original class and rebuild the converted one on load
        return (_rebuild, (type(self).__bases__[0], type(self).__bases__[1]), self.__getstate__())

    def extra_repr(self) -> str:
        return ", ".join(p for p in (super().extra_repr(), self.bsnn_extra_repr()) if p)


_CLASSES: dict[tuple[type, type], type] = {}
_MADE: set[type] = set()  #: the classes converted_class made (a mixin alone is not one)


def converted_class(mixin: type, library_class: type) -> type:
    """The class ``(mixin, library_class)``, made once and cached; it keeps the library class's name.

    >>> from spikingjelly.activation_based import neuron
    >>> from bsnn_lightning.adapters.spikingjelly import ConvertedNode
    >>> kind = converted_class(ConvertedNode, neuron.LIFNode)
    >>> kind.__name__, kind.__bases__ == (ConvertedNode, neuron.LIFNode)
    ('LIFNode', True)
    >>> converted_class(ConvertedNode, neuron.LIFNode) is kind  # made once
    True
    """
    key = (mixin, library_class)
    if key not in _CLASSES:
        _CLASSES[key] = type(library_class.__name__, (mixin, library_class), {"__module__": mixin.__module__})
        _MADE.add(_CLASSES[key])
    return _CLASSES[key]


def library_class_of(kind: type) -> type:
    """The library's own class behind a converted class (the class itself if it is not one).

    >>> from spikingjelly.activation_based import neuron
    >>> from bsnn_lightning.adapters.spikingjelly import ConvertedNode
    >>> library_class_of(converted_class(ConvertedNode, neuron.LIFNode)) is neuron.LIFNode
    True
    >>> library_class_of(neuron.LIFNode) is neuron.LIFNode
    True
    >>> library_class_of(ConvertedNode) is ConvertedNode  # the mixin alone is no converted class
    True
    """
    made = next((k for k in kind.__mro__ if k in _MADE), None)
    return kind if made is None else made.__bases__[1]


def library_class(module: nn.Module) -> type:
    """The library's own class of a neuron, converted or not.

    >>> import bsnn_lightning as bl
    >>> from spikingjelly.activation_based import neuron
    >>> node = bl.convert(nn.Sequential(neuron.LIFNode()), "lif")[0]
    >>> type(node) is neuron.LIFNode, library_class(node) is neuron.LIFNode
    (False, True)
    """
    return type(module).__bases__[1] if isinstance(module, ConvertedNeuron) else type(module)


def same_equations(cls: type) -> type:
    """Declare that ``cls``, a subclass of a supported library neuron, computes its base class's equations: it
    only adds behaviour (an ``__init__`` with other defaults, new methods or attributes). ``convert`` then
    converts it as its base class; without this declaration a subclass is refused. A class decorator:

    >>> import torch, bsnn_lightning as bl
    >>> from spikingjelly.activation_based import neuron
    >>> @bl.same_equations
    ... class SlowLIF(neuron.LIFNode):  # other defaults, the same equations
    ...     def __init__(self, **kwargs):
    ...         super().__init__(tau=4.0, step_mode="m", **kwargs)
    >>> node = bl.convert(torch.nn.Sequential(SlowLIF()), "lif", backend="torch")[0]
    >>> isinstance(node, SlowLIF), node(torch.full((3, 1, 1), 2.0)).flatten().tolist()  # tau=2 fires at once
    (True, [0.0, 0.0, 1.0])

    ``convert`` still refuses a declared subclass that overrides a method of its base class (other than
    ``__init__`` and ``extra_repr``), since the converted neuron would bypass that method, and names it:

    >>> @bl.same_equations
    ... class Silent(neuron.LIFNode):
    ...     def single_step_forward(self, x):
    ...         return torch.zeros_like(x)
    >>> bl.convert(torch.nn.Sequential(Silent()), "lif")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    ValueError: cannot convert '0': ... overrides ['Silent.single_step_forward'] of spikingjelly LIFNode, ...
    """
    if not isinstance(cls, type) or not issubclass(cls, nn.Module):
        raise TypeError(f"same_equations expects a subclass of a library neuron class, got {cls!r}")
    _SAME_EQUATIONS.add(cls)
    return cls


#: classes declared with :func:`same_equations`
_SAME_EQUATIONS: set[type] = set()
#: methods a declared subclass may override: they do not compute the neuron
_HARMLESS_OVERRIDES = {"__init__", "extra_repr"}


def equations_class(module: nn.Module) -> type:
    """The library class whose equations ``module`` computes: its own class, or for a subclass declared with
    :func:`same_equations`, the nearest base class that is not declared.

    >>> from spikingjelly.activation_based import neuron
    >>> @same_equations
    ... class ShortLIF(neuron.LIFNode):
    ...     def __init__(self):
    ...         super().__init__(tau=1.5)
    >>> equations_class(ShortLIF()) is neuron.LIFNode, equations_class(neuron.IFNode()) is neuron.IFNode
    (True, True)
    """
    return next(c for c in library_class(module).__mro__ if c not in _SAME_EQUATIONS)


def supported_base(module: nn.Module, library: str, supported: tuple[type, ...]) -> type:
    """The supported class whose equations ``module`` computes, or (for a neuron class that is not supported at
    all) its own class, which the adapter then refuses. Raises for a subclass of a supported class unless it was
    declared with :func:`same_equations` and overrides no method of its base.

    A subclass may change the equations (its forward, charge, fire or reset, or the state it keeps) that the
    converted neuron replaces with the engine's, and nothing can tell from outside whether it does: converting
    it could compute something else than the subclass, silently. So it is refused, naming it.

    >>> from spikingjelly.activation_based import neuron
    >>> supported_base(neuron.LIFNode(), "spikingjelly", (neuron.LIFNode,)) is neuron.LIFNode
    True
    >>> class OwnLIF(neuron.LIFNode):
    ...     pass
    >>> supported_base(OwnLIF(), "spikingjelly", (neuron.LIFNode,))  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    ValueError: ...OwnLIF is a subclass of spikingjelly LIFNode, and a subclass may change the equations ...
    """
    cls = library_class(module)
    if cls in supported:
        return cls
    bases = [base for base in cls.__mro__[1:] if base in supported]
    if not bases:
        return cls
    base, name = bases[0], f"{cls.__module__}.{cls.__qualname__}"
    if equations_class(module) is not base:
        raise ValueError(
            f"{name} is a subclass of {library} {base.__name__}, and a subclass may change the equations (forward, "
            f"charge, fire, reset, state) that converting would replace with {base.__name__}'s: it is not converted. "
            f"Build the model with {library} {base.__name__} itself, keep the library's own neurons with "
            "backend='native', or, if the subclass only adds behaviour, declare it with "
            "@bsnn_lightning.same_equations"
        )
    overridden = sorted(
        f"{c.__name__}.{attr}"
        for c in cls.__mro__[: cls.__mro__.index(base)]
        for attr, value in vars(c).items()
        if attr not in _HARMLESS_OVERRIDES
        and hasattr(base, attr)
        and isinstance(value, (FunctionType, staticmethod, classmethod, property))
    )
    if overridden:
        raise ValueError(
            f"{name} is declared with same_equations but overrides {overridden} of {library} {base.__name__}, which "
            "the converted neuron would bypass: it is not converted. Move that behaviour out of the neuron, or keep "
            "the library's own neurons with backend='native'"
        )
    return base


def convert_in_place(module: nn.Module, mixin: type, settings: MethodSettings) -> nn.Module:
    """Swap ``module``'s class for the converted one (once) and apply ``settings``.

    >>> import torch
    >>> from spikingjelly.activation_based import neuron
    >>> from bsnn_lightning.adapters.spikingjelly import ConvertedNode
    >>> node = neuron.LIFNode(step_mode="m")
    >>> convert_in_place(node, ConvertedNode, MethodSettings()) is node, isinstance(node, ConvertedNode)
    (True, True)
    >>> node(torch.full((3, 1, 1), 1.5)).flatten().tolist()  # the engine's LIF: the library's spikes
    [0.0, 1.0, 0.0]
    """
    if isinstance(module, ConvertedNeuron):
        module.bsnn_configure(settings)
    else:
        module.__class__ = converted_class(mixin, type(module))
        module.bsnn_setup(settings)
    return module


def warn_autograd_surrogate(neuron: str, surrogate: str) -> None:
    """The one warning a conversion gives for a surrogate with no built-in formula.

    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn_autograd_surrogate("Leaky '0'", "triangular")
    >>> caught[0].category.__name__, str(caught[0].message).split(":")[0]
    ('UserWarning', "Leaky '0' uses the surrogate triangular, which has no built-in formula")
    """
    warn_user(
        f"{neuron} uses the surrogate {surrogate}, which has no built-in formula: its derivative is taken from "
        "it by autograd, in the reference ('torch') backend only"
    )


def check_restorable(module: nn.Module) -> None:
    """Raise unless ``module`` is native already or a converted module without added parameters.

    >>> import bsnn_lightning as bl
    >>> from spikingjelly.activation_based import neuron
    >>> check_restorable(neuron.LIFNode())  # native: nothing to undo
    >>> node = bl.convert(nn.Sequential(neuron.LIFNode()), "lif", imp="layer")[0]
    >>> check_restorable(node)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    ValueError: cannot return converted LIFNode to its native implementation: it holds the added parameters ['imp']; ...
    """
    if not isinstance(module, ConvertedNeuron):
        return
    added = [name for name in ADDED_PARAMETERS if getattr(module, name) is not None]
    if added:
        raise ValueError(
            f"cannot return converted {type(module).__name__} to its native implementation: it holds the added "
            f"parameters {added}; convert with dynamics='lif', imp='none' first, or rebuild the model"
        )


def restore_class(module: nn.Module) -> nn.Module:
    """Give a converted module its library class back (it must hold no added parameters).

    >>> import bsnn_lightning as bl
    >>> from spikingjelly.activation_based import neuron
    >>> node = bl.convert(nn.Sequential(neuron.LIFNode()), "lif")[0]
    >>> restore_class(node) is node, type(node) is neuron.LIFNode
    (True, True)
    """
    check_restorable(module)
    if not isinstance(module, ConvertedNeuron):
        return module
    for name in ADDED_PARAMETERS:
        del module._parameters[name]
    for name in ("bsnn_settings", "bsnn_sample_shape", "bsnn_seen_shape", *DERIVED_ATTRIBUTES):
        module.__dict__.pop(name, None)
    module.__class__ = library_class(module)
    return module


def _rebuild(mixin: type, library_class: type):
    return object.__new__(converted_class(mixin, library_class))
