"""Whether the triton backend's kernels are compiled for a GPU or run by Triton's interpreter: decided here.

Triton reads the ``TRITON_INTERPRET`` environment variable when a kernel is *defined* (``@triton.jit`` returns an
interpreted function while it is on): its own library functions when ``triton.language`` is first imported
(``import lightning`` does that, and so ``import bsnn_lightning``), this package's kernels when a Triton call
first needs them (:mod:`.triton_kernels`, :mod:`.triton_coupled_kernels`). The two must agree, so the mode is
whatever the variable says when Triton is first imported, and it stays fixed for the process. The rule, which
:func:`choose_triton_mode` applies:

- ``"auto"`` (the default): a ``TRITON_INTERPRET`` already in the environment (the user's) is kept; without one,
  the kernels are interpreted where there is no CUDA GPU and compiled where there is one;
- ``"interpret"`` / ``"compile"`` force a mode (``bench/kernels_static.py`` compiles for sm_90 on a CPU);
- once Triton is imported, asking for the other mode raises: it could no longer take effect.

A user sets ``TRITON_INTERPRET=1`` in the shell to run the kernels on a CPU, or nothing. The test suite (the root
``conftest.py``) and the benchmarks (``bench/common.py``) call :func:`choose_triton_mode` before anything imports
Triton, loading this file on its own (it imports nothing of the package, whose import imports Triton), and a
subprocess gets its mode from :func:`environment_for`; nothing else in the package, ``bench/`` or ``tests/``
names the variable (``tests/test_triton_mode.py`` checks that).

    >>> choose_triton_mode("sideways")
    Traceback (most recent call last):
    ...
    ValueError: expected a Triton mode in ('auto', 'interpret', 'compile'), got 'sideways'
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

#: the environment variable Triton reads when a kernel is defined
VARIABLE = "TRITON_INTERPRET"
MODES = ("auto", "interpret", "compile")
#: the values Triton takes for "on" (case-insensitive); anything else is off
_ON = ("1", "true", "on", "yes", "y")
#: this package's kernel modules and a kernel each defines (what :func:`kernels_interpreted` inspects)
_KERNEL_MODULES = {
    "bsnn_lightning.engine.triton_kernels": "multistep_forward_kernel",
    "bsnn_lightning.engine.triton_coupled_kernels": "coupled_forward_kernel",
}


def interprets(mode: str = "auto", environ: Mapping[str, str] | None = None) -> bool:
    """Whether ``mode`` means the interpreter, in ``environ`` (default: this process's environment).

    >>> interprets("interpret"), interprets("compile")
    (True, False)
    >>> interprets("auto", {"TRITON_INTERPRET": "1"}), interprets("auto", {"TRITON_INTERPRET": "off"})
    (True, False)
    """
    if mode not in MODES:
        raise ValueError(f"expected a Triton mode in {MODES}, got {mode!r}")
    environ = os.environ if environ is None else environ
    if mode == "auto":
        if VARIABLE in environ:
            return environ[VARIABLE].strip().lower() in _ON
        import torch

        return not torch.cuda.is_available()
    return mode == "interpret"


def kernels_interpreted() -> bool | None:
    """Whether this package's kernels were defined interpreted (True) or compiled (False); None while none is.

    >>> kernels_interpreted() in (None, interprets())  # never the other mode than the one in force
    True
    """
    for module_name, kernel in _KERNEL_MODULES.items():
        module = sys.modules.get(module_name)
        if module is not None:
            return _interpreted(getattr(module, kernel))
    return None


def triton_interpreted() -> bool | None:
    """Whether Triton's own library functions were defined interpreted; None while Triton is not imported.

    >>> import bsnn_lightning  # imports Triton (through lightning)
    >>> triton_interpreted() == interprets()
    True
    """
    standard = sys.modules.get("triton.language.standard")
    return None if standard is None else _interpreted(standard.cdiv)


def _interpreted(function) -> bool:
    from triton.runtime.interpreter import InterpretedFunction

    return isinstance(function, InterpretedFunction)


def choose_triton_mode(mode: str = "auto") -> bool:
    """Set this process's Triton mode (the rule is in the module's docstring); returns whether it interprets.

    Call it before Triton is first imported (at the top of a script, before ``import bsnn_lightning``); after
    that it only confirms the mode in force and raises for the other one.

    >>> import bsnn_lightning  # Triton is imported now: its mode is fixed
    >>> choose_triton_mode() == interprets()  # "auto" confirms it
    True
    >>> choose_triton_mode("compile" if interprets() else "interpret")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
        ...
    RuntimeError: Triton mode ... but Triton is already imported ...
    """
    interpret = interprets(mode)
    defined = kernels_interpreted()
    if defined is None:
        defined = triton_interpreted()
    if defined is not None and defined != interpret:
        raise RuntimeError(
            f"Triton mode {mode!r} asks for {'interpreted' if interpret else 'compiled'} kernels, but Triton is "
            f"already imported {'interpreted' if defined else 'compiled'}, and it fixes that when it defines its "
            "functions; choose the mode before Triton is first imported (before import bsnn_lightning or lightning)"
        )
    os.environ[VARIABLE] = "1" if interpret else "0"
    return interpret


def environment_for(mode: str, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """A copy of ``base`` (default: this process's environment) with a child process's Triton mode set
    (``"auto"``: decided here, as :func:`choose_triton_mode` would).

    >>> environment_for("compile", {"PATH": "/usr/bin"})
    {'PATH': '/usr/bin', 'TRITON_INTERPRET': '0'}
    >>> environment_for("auto", {"TRITON_INTERPRET": "yes"})  # the user's setting is kept
    {'TRITON_INTERPRET': '1'}
    """
    env = dict(os.environ if base is None else base)
    env[VARIABLE] = "1" if interprets(mode, env) else "0"
    return env

