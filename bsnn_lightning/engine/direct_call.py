"""A compiled loop, called without dynamo once it is compiled: the ``cpu`` backend's per-call cost.

``torch.compile`` runs a compiled function through dynamo at every call: its frame evaluation, its guards (every
global, closure value and tensor the trace read), and the bytecode it wrote to rebuild the graph's inputs from
the frame. On the CPU backend's loops that costs more than the loop itself for a small layer: measured on the
2-core machine of issue 23 after a 256 MiB copy (caches cold, as between the layers of a network), about 0.34 ms
of a [8, 2, 64] forward's 0.36 ms in the compiled call was dynamo's (its guard check 0.10 ms, its bytecode
0.11 ms, inductor's and AOT autograd's wrappers 0.12 ms, the kernel 0.013 ms).

:class:`CompiledLoop` compiles with ``torch.compile`` as before (the same graph, inductor with the same
options), and its backend keeps what dynamo hands inductor (the graph's inputs: where each comes from in the
call's arguments; the shape environment) and what AOT autograd hands inductor in turn (its graph, and inductor's
compiled function). After the first call it binds a direct path: one Python function generated for the graph,
straight-line code with the loop's own parameters (with caches cold, as between a network's layers, every call,
dict and lookup on the path costs microseconds), which

- checks the guards: the type at each place of the arguments (None, a number or a tensor), and which arguments
  are one tensor; the value of each number argument that dynamo baked into the graph (it does for one whose
  value the trace needed, and sometimes by choice), to the bit; dynamo's global-state guard (grad mode,
  autocast, deterministic algorithms, threads and the rest: what dynamo itself checks) and no torch function
  mode pushed (dynamo would trace one into a graph of its own); each number it passes as a tensor of its type
  and no NaN (as dynamo guards); the dtype, device and dispatch keys of every tensor (a negative view, an
  inference tensor), and no tensor at two places of the graph's inputs (AOT autograd merges such inputs into
  one); the shape environment's guards on the inputs (sizes, strides and storage offsets, static ones
  included), each tensor's ``size()`` and ``stride()`` asked for once;
- rebuilds the graph's inputs from the arguments (a size is ``x.size()[i]``, a Python float a float64 scalar
  tensor, as dynamo passes them, made once per value);
- calls inductor's compiled function itself where AOT autograd's wrappers around it pass everything through
  (an inference graph; the one graph AOT autograd handed inductor, with one input per input of dynamo's graph,
  one output per output, nothing but ATen operators; or, where AOT autograd's cache served the graph and handed
  nothing over, the one compiled graph inside the compiled function), else the whole compiled function. (That
  cache stays on: off, a T = 16 layer's first forward and backward took 21.5 s instead of 8.5 s.)

Binding checks once that the function returns what the call through dynamo returned, bit for bit, and in the
same places (inductor's function first; where that differs, the whole compiled function). A later call whose
arguments pass the guards calls it; any other call goes through dynamo (which may compile a new graph, bound in
turn). A graph whose inputs cannot be rebuilt, whose shape guards name a value that is not an input (a branch on
a float argument), whose outputs cannot be placed (a tensor returned twice), whose check fails, or whose loop
writes its inputs in place (binding's check would write them a second time) is refused
(``CompiledLoop.refused`` says why), and its calls keep dynamo's path: slower, never different.
``BSNN_CPU_DIRECT=off`` keeps every call on dynamo's path.

Private torch API this relies on (there is no public way to call a compiled graph without dynamo's frame),
checked on the releases in :data:`~.torch_modes.CHECKED_ON` by ``tests/test_direct_call.py``: the ``grapharg``
and ``example_value`` that dynamo stores on a graph's placeholders (their ``source.name``, ``pass_arg_as_tensor``),
``torch._as_tensor_fullprec`` (how dynamo passes a float), ``torch._guards.TracingContext`` (the shape
environment during the backend call), ``ShapeEnv.produce_guards_expression`` with
``torch.fx.experimental.symbolic_shapes.SYMPY_INTERP`` (what ``ShapeEnv.evaluate_guards_expression`` evaluates
it with), ``torch._C._dynamo.guards.GlobalStateGuard``, ``torch._C._len_torch_function_stack``,
``torch._C._dispatch_keys``, ``compile_fx``'s ``inner_compile`` argument, the ``current_callable`` of the
``OutputCode`` it returns (a function of a list of inputs), ``torch._inductor.output_code.CompiledFxGraph`` (its
``mutated_input_idxs``) reached through the closures of AOT autograd's wrappers. Where one is missing, the loop
keeps dynamo's path (or AOT autograd's wrappers).
"""

