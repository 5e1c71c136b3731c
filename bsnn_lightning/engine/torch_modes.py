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
  block with every dispatch mode popped and ``__torch_function__`` handling off.

``tests/test_torch_modes.py`` checks each of these behaviours against real modes; :data:`CHECKED_ON` names the
torch releases it passed on, and a test fails on any other release until it has been checked there.
"""

from __future__ import annotations

import contextlib

import torch
from torch.overrides import _get_current_function_mode_stack
from torch.utils import _python_dispatch
from torch.utils._device import DeviceContext

#: the torch releases (without a local build tag) on which tests/test_torch_modes.py passed
CHECKED_ON = ("2.13.0", "2.14.1")


def ops_observed() -> bool:
    """True while a PyTorch dispatch mode or function mode other than PyTorch's own machinery (fake tensors,
    tracing, ``with torch.device(...)``) watches the operations. Never while ``torch.compile`` traces."""
    if torch.compiler.is_compiling():
        return False
    if _python_dispatch.is_in_torch_dispatch_mode(include_infra_modes=False):
        return True
    return any(not isinstance(mode, DeviceContext) for mode in _get_current_function_mode_stack())


@contextlib.contextmanager
def unobserved():
    """Run a block out of sight of any PyTorch dispatch or function mode (an op counter, a FLOP counter)."""
    with _python_dispatch._disable_current_modes(), torch._C.DisableTorchFunction():
        yield
