"""Whether a PyTorch mode watches the operations, and running out of its sight: the package's only use of
private torch API, kept in this one module.

Two things need it. A converted neuron whose engine computes exactly what the library's own code computes runs
the library's code while an op counter watches (:func:`ops_observed`), so SpikingJelly's ``op_counter`` and
``torch.utils.flop_counter`` count the model's operations, not the engine's. And the value checks run where no
counter sees them (:func:`unobserved`): a check is not part of the model.

PyTorch has no public API for either (checked on torch 2.13.0 and 2.14.1: ``torch.overrides`` exports no mode
query, ``torch.utils`` no dispatch-mode one). The private entry points used, and what is relied on:

- ``torch.utils._python_dispatch.is_in_torch_dispatch_mode(include_infra_modes=False)``: True inside a user's
  ``TorchDispatchMode`` (``FlopCounterMode``, SpikingJelly's ``DispatchCounterMode``), False inside PyTorch's
  own infrastructure modes (fake tensors, functionalization);
- ``torch.overrides._get_current_function_mode_stack()``: the ``TorchFunctionMode`` objects in force;
- ``torch.utils._device.DeviceContext``: the function mode that ``with torch.device(...)`` pushes (not an
  observer);
- ``torch.utils._python_dispatch._disable_current_modes()`` and ``torch._C.DisableTorchFunction()``: run a
  block with every dispatch mode popped and ``__torch_function__`` handling off;
  ``torch._C._len_torch_dispatch_stack()`` and ``torch._ops._len_torch_dispatch_stack_pre_dispatch()``:
  whether any dispatch mode is pushed at all (when none is, :func:`unobserved` has nothing to pop).

The fused CPU backend (:mod:`.cpu_backend`) compiles with inductor and needs three more, for which there is no
public API either: ``torch.fx.experimental._config.use_duck_shape = False`` (a symbol of its own for every size,
:func:`distinct_sizes`), ``torch._inductor.cpp_builder.get_cpp_compiler()`` and
``torch._inductor.config.cpp.cxx`` (whether inductor finds a C++ compiler, :func:`cpp_compiler_problem`), and
the inductor option names of :data:`EXACT_INDUCTOR_OPTIONS`, which ``torch.compile(options=...)`` takes but
does not document as stable.

``tests/test_torch_modes.py`` checks each of these behaviours against real modes; :data:`CHECKED_ON` names the
torch releases it passed on, and a test fails on any other release until it has been checked there.
"""

from __future__ import annotations

import contextlib
import os

import torch
from torch._ops import _len_torch_dispatch_stack_pre_dispatch
from torch.overrides import _get_current_function_mode_stack
from torch.utils import _python_dispatch
from torch.utils._device import DeviceContext

#: the torch releases (without a local build tag) on which tests/test_torch_modes.py passed
CHECKED_ON = ("2.13.0", "2.14.1")


def ops_observed() -> bool:
    """True while a PyTorch dispatch mode or function mode other than PyTorch's own machinery (fake tensors,
    tracing, ``with torch.device(...)``) watches the operations. Never while ``torch.compile`` traces.

    >>> from torch.utils.flop_counter import FlopCounterMode
    >>> with torch.device("cpu"):
    ...     print(ops_observed())
    False
    >>> with FlopCounterMode(display=False):
    ...     print(ops_observed())
    True
    """
    if torch.compiler.is_compiling():
        return False
    if _python_dispatch.is_in_torch_dispatch_mode(include_infra_modes=False):
        return True
    return any(not isinstance(mode, DeviceContext) for mode in _get_current_function_mode_stack())


class unobserved:
    """Run a block out of sight of any PyTorch dispatch or function mode (an op counter, a FLOP counter).

    A class rather than a generator context: it is entered at every engine call, and it pops the dispatch
    mode stacks only when a mode is pushed (the usual case has none; popping empty stacks cost about 14
    microseconds a call). ``__torch_function__`` handling is turned off either way, as before.

    >>> from torch.utils.flop_counter import FlopCounterMode
    >>> a = torch.ones(2, 2)
    >>> with FlopCounterMode(display=False) as counter:
    ...     _ = a @ a  # counted: 2 * 2 * 2 * 2 = 16 FLOPs
    ...     with unobserved():
    ...         _ = a @ a  # not counted
    >>> counter.get_total_flops()
    16
    """

    __slots__ = ("_inner",)

    def __enter__(self) -> None:
        self._inner = contextlib.ExitStack()
        if torch._C._len_torch_dispatch_stack() or _len_torch_dispatch_stack_pre_dispatch():
            self._inner.enter_context(_python_dispatch._disable_current_modes())
        self._inner.enter_context(torch._C.DisableTorchFunction())  # function modes and subclasses' handlers

    def __exit__(self, *exc) -> None:
        self._inner.__exit__(*exc)


#: inductor options under which compiled float arithmetic rounds as eager PyTorch's: no contraction of a
#: multiply and an add into an FMA, and every 16-bit intermediate rounded as eager code rounds it
EXACT_INDUCTOR_OPTIONS = {"emulate_precision_casts": True, "cpp.enable_floating_point_contract_flag": "off"}


def dispatch_observed() -> bool:
    """True while a user's dispatch mode (a FLOP counter, a debugging mode) sees every operation; PyTorch's own
    infrastructure modes (fake tensors, functionalization) do not count.

    >>> from torch.utils.flop_counter import FlopCounterMode
    >>> from torch._subclasses.fake_tensor import FakeTensorMode
    >>> with FakeTensorMode():
    ...     print(dispatch_observed())
    False
    >>> with FlopCounterMode(display=False):
    ...     print(dispatch_observed())
    True
    """
    return _python_dispatch.is_in_torch_dispatch_mode(include_infra_modes=False)


class distinct_sizes:
    """Trace with a symbol of its own for every size (dynamo's default gives equal sizes one symbol).

    Entered at every call of a compiled loop (a call may recompile): the flag is set and restored directly,
    where ``fx_config.patch`` would build a class per call.

    >>> from torch.fx.experimental import _config as fx_config
    >>> with distinct_sizes():
    ...     print(fx_config.use_duck_shape)
    False
    >>> fx_config.use_duck_shape
    True
    """

    __slots__ = ("_before",)

    def __enter__(self) -> None:
        from torch.fx.experimental import _config as fx_config

        self._before = fx_config.use_duck_shape
        fx_config.use_duck_shape = False

    def __exit__(self, *exc) -> None:
        from torch.fx.experimental import _config as fx_config

        fx_config.use_duck_shape = self._before


def cpp_compiler_problem() -> str | None:
    """None if inductor finds a C++ compiler, else what it searched and why it failed."""
    from torch._inductor import config, cpp_builder

    try:
        cpp_builder.get_cpp_compiler()
    except Exception as error:  # inductor raises InvalidCxxCompiler (or an OSError from the search)
        # torch 2.13 names its candidates in config.cpp.cxx; 2.14 has no such setting: name CXX, or g++
        try:
            cxx = config.cpp.cxx
        except AttributeError:
            cxx = None
        if cxx is None:
            cxx = [os.environ.get("CXX", "g++")]
        searched = [c for c in cxx if c is not None] if isinstance(cxx, (list, tuple)) else [cxx]
        return f"inductor found no C++ compiler (searched {searched}; set CXX to a g++ or clang++): {type(error).__name__}"
    return None