from __future__ import annotations

import logging
import re
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
        captured, versions = len(self._captures), _versions(args)
        if self._around is None:
            result = self._compiled(*args)
        else:
            with self._around():
                result = self._compiled(*args)
        self.calls["dynamo"] += 1
        if len(self._captures) == captured + 1 and len(self._direct) < MAX_DIRECT and enabled():
            if _versions(args) != versions or self._captures[-1].writes:
                # binding calls the graph once more (its check), which would write the inputs a second time
                self.refused = "the loop writes its inputs in place: each call runs once, through dynamo"
            else:
                self._bind(self._captures[-1], args, result)
        return result

    def _backend(self, gm: torch.fx.GraphModule, example_inputs: list) -> Callable:
        """Dynamo's backend: inductor, as ``torch.compile(options=...)`` calls it; keeps what a direct call needs."""
        from torch._inductor.compile_fx import compile_fx, compile_fx_inner

        inner: list = []

        def inner_compile(graph, inputs, *args, **kwargs):  # AOT autograd's graph, compiled by inductor
            code = compile_fx_inner(graph, inputs, *args, **kwargs)
            inner.append((graph, code))
            return code

        # (a hit of AOT autograd's cache, in a later process, skips inner_compile: the direct path then finds
        # inductor's graph inside the compiled function; switching that cache off instead tripled a T = 16
        # layer's first call, 8.5 -> 21.5 s)
        compiled = compile_fx(gm, example_inputs, inner_compile=inner_compile, config_patches=dict(self._options))
        # an inference graph: no gradient recorded (AOT autograd compiles a training graph, wrapped in an
        # autograd Function, where grad mode is on and an input requires grad)
        inference = not torch.is_grad_enabled() or not any(
            isinstance(t, torch.Tensor) and t.requires_grad for t in example_inputs
        )
        self._captures.append(_Capture.of(gm, compiled, inner, inference))
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

    __slots__ = ("compiled", "inner", "inference", "sources", "examples", "shape_env", "outputs", "problem")

    @classmethod
    def of(cls, gm: torch.fx.GraphModule, compiled: Callable, inner: list, inference: bool) -> "_Capture":
        self = cls()
        self.compiled, self.inner, self.inference = compiled, inner, inference
        self.sources, self.examples, self.shape_env, self.problem = [], [], None, None
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

    @property
    def writes(self) -> bool:
        """Whether the compiled graph writes in place (how AOT autograd keeps an input's mutation): in the graph it
        handed inductor, or as inductor recorded it where AOT autograd's cache served the graph."""
        for graph, _ in self.inner:
            for node in graph.graph.nodes:
                schema = getattr(node.target, "_schema", None) if node.op == "call_function" else None
                if schema is not None and schema.is_mutable:
                    return True
        return any(getattr(code, "mutated_input_idxs", None) for code in _output_codes(self.compiled))

    @property
    def runner(self) -> "Callable | None":
        """Inductor's compiled function (it takes the inputs as a list), where AOT autograd's wrappers around it
        pass the graph's inputs and outputs through unchanged, else None. An inference graph only (a training
        graph's wrappers are its autograd), and either the one graph AOT autograd handed inductor, with one input
        per input of dynamo's graph, one output per output and nothing called but ATen operators and arithmetic
        on sizes; or, where AOT autograd's cache served the graph (nothing handed over), the one compiled graph
        found inside the compiled function (binding's check then compares what it returns)."""
        if not self.inference:
            return None
        if not self.inner:
            codes = _output_codes(self.compiled)
            return getattr(codes[0], "current_callable", None) if len(codes) == 1 else None
        if len(self.inner) != 1:
            return None
        graph, code = self.inner[0]
        run = getattr(code, "current_callable", None)
        nodes = list(graph.graph.nodes)
        placeholders = [n for n in nodes if n.op == "placeholder"]
        outputs = [n for n in nodes if n.op == "output"]
        if run is None or len(placeholders) != len(self.sources) or len(outputs) != 1:
            return None
        if len(outputs[0].args[0]) != self.outputs:
            return None
        for node in nodes:
            if node.op != "call_function" or getattr(node.target, "__module__", None) == "_operator":
                continue  # arithmetic on sizes, an item of a tuple
            if getattr(node.target, "_schema", None) is None:
                return None  # not an ATen operator: what the wrappers do around it is unknown here
        return run


