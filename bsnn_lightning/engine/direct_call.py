"""A compiled loop, called without dynamo once it is compiled: the ``cpu`` backend's per-call cost.

``torch.compile`` runs a compiled function through dynamo at every call: its frame evaluation, its guards (every
global, closure value and tensor the trace read), and the bytecode it wrote to rebuild the graph's inputs from
the frame. On the CPU backend's loops that costs more than the loop itself for a small layer: measured on the
2-core machine of issue 23 after a 256 MiB copy (caches cold, as between the layers of a network), about 0.34 ms
of a [8, 2, 64] forward's 0.36 ms in the compiled call was dynamo's (its guard check 0.10 ms, its bytecode
0.11 ms, inductor's and AOT autograd's wrappers 0.12 ms, the kernel 0.013 ms).

:class:`CompiledLoop` compiles with ``torch.compile`` as before (the same graph, inductor with the same
options), and its backend keeps what dynamo hands inductor: the graph's inputs (where each comes from in the
call's arguments) and the shape environment. After the first call it binds a direct path:

- the inputs, rebuilt from the arguments by one compiled expression (a size is ``x.size()[i]``, a Python
  float a float64 scalar tensor, as dynamo passes them, made once per value; not a NaN, as dynamo guards);
- the guards: the type at each place of the arguments (None, a number or a tensor), and which arguments are
  one tensor; the value of each number argument that dynamo baked into the graph (it does for one whose value
  the trace needed, and sometimes by choice), to the bit; the shape environment's guards on the inputs (sizes,
  strides and storage offsets, static ones included); the dtype, device and dispatch keys of every tensor (a
  negative view, an inference tensor), and no tensor at two places of the graph's inputs (AOT autograd merges
  such inputs into one); dynamo's global-state guard (grad mode, autocast, deterministic algorithms, threads
  and the rest: what dynamo itself checks); and no torch function mode pushed (dynamo would trace one into a
  graph of its own);
- a check, once, that the compiled function called this way returns what the call through dynamo returned,
  bit for bit, and in the same places.

A later call whose arguments pass the guards calls inductor's compiled function directly; any other call
goes through dynamo (which may compile a new graph, bound in turn). A graph whose inputs cannot be rebuilt,
whose shape guards name a value that is not an input (a branch on a float argument), whose outputs cannot be
placed (a tensor returned twice) or whose check fails is refused (``CompiledLoop.refused`` says why), and its
calls keep dynamo's path: slower, never different. ``BSNN_CPU_DIRECT=off`` keeps every call on dynamo's path.

Private torch API this relies on (there is no public way to call a compiled graph without dynamo's frame),
checked on the releases in :data:`~.torch_modes.CHECKED_ON` by ``tests/test_direct_call.py``: the ``grapharg``
and ``example_value`` that dynamo stores on a graph's placeholders (their ``source.name``, ``pass_arg_as_tensor``),
``torch._as_tensor_fullprec`` (how dynamo passes a float), ``torch._guards.TracingContext`` (the shape
environment during the backend call), ``ShapeEnv.produce_guards_expression`` with
``torch.fx.experimental.symbolic_shapes.SYMPY_INTERP`` (what ``ShapeEnv.evaluate_guards_expression`` evaluates
it with), ``torch._C._dynamo.guards.GlobalStateGuard``, ``torch._C._len_torch_function_stack`` and
``torch._C._dispatch_keys``. Where one is missing, the loop keeps dynamo's path.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Callable

import torch

from .switches import switched_on

#: the environment variable that keeps every call on dynamo's path ("off")
SWITCH = "BSNN_CPU_DIRECT"
#: at most this many graphs per loop get a direct path (dynamo compiles another graph for a new size class)
MAX_DIRECT = 4


def enabled() -> bool:
    """Whether loops bind a direct path (``BSNN_CPU_DIRECT``, default on).

    >>> import os
    >>> from unittest import mock
    >>> with mock.patch.dict(os.environ, {"BSNN_CPU_DIRECT": "off"}):
    ...     print(enabled())
    False
    """
    return switched_on(SWITCH)


class CompiledLoop:
    """``loop`` compiled by ``torch.compile`` (dynamic sizes, whole graph, inductor with ``options``), called
    directly after its first call where the arguments allow (see the module's docstring).

    ``around_compile`` is a context-manager factory entered around every call through dynamo (where a graph
    may be traced and compiled). ``calls`` counts the calls by path; ``refused`` says why a graph got no
    direct path (None while none was refused).
    """

    def __init__(self, loop: Callable, options: dict, around_compile: Callable[[], Any] | None = None):
        self._loop = loop
        self._options = dict(options)
        self._around = around_compile
        self._captures: list[_Capture] = []
        self._direct: tuple[_Direct, ...] = ()
        self._lock = threading.Lock()
        self._compiled = torch.compile(loop, dynamic=True, fullgraph=True, backend=self._backend)
        self.calls = {"direct": 0, "dynamo": 0}
        self.refused: str | None = None

    def __call__(self, *args):
        for direct in self._direct:
            out = direct(args)
            if out is not None:
                self.calls["direct"] += 1
                return out
        captured = len(self._captures)
        if self._around is None:
            result = self._compiled(*args)
        else:
            with self._around():
                result = self._compiled(*args)
        self.calls["dynamo"] += 1
        if len(self._captures) == captured + 1 and len(self._direct) < MAX_DIRECT and enabled():
            self._bind(self._captures[-1], args, result)
        return result

    def _backend(self, gm: torch.fx.GraphModule, example_inputs: list) -> Callable:
        """Dynamo's backend: inductor, as ``torch.compile(options=...)`` calls it; keeps what a direct call needs."""
        from torch._inductor.compile_fx import compile_fx

        compiled = compile_fx(gm, example_inputs, config_patches=dict(self._options))
        self._captures.append(_Capture.of(gm, compiled))
        return compiled

    def _bind(self, capture: "_Capture", args: tuple, result) -> None:
        try:
            direct = _Direct.bind(capture, self._loop, args, result)
        except _Refused as refused:
            self.refused = str(refused)
            return
        with self._lock:
            self._direct = self._direct + (direct,)


class _Refused(Exception):
    """This graph gets no direct path (the reason); its calls stay on dynamo's."""


class _NotDirect(Exception):
    """This call's arguments cannot take the direct path (found while rebuilding the inputs)."""


class _Capture:
    """What dynamo handed the backend for one graph."""

    __slots__ = ("compiled", "sources", "examples", "shape_env", "outputs", "problem")

    @classmethod
    def of(cls, gm: torch.fx.GraphModule, compiled: Callable) -> "_Capture":
        self = cls()
        self.compiled, self.sources, self.examples, self.shape_env, self.problem = compiled, [], [], None, None
        try:
            for node in gm.graph.nodes:
                if node.op == "placeholder":
                    grapharg = node.meta["grapharg"]
                    name = grapharg.source.name
                    self.sources.append((name() if callable(name) else name, bool(grapharg.pass_arg_as_tensor)))
                    self.examples.append(node.meta["example_value"])
                elif node.op == "output":
                    self.outputs = len(node.args[0])
            self.shape_env = torch._guards.TracingContext.get().fake_mode.shape_env
        except (AttributeError, KeyError, TypeError, AssertionError, RuntimeError) as error:
            self.problem = f"dynamo's graph did not carry what a direct call needs ({type(error).__name__}: {error})"
        return self


class _Direct:
    """One graph's direct path: rebuild its inputs, check the guards, call inductor's compiled function."""

    __slots__ = ("compiled", "names", "kinds", "aliases", "held", "inputs", "tensors", "shapes", "state", "present")

    @classmethod
    def bind(cls, capture: _Capture, loop: Callable, args: tuple, result) -> "_Direct":
        if capture.problem is not None:
            raise _Refused(capture.problem)
        self = cls()
        self.compiled = capture.compiled
        code = loop.__code__
        names = code.co_varnames[: code.co_argcount]
        star = code.co_varnames[code.co_argcount] if code.co_flags & 0x04 else None
        closure = {n: cell.cell_contents for n, cell in zip(code.co_freevars, loop.__closure__ or ())}
        self.names = (names, star, closure)
        self.kinds = tuple(map(type, args))  # None, a number or a tensor at each place, as dynamo guards them
        self.aliases = _alias_pattern(args)  # one tensor at two places: dynamo's graph reads it once
        self.held = _held_numbers(capture, names, star, args)
        expression = "(" + "".join(
            (f"_as_tensor({name}), " if as_tensor else f"{name}, ") for name, as_tensor in capture.sources
        ) + ")"
        try:
            self.inputs = eval(  # noqa: S307 - the sources are dynamo's own expressions over the arguments
                f"lambda L: {expression}", {"_as_tensor": _scalar_tensor, "G": loop.__globals__}
            )
            try:
                guards = _quietly(capture.shape_env.produce_guards_expression, capture.examples, ignore_static=False)
            except Exception as error:  # noqa: BLE001
                raise _Refused(
                    "a guard of the shape environment names a value that is not among the graph's inputs "
                    f"(a branch on a float argument?): {type(error).__name__}: {error}"
                ) from error
            from torch.fx.experimental.symbolic_shapes import SYMPY_INTERP

            self.shapes = (compile(guards, "<bsnn_lightning shape guards>", "eval"), dict(SYMPY_INTERP)) if guards else None
            self.state = torch._C._dynamo.guards.GlobalStateGuard()
        except _Refused:
            raise
        except Exception as error:  # noqa: BLE001 - any other failure keeps dynamo's path
            raise _Refused(f"the direct call could not be built ({type(error).__name__}: {error})") from error
        try:
            flat = self._inputs(args)
        except Exception as error:  # noqa: BLE001 - any failure to rebuild the inputs keeps dynamo's path
            raise _Refused(f"the graph's inputs could not be rebuilt ({type(error).__name__}: {error})") from error
        self.tensors = tuple(
            (i, type(value), value.dtype, value.device, _dispatch_keys(value))
            for i, ((_, as_tensor), value) in enumerate(zip(capture.sources, flat))
            if isinstance(value, torch.Tensor) and not as_tensor
        )
        if not isinstance(result, tuple) or any(r is not None and not isinstance(r, torch.Tensor) for r in result):
            raise _Refused("the loop did not return a tuple of tensors and Nones")
        self.present = tuple(r is not None for r in result)
        if sum(self.present) != capture.outputs:
            raise _Refused(f"the graph has {capture.outputs} outputs for {sum(self.present)} tensors returned")
        if len({id(flat[i]) for i, *_ in self.tensors}) != len(self.tensors):
            raise _Refused("one tensor at two places of the first call (AOT autograd merged them into one input)")
        if not self._guarded(flat):
            raise _Refused("the guards built from the first call do not accept its own arguments")
        again = self(args)
        if again is None or not all(_same(a, b) for a, b in zip(again, result)):
            raise _Refused("called directly, the compiled graph did not return what the call through dynamo did")
        return self

    def __call__(self, args: tuple):
        """The loop's outputs, or None where the arguments fail a guard."""
        if tuple(map(type, args)) != self.kinds or _alias_pattern(args) != self.aliases:
            return None
        for place, value in self.held:
            if not _same_number(args[place], value):
                return None
        try:
            flat = self._inputs(args)
        except _NotDirect:
            return None
        if not self._guarded(flat):
            return None
        outputs = iter(self.compiled(*flat))
        return tuple(next(outputs) if present else None for present in self.present)

    def _inputs(self, args: tuple) -> tuple:
        names, star, closure = self.names
        frame = dict(closure)
        frame.update(zip(names, args))
        if star is not None:
            frame[star] = args[len(names) :]
        return self.inputs(frame)

    def _guarded(self, flat: tuple) -> bool:
        if not self.state.check() or _function_modes():  # a function mode would be traced into a graph of its own
            return False
        for i, kind, dtype, device, keys in self.tensors:
            value = flat[i]
            if type(value) is not kind or value.dtype != dtype or value.device != device:
                return False
            if _dispatch_keys(value) != keys:  # a negative view, an inference tensor: dynamo's tensor guard too
                return False
        if len({id(flat[i]) for i, *_ in self.tensors}) != len(self.tensors):
            return False  # one tensor at two places: AOT autograd compiles such a graph with the two merged
        if self.shapes is None:
            return True
        code, namespace = self.shapes
        return bool(eval(code, namespace, {"L": {f"t{i}": value for i, value in enumerate(flat)}}))  # noqa: S307


def _alias_pattern(args: tuple) -> tuple:
    """For each argument, the first place that holds the same tensor (-1 for a non-tensor): dynamo guards which
    arguments are one tensor, and its graph for ``f(a, a)`` reads ``a`` once.

    >>> t, u = torch.zeros(1), torch.zeros(1)
    >>> _alias_pattern((t, u, 0.5)), _alias_pattern((t, t, 0.5))
    ((0, 1, -1), (0, 0, -1))
    """
    first: dict[int, int] = {}
    return tuple(first.setdefault(id(a), i) if isinstance(a, torch.Tensor) else -1 for i, a in enumerate(args))


def _held_numbers(capture: _Capture, names: tuple, star: str | None, args: tuple) -> tuple:
    """``(place, value)`` of each Python number among the arguments whose value the graph holds: dynamo passes
    a float to the graph as a tensor, unless it specialised it (its value was needed while tracing,
    ``math.floor(scale)``; or dynamo chose to, as it did for a loop compiled after others in the same process);
    it then bakes the value into the graph and guards it, and so must the direct path (:func:`_same_number`)."""
    passed = {source for source, _ in capture.sources}
    where = [f"L[{name!r}]" for name in names]
    if star is not None:
        where += [f"L[{star!r}][{i}]" for i in range(len(args) - len(names))]
    return tuple(
        (place, value)
        for place, (source, value) in enumerate(zip(where, args))
        if isinstance(value, (bool, int, float)) and source not in passed
    )


def _same_number(a, b) -> bool:
    """The same Python number, to the bit for floats (-0.0 is not 0.0; a NaN is its own payload).

    >>> _same_number(0.5, 0.5), _same_number(0.0, -0.0), _same_number(float("nan"), float("nan")), _same_number(1, 1.0)
    (True, False, True, False)
    """
    if type(a) is not type(b):
        return False
    return a.hex() == b.hex() if type(a) is float else a == b


def _quietly(produce: Callable, *args, **kwargs):
    """``produce(*args, **kwargs)`` without the shape environment's warning when a guard names a value that is
    not among the inputs (it raises then, and the graph keeps dynamo's path)."""
    logger = logging.getLogger("torch.fx.experimental.symbolic_shapes")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        return produce(*args, **kwargs)
    finally:
        logger.setLevel(level)


#: a tensor's dispatch keys (its negative or conjugate bit among them); without the query no call is direct
_dispatch_keys = getattr(torch._C, "_dispatch_keys", lambda tensor: object())

#: how many torch function modes are pushed (a torch without the query counts as one: dynamo's path)
_function_modes = getattr(torch._C, "_len_torch_function_stack", lambda: 1)


#: the scalar tensors that Python numbers are passed as, by type and exact value (see :func:`_scalar_tensor`)
_SCALARS: dict[tuple, torch.Tensor] = {}
#: the most scalars kept (a loop's floats are a layer's few parameters; a sweep over values starts afresh)
MAX_SCALARS = 1024


def _scalar_tensor(value) -> torch.Tensor:
    """``torch._as_tensor_fullprec(value)``, as dynamo passes a Python float (float64, 0-d), made once per
    exact value: the graph reads it (``.item()``) and never writes or keeps it, so calls can share it.

    >>> _scalar_tensor(0.5) is _scalar_tensor(0.5), _scalar_tensor(0.0) is _scalar_tensor(-0.0)
    (True, False)
    >>> _scalar_tensor(2.0).dtype
    torch.float64
    """
    if value != value:  # dynamo guards that a float it passes is not NaN (its symbolic reasoning assumes it)
        raise _NotDirect("NaN")
    key = (type(value), value.hex() if type(value) is float else value)
    tensor = _SCALARS.get(key)
    if tensor is None:
        if len(_SCALARS) >= MAX_SCALARS:
            _SCALARS.clear()
        tensor = _SCALARS[key] = torch._as_tensor_fullprec(value)
    return tensor


def _same(a, b) -> bool:
    """Both None, or tensors of the same shape, dtype and strides whose bytes are equal (NaNs included)."""
    if a is None or b is None:
        return a is None and b is None
    if a.shape != b.shape or a.dtype != b.dtype or a.stride() != b.stride():
        return False
    return torch.equal(a.reshape(-1).contiguous().view(torch.uint8), b.reshape(-1).contiguous().view(torch.uint8))