def _output_codes(compiled: Callable, limit: int = 12) -> list:
    """The compiled graphs of inductor's (``CompiledFxGraph``) that ``compiled`` reaches through its closures and
    wrapped functions, each once (none where this torch has no such class)."""
    try:
        from torch._inductor.output_code import CompiledFxGraph
    except ImportError:
        return []
    found: dict[int, Any] = {}
    seen: set[int] = set()
    stack = [(compiled, 0)]
    while stack:
        value, depth = stack.pop()
        if id(value) in seen or depth > limit:
            continue
        seen.add(id(value))
        if isinstance(value, CompiledFxGraph):
            found[id(value)] = value
            continue
        nested = [cell.cell_contents for cell in getattr(value, "__closure__", None) or () if _filled(cell)]
        nested += [getattr(value, name) for name in ("__wrapped__", "compiled_fn", "fn") if hasattr(value, name)]
        if isinstance(value, (list, tuple)):
            nested += list(value)
        stack += [(item, depth + 1) for item in nested if callable(item) or isinstance(item, (list, tuple))]
    return list(found.values())


def _filled(cell) -> bool:
    try:
        cell.cell_contents
    except ValueError:  # a cell not yet assigned
        return False
    return True


class _Direct:
    """One graph's direct path: a function generated for it (:func:`_generate`) that checks the guards, rebuilds
    the graph's inputs and calls inductor's compiled code; None from it where the arguments fail a guard."""

    __slots__ = ("call", "source", "through")

    @classmethod
    def bind(cls, capture: _Capture, loop: Callable, args: tuple, result) -> "_Direct":
        if capture.problem is not None:
            raise _Refused(capture.problem)
        if not isinstance(result, tuple) or any(r is not None and not isinstance(r, torch.Tensor) for r in result):
            raise _Refused("the loop did not return a tuple of tensors and Nones")
        present = tuple(r is not None for r in result)
        if sum(present) != capture.outputs:
            raise _Refused(f"the graph has {capture.outputs} outputs for {sum(present)} tensors returned")
        try:
            flat = _inputs_of(capture, loop, args)
        except Exception as error:  # noqa: BLE001 - any failure to rebuild the inputs keeps dynamo's path
            raise _Refused(f"the graph's inputs could not be rebuilt ({type(error).__name__}: {error})") from error
        graph_tensors = [i for i, ((_, as_tensor), value) in enumerate(zip(capture.sources, flat)) if isinstance(value, torch.Tensor) and not as_tensor]
        if len({id(flat[i]) for i in graph_tensors}) != len(graph_tensors):
            raise _Refused("one tensor at two places of the first call (AOT autograd merged them into one input)")
        try:
            guards = _quietly(capture.shape_env.produce_guards_expression, capture.examples, ignore_static=False)
        except Exception as error:  # noqa: BLE001
            raise _Refused(
                "a guard of the shape environment names a value that is not among the graph's inputs "
                f"(a branch on a float argument?): {type(error).__name__}: {error}"
            ) from error
        # inductor's own function where AOT autograd's wrappers around it do nothing for this graph, else the
        # whole compiled function; a failed check of the first falls back to the second
        own = capture.runner  # (a walk of the compiled function's closures: once)
        callers = ([own] if own is not None else []) + [None]
        problem = None
        for runner in callers:
            self = cls()
            self.through = "inductor" if runner is not None else "aot"
            try:
                self.source, namespace = _generate(capture, loop, args, flat, guards, present, runner)
                exec(compile(self.source, f"<bsnn_lightning direct call of {loop.__name__}>", "exec"), namespace)  # noqa: S102
            except _Refused:
                raise
            except Exception as error:  # noqa: BLE001 - any other failure keeps dynamo's path
                raise _Refused(f"the direct call could not be built ({type(error).__name__}: {error})") from error
            self.call = namespace["__bsnn_direct"]
            try:
                again = self.call(*args)
            except Exception as error:  # noqa: BLE001
                problem = f"called directly, the compiled graph raised {type(error).__name__}: {error}"
                continue
            if again is None:
                raise _Refused("the guards built from the first call do not accept its own arguments")
            if all(_same(a, b) for a, b in zip(again, result)) and len(again) == len(result):
                return self
            problem = "called directly, the compiled graph did not return what the call through dynamo did"
        raise _Refused(problem)

    def __call__(self, args: tuple):
        """The loop's outputs, or None where the arguments fail a guard."""
        return self.call(*args)


def _inputs_of(capture: _Capture, loop: Callable, args: tuple) -> tuple:
    """The graph's inputs for ``args``, evaluated from dynamo's sources (at bind time, for the checks)."""
    env = {"L": _frame(loop, args), "G": loop.__globals__, "_as_tensor": _scalar_tensor}
    return tuple(
        eval(f"_as_tensor({name})" if as_tensor else name, env)  # noqa: S307 - dynamo's own source expressions
        for name, as_tensor in capture.sources
    )


def _frame(loop: Callable, args: tuple) -> dict:
    """The loop's local names at its entry for ``args`` (its closure's values and its parameters)."""
    frame = _closure(loop)
    names, star = _parameters(loop)
    frame.update(zip(names, args))
    if star is not None:
        frame[star] = args[len(names) :]
    return frame


def _closure(loop: Callable) -> dict:
    """The values of the loop's closure, by name."""
    return {n: cell.cell_contents for n, cell in zip(loop.__code__.co_freevars, loop.__closure__ or ())}


def _parameters(loop: Callable) -> tuple[tuple, "str | None"]:
    code = loop.__code__
    names = code.co_varnames[: code.co_argcount]
    star = code.co_varnames[code.co_argcount] if code.co_flags & 0x04 else None
    return names, star


#: a local name in dynamo's sources (``L['x']``), and a tensor's size, stride or offset
_LOCAL = re.compile(r"L\[['\"]([A-Za-z_][A-Za-z0-9_]*)['\"]\]")
_PARAMETER_SIZE = re.compile(r"(?P<base>[A-Za-z_][A-Za-z0-9_]*)\.(?P<what>size|stride)\(\)\[(?P<dim>\d+)\]")
_SIZE = re.compile(r"\.(size|stride)\(\)\[\d+\]$|\.storage_offset\(\)$")


def _generate(capture: _Capture, loop: Callable, args: tuple, flat: tuple, guards: str, present: tuple, runner):
    """The source of ``__bsnn_direct``, a function with the loop's own parameters that returns the loop's outputs
    or None where a guard fails, and the namespace it runs in.

    Straight-line code, one function: on a cold cache (after a network's other layers) each Python call, dict
    and lookup the path makes costs microseconds, so it makes as few as it can."""
    names, star = _parameters(loop)
    closure, frame = _closure(loop), _frame(loop, args)
    from torch.fx.experimental.symbolic_shapes import SYMPY_INTERP

    namespace: dict[str, Any] = dict(SYMPY_INTERP)
    clash = (set(namespace) | {"G"}) & (set(closure) | set(names) | {star})
    if clash:  # a parameter or closure value named as a function the shape guards call (Min, Eq, ...)
        raise _Refused(f"names of the loop's parameters or closure shadow names the direct call needs: {sorted(clash)}")
    namespace.update(closure)
    namespace.update(
        G=loop.__globals__, __bsnn_as_tensor=_scalar_tensor, __bsnn_same=_same_number,
        __bsnn_state=torch._C._dynamo.guards.GlobalStateGuard().check, __bsnn_modes=_function_modes,
        __bsnn_keys=_dispatch_keys,
    )
    places = [*names] + ([f"{star}[{i}]" for i in range(len(args) - len(names))] if star is not None else [])
    fail = []  # conditions, any of which sends the call to dynamo
    lines = [f"def __bsnn_direct({', '.join([*names] + ([f'*{star}'] if star is not None else []))}):"]
    if star is not None:
        lines.append(f"    if len({star}) != {len(args) - len(names)}: return None")
    # the type at each place (None, a number or a tensor), and which places hold one tensor
    for i, (place, value) in enumerate(zip(places, args)):
        namespace[f"__bsnn_k{i}"] = type(value)
        fail.append(f"type({place}) is not __bsnn_k{i}")
    pattern = _alias_pattern(args)
    tensor_places = [i for i, first in enumerate(pattern) if first >= 0]
    for a, i in enumerate(tensor_places):
        for j in tensor_places[a + 1 :]:
            fail.append(f"{places[j]} {'is not' if pattern[j] == pattern[i] else 'is'} {places[i]}")
    # the numbers dynamo baked into the graph, to the bit
    for k, (place, value) in enumerate(_held_numbers(capture, names, star, args)):
        namespace[f"__bsnn_h{k}"] = value
        fail.append(f"not __bsnn_same({places[place]}, __bsnn_h{k})")
    fail.append("not __bsnn_state() or __bsnn_modes()")  # a function mode would be traced into a graph of its own
    lines.append(f"    if {' or '.join(fail)}: return None")
    # the graph's inputs
    tensors, asked = [], {}  # asked: a tensor's size() or stride(), asked for once (the guards read them often)

    def once(base: str, what: str) -> str:
        name = asked.get((base, what))
        if name is None:
            name = asked[(base, what)] = f"__bsnn_{what}{len(asked)}"
            lines.append(f"    {name} = {base}.{what}()")
        return name

    for i, ((source, as_tensor), value) in enumerate(zip(capture.sources, flat)):
        expression = _LOCAL.sub(lambda m: m.group(1), source)
        if "L[" in expression:
            raise _Refused(f"a graph input's source is not a local name or its attribute: {source}")
        if as_tensor:  # a Python number, passed as a float64 0-d tensor; dynamo guards its type and that it is no NaN
            number = f"__bsnn_n{i}"
            namespace[f"__bsnn_nk{i}"] = type(eval(source, {"L": frame, "G": loop.__globals__}))  # noqa: S307
            lines.append(f"    {number} = {expression}")
            lines.append(f"    if type({number}) is not __bsnn_nk{i} or {number} != {number}: return None")
            lines.append(f"    __bsnn_t{i} = __bsnn_as_tensor({number})")
            continue
        size = _PARAMETER_SIZE.fullmatch(expression)
        if size is not None and size.group("base") in names:  # a size of a tensor argument (its type checked above)
            expression = f"{once(size.group('base'), size.group('what'))}[{size.group('dim')}]"
        lines.append(f"    __bsnn_t{i} = {expression}")
        if isinstance(value, torch.Tensor):
            tensors.append((i, value, expression))
        elif not _SIZE.search(source):  # a size is an int; another number (a dynamic int) is guarded by type
            namespace[f"__bsnn_tk{i}"] = type(value)
            lines.append(f"    if type(__bsnn_t{i}) is not __bsnn_tk{i}: return None")
    # each tensor's type, dtype, device and dispatch keys (a negative view, an inference tensor); no tensor twice
    fail = []
    for i, value, _ in tensors:
        namespace[f"__bsnn_tt{i}"], namespace[f"__bsnn_td{i}"] = type(value), value.dtype
        namespace[f"__bsnn_dev{i}"], namespace[f"__bsnn_dk{i}"] = value.device, _dispatch_keys(value)
        device = "not {t}.is_cpu" if value.device.type == "cpu" else "{t}.device != __bsnn_dev%d" % i
        t = f"__bsnn_t{i}"
        fail += [
            f"type({t}) is not __bsnn_tt{i}", f"{t}.dtype is not __bsnn_td{i}", device.format(t=t),
            f"__bsnn_keys({t}) != __bsnn_dk{i}",
        ]
    # AOT autograd would merge one tensor at two places (two arguments are already told apart above)
    for a, (i, _, first) in enumerate(tensors):
        fail += [f"__bsnn_t{j} is __bsnn_t{i}" for j, _, second in tensors[a + 1 :] if not {first, second} <= set(places)]
    if fail:
        lines.append(f"    if {' or '.join(fail)}: return None")
    if guards:  # sizes, strides and storage offsets, each tensor's size() and stride() asked for once
        guards = _LOCAL.sub(lambda m: "__bsnn_" + m.group(1), guards)
        for i, _, expression in tensors:
            base = expression if expression in names else f"__bsnn_t{i}"
            for what in ("size", "stride"):
                if f"__bsnn_t{i}.{what}()" in guards:
                    guards = re.sub(rf"\b__bsnn_t{i}\.{what}\(\)", once(base, what), guards)
        lines.append(f"    if not ({guards}): return None")
    inputs = ", ".join(f"__bsnn_t{i}" for i in range(len(flat)))
    if runner is not None:
        namespace["__bsnn_run"] = runner
        lines.append(f"    __bsnn_out = __bsnn_run([{inputs}])")  # inductor's call takes a list (and empties it)
    else:
        namespace["__bsnn_run"] = capture.compiled
        lines.append(f"    __bsnn_out = __bsnn_run({inputs})")
    outputs, k = [], 0
    for here in present:
        outputs.append(f"__bsnn_out[{k}]" if here else "None")
        k += here
    lines.append(f"    return ({', '.join(outputs)}{',' if len(outputs) == 1 else ''})")
    return "\n".join(lines) + "\n", namespace


def _versions(args: tuple) -> tuple:
    """Each tensor argument's version counter (None elsewhere, and for an inference tensor, which has none): it
    moves when the tensor is written in place.

    >>> t = torch.zeros(2)
    >>> before = _versions((t, 0.5))
    >>> _ = t.add_(1)
    >>> _versions((t, 0.5)) == before
    False
    """
    return tuple(a._version if isinstance(a, torch.Tensor) and not a.is_inference() else None for a in args)


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
