"""The ``cpu`` backend's C++ loops, as inductor writes them, reordered and given streaming stores.

Inductor compiles a layer's unrolled time loop (:mod:`.cpu_backend`) into one vectorised loop over the neurons
whose body holds all ``T`` steps for one vector of neurons. It writes that body in an order that suits a
short pointwise kernel and not a long one: every load first (``x`` at all ``T`` steps, and in the backward the
spikes' gradient and x or the saved potentials), then the arithmetic, then every store. With ``T = 16`` that keeps
dozens of vectors alive across the whole body, more than the 32 vector registers, and the compiler spills
them to the stack. The outputs are written with ordinary stores, so each cache line written is first read
from memory (a write-allocate): a third more memory traffic for a loop that writes two tensors per step.

:func:`rewrite` changes the main (full-vector) branch of such a loop in these ways, and nothing else:

- order: each load moves down to just before the first statement that uses its value, and each store to an
  output moves up to just after the statement that computes its value. The statements are inductor's own,
  unchanged; only independent statements change places (a load reads an input buffer, a store writes an
  output buffer, and inductor gives a buffer that a kernel both reads and writes its own ``in_out_ptr``,
  whose stores stay last). A sum's step (inductor's ``tmp_acc0_vec = tmp_acc0_vec + tmp7``, its ``_local``
  form in a parallel loop, or ``cascade_sum_combine(tmp7, ...)`` there) moves up to just after its value, as
  a store does. The arithmetic is the same operations on the same values, so the results are bit for bit
  those of the unchanged loop; the one exception is a sum in a parallel loop with ``interleave`` above 1,
  whose threads may then share the vectors differently and so round the partial sums differently (the
  backend's one such sum is the final state's, for the finite check, which asks only whether it is finite).
- streaming stores: a full vector written to an output at a 64-byte aligned address (32 on AVX2) goes
  through ``_mm512_stream_ps`` / ``_mm256_stream_ps`` (``_pd`` for float64), which writes the line without
  reading it first; any other store is the ordinary one, and so is every store to a buffer that the kernel
  reads back (a later loop of the same kernel may). Each thread fences (``_mm_sfence``) before its parallel
  region ends, so the other threads, and the caller, see every value written.
- with ``interleave=k`` (the backend's forward loops take 2), the loop steps over ``k`` vectors of neurons at a
  time and, while all ``k`` are whole, writes statement i of each copy side by side before statement i + 1:
  the copies' chains of steps are independent, so the core works on them together instead of waiting on one
  chain's latency. The last vectors of a row run the one-vector body as it was.

Same process, the kernels alone, inductor's C++ against the rewritten (2 threads of the 2-core AMD EPYC of
issue 23; docs/kernels.md has the script's description): the [16, 32, 64, 16, 16] SpikingJelly LIF layer's
forward saving the potentials 5.0 against 2.4 ms, its forward under ``no_grad`` 3.5 against 1.6 ms, its
backward 6.8 against 5.2 ms.

Each vectorised loop of a kernel is taken on its own (a kernel with a per-channel parameter nests the
vector loop in loops over the batch and the channels; a backward may add a loop that sums a parameter's
gradient). A loop whose full-vector branch holds anything but plain definitions, stores and a sum's steps (a
masked store, another reduction's accumulator, a buffer both read and written there) is left as inductor wrote
it; a kernel with no loop rewritten compiles unchanged (:func:`rewrite` returns None). ``BSNN_CPU_REWRITE=off``
turns the rewrite off; :func:`counts` says how many kernels were rewritten and left. Only the ``cpu`` backend's
own compilations are rewritten (:func:`ours`), never a user's ``torch.compile``.
"""

from __future__ import annotations

import re
import threading

from .switches import switched_on

#: the environment variable that turns the rewrite "on" (default) or "off"
SWITCH = "BSNN_CPU_REWRITE"
#: put at the top of every rewritten kernel: the source differs from inductor's, so its compiled module is
#: cached under its own hash, and a change to this module's output changes the version
MARK = "// rewritten by bsnn_lightning.engine.cpu_kernel_rewrite v1"

_LOOP = re.compile(
    r"^\s*for\(int64_t (?P<var>x\d+)=static_cast<int64_t>\(0L\); (?P=var)<static_cast<int64_t>\((?P<stop>.*)\); "
    r"(?P=var)\+=static_cast<int64_t>\((?P<step>\d+)L\)\)$"
)
_FULL_BRANCH = "if(C10_LIKELY({var} >= static_cast<int64_t>(0) && {var} < static_cast<int64_t>("
_TAIL_BRANCH = "if(C10_UNLIKELY("
_DEFINITION = re.compile(r"^(?P<indent>\s*)auto (?P<name>tmp\d+) = (?P<value>.*);$")
_STORE = re.compile(r"^(?P<indent>\s*)(?P<name>tmp\d+)\.store\((?P<args>.*)\);$")
#: a sum's step, as inductor writes it for a full vector: the value added into the thread's cascade accumulator
#: (a parallel loop over many vectors), the thread's accumulator (a parallel loop over a few), or the accumulator
#: itself (a serial one)
_ACCUMULATE = re.compile(
    r"^\s*(?:tmp_acc\d+_vec_local = cascade_sum_combine\((?P<name>tmp\d+), &cascade_helper\d+\)"
    r"|(?P<acc>tmp_acc\d+_vec(?:_local)?) = (?P=acc) \+ (?P<added>tmp\d+));$"
)
_OUTPUT = re.compile(r"^(?P<buffer>(?:in_)?out_ptr\d+) \+ static_cast<int64_t>\(.*\)$")
_NAME = re.compile(r"\btmp\d+\b")
_LOAD = re.compile(r"::loadu\(|\b(?:in_|out_|in_out_)ptr\d+\[")
_BUFFER = re.compile(r"\b(?:in_out_ptr|out_ptr|in_ptr)\d+\b")

#: the streaming store, written once into each rewritten kernel (overloads: float and double vectors stream,
#: anything else, or an unaligned address, stores as inductor would)
_HELPERS = r"""
template <typename V, typename P>
static inline void bsnn_store(P* p, const V& v) { v.store(p); }
static inline void bsnn_store(float* p, const at::vec::Vectorized<float>& v) {
#if defined(CPU_CAPABILITY_AVX512)
    if ((reinterpret_cast<uintptr_t>(p) & 63) == 0) { _mm512_stream_ps(p, v); return; }
#elif defined(CPU_CAPABILITY_AVX2)
    if ((reinterpret_cast<uintptr_t>(p) & 31) == 0) { _mm256_stream_ps(p, v); return; }
#endif
    v.store(p);
}
static inline void bsnn_store(double* p, const at::vec::Vectorized<double>& v) {
#if defined(CPU_CAPABILITY_AVX512)
    if ((reinterpret_cast<uintptr_t>(p) & 63) == 0) { _mm512_stream_pd(p, v); return; }
#elif defined(CPU_CAPABILITY_AVX2)
    if ((reinterpret_cast<uintptr_t>(p) & 31) == 0) { _mm256_stream_pd(p, v); return; }
#endif
    v.store(p);
}
static inline void bsnn_fence() {
#if defined(CPU_CAPABILITY_AVX512) || defined(CPU_CAPABILITY_AVX2)
    _mm_sfence();
#endif
}
"""


def rewrite(source: str, interleave: int = 1) -> str | None:
    """``source`` (one C++ kernel of inductor's) with the full-vector branch of each vectorised loop reordered,
    its output stores streaming and ``interleave`` vectors per iteration; None if no loop of the kernel has a
    branch of plain definitions and stores.

    >>> kernel = '''extern "C" void kernel(const float* in_ptr0, float* out_ptr0, float* out_ptr1, const int64_t ks0)
    ... {
    ...     #pragma omp parallel
    ...     {
    ...         {
    ...             #pragma omp for
    ...             for(int64_t x0=static_cast<int64_t>(0L); x0<static_cast<int64_t>(ks0); x0+=static_cast<int64_t>(16L))
    ...             {
    ...                 {
    ...                     if(C10_LIKELY(x0 >= static_cast<int64_t>(0) && x0 < static_cast<int64_t>(16L*(c10::div_floor_integer(static_cast<int64_t>(ks0), static_cast<int64_t>(16L))))))
    ...                     {
    ...                         auto tmp0 = at::vec::Vectorized<float>::loadu(in_ptr0 + static_cast<int64_t>(x0), static_cast<int64_t>(16));
    ...                         auto tmp1 = at::vec::Vectorized<float>::loadu(in_ptr0 + static_cast<int64_t>(x0 + ks0), static_cast<int64_t>(16));
    ...                         auto tmp2 = tmp0 + tmp0;
    ...                         auto tmp3 = tmp2 + tmp1;
    ...                         tmp2.store(out_ptr0 + static_cast<int64_t>(x0));
    ...                         tmp3.store(out_ptr1 + static_cast<int64_t>(x0));
    ...                     }
    ...                     if(C10_UNLIKELY(x0 >= static_cast<int64_t>(16L*(c10::div_floor_integer(static_cast<int64_t>(ks0), static_cast<int64_t>(16L)))) && x0 < static_cast<int64_t>(ks0)))
    ...                     {
    ...                     }
    ...                 }
    ...             }
    ...         }
    ...     }
    ... }'''
    >>> body = rewrite(kernel).split("if(C10_LIKELY")[1].split("if(C10_UNLIKELY")[0]
    >>> print("\\n".join(line.strip()[:60] for line in body.splitlines()[2:8]))
    auto tmp0 = at::vec::Vectorized<float>::loadu(in_ptr0 + stat
    auto tmp2 = tmp0 + tmp0;
    bsnn_store(out_ptr0 + static_cast<int64_t>(x0), tmp2);
    auto tmp1 = at::vec::Vectorized<float>::loadu(in_ptr0 + stat
    auto tmp3 = tmp2 + tmp1;
    bsnn_store(out_ptr1 + static_cast<int64_t>(x0), tmp3);
    >>> rewrite("for(int64_t x0=0; x0<4; x0+=1) {}") is None  # not inductor's vectorised loop: left alone
    True
    """
    if interleave < 1:
        raise ValueError(f"expected interleave of at least 1 (vectors per iteration), got {interleave}")
    lines = source.split("\n")
    streamable = _only_stored(source)
    edits = []  # (first line, last line, replacement), bottom-up below so that earlier indices stay valid
    streaming = 0
    for start, line in enumerate(lines):
        loop = _LOOP.match(line)
        if loop is None:
            continue
        var = loop.group("var")
        if lines[start + 1].strip() != "{" or lines[start + 2].strip() != "{" or lines[start + 4].strip() != "{":
            continue
        full = lines[start + 3].strip()
        if not full.startswith(_FULL_BRANCH.format(var=var)) or not full.endswith(")))"):
            continue
        first = last = start + 5
        while last < len(lines) and lines[last].strip() != "}":
            last += 1
        if last + 1 >= len(lines) or not lines[last + 1].strip().startswith(_TAIL_BRANCH):
            continue
        end = _closing_brace(lines, start + 1)
        body = _reordered(lines[first:last], streamable)
        if body is None or end is None:
            continue
        streaming += sum(line.lstrip().startswith("bsnn_store(") for line in body)
        block = lines[start + 1:first] + body + lines[last:end + 1]
        if interleave == 1:
            edits.append((start + 1, end, block))
        else:
            bound = full[len(_FULL_BRANCH.format(var=var)):-3]
            edits.append((start, end, _interleaved(loop, bound, body, block, interleave)))
    if not edits:
        return None
    for first, last, replacement in reversed(edits):
        lines[first:last + 1] = replacement
    if streaming and not _fence_at_the_end(lines):
        return None
    text = "\n".join(lines)
    opening = text.find('extern "C"')
    if opening < 0:
        return None
    return MARK + "\n" + text[:opening] + _HELPERS + "\n" + text[opening:]


def _interleaved(loop: re.Match, bound: str, body: list[str], block: list[str], k: int) -> list[str]:
    """The loop over ``k`` vectors per iteration: while all ``k`` are whole, their statements side by side
    (statement i of every vector, then statement i + 1: independent neurons' chains of steps overlap in the
    core); the last iterations run the one-vector block as it was, once per vector."""
    var, step = loop.group("var"), int(loop.group("step"))
    indent = loop.group(0)[: len(loop.group(0)) - len(loop.group(0).lstrip())]
    stop = loop.group("stop")
    inner = indent + "    "
    out = [
        f"{indent}for(int64_t {var}=static_cast<int64_t>(0L); {var}<static_cast<int64_t>({stop}); "
        f"{var}+=static_cast<int64_t>({step * k}L))",
        f"{indent}{{",
        f"{inner}if(C10_LIKELY({var} + {step * (k - 1)} < static_cast<int64_t>({bound})))",
        f"{inner}{{",
    ]
    out += [f"{inner}    const int64_t {var}_{i} = {var} + {step * i};" for i in range(k)]
    for statement in body:
        for i in range(k):
            copy = _NAME.sub(lambda m: f"{m.group(0)}_{i}", statement)
            out.append(re.sub(rf"\b{var}\b", f"{var}_{i}", copy))
    out += [f"{inner}}}", f"{inner}else", f"{inner}{{"]
    out.append(
        f"{inner}    for(int64_t {var}_r={var}; {var}_r<std::min<int64_t>({var} + {step * k}, static_cast<int64_t>({stop})); "
        f"{var}_r+=static_cast<int64_t>({step}L))"
    )
    out += [re.sub(rf"\b{var}\b", f"{var}_r", line) for line in block]
    out += [f"{inner}}}", f"{indent}}}"]
    return out


def _only_stored(source: str) -> set[str]:
    """The output buffers that the kernel names only in its signature and in stores (``tmpN.store(out_ptrK
    + ...)``): never read back in any form (a later loop of the same kernel may read what an earlier one
    wrote; those keep ordinary stores)."""
    names = set(re.findall(r"\bout_ptr\d+\b", source))
    only = set()
    for name in names:
        uses = len(re.findall(rf"\b{name}\b", source))
        stores = len(re.findall(rf"\.store\({name} ", source))
        if uses == stores + 1:  # the stores and the kernel's parameter
            only.add(name)
    return only


def _fence_at_the_end(lines: list[str]) -> bool:
    """Put a fence at the end of every parallel region (each thread's streaming stores are seen by all before
    the region's closing barrier), or at the end of the kernel without one; False if the blocks are unclear."""
    regions = [i for i, line in enumerate(lines) if line.strip() == "#pragma omp parallel"]
    if any(line.strip().startswith("#pragma omp parallel ") for line in lines):
        return False  # a region of another form (clauses, a combined construct): where its threads end is unclear
    if not regions:
        kernel = next((i for i, line in enumerate(lines) if line.startswith('extern "C"')), None)
        if kernel is None:
            return False
        body = next((i for i in range(kernel, len(lines)) if lines[i].strip() == "{"), None)
        if body is None:
            return False
        regions = [body - 1]
    for region in reversed(regions):
        if lines[region + 1].strip() != "{":
            return False
        end = _closing_brace(lines, region + 1)
        if end is None:
            return False
        indent = lines[region + 1][: len(lines[region + 1]) - len(lines[region + 1].lstrip())]
        lines.insert(end, f"{indent}    bsnn_fence();")
    return True


def _reordered(body: list[str], streamable: set[str]) -> list[str] | None:
    """The full-vector branch's statements: loads sunk to their first use, output stores raised to their value
    (streaming where the buffer is in ``streamable``); None if the branch holds anything else."""
    definitions, loads, stores, last = [], {}, {}, []
    loaded, stored = set(), set()
    for line in body:
        definition, store, accumulate = _DEFINITION.match(line), _STORE.match(line), _ACCUMULATE.match(line)
        if definition:
            name = definition.group("name")
            loaded.update(_BUFFER.findall(definition.group("value")))  # any read, a load or another form
            if _LOAD.search(definition.group("value")):
                loads[name] = line
            else:
                definitions.append((name, line))
        elif accumulate:  # a sum's step: it goes with its value, as a store does
            stores.setdefault(accumulate.group("name") or accumulate.group("added"), []).append(line)
        elif store:
            args = _split_arguments(store.group("args"))
            output = _OUTPUT.match(args[0]) if len(args) == 1 else None
            if output is None:  # a masked (partial) store or an unknown target: not the plain full-vector loop
                return None
            buffer = output.group("buffer")
            if buffer.startswith("in_out"):  # read and written here: its stores stay last
                last.append(line)
                continue
            stored.add(buffer)
            if buffer in streamable:
                line = f"{store.group('indent')}bsnn_store({args[0]}, {store.group('name')});"
            stores.setdefault(store.group("name"), []).append(line)
        else:
            return None
    if loaded & stored:  # a buffer this branch both reads and writes: its order matters, leave it
        return None
    out: list[str] = []
    placed: set[str] = set()

    def load_what(line: str) -> None:
        value = _DEFINITION.match(line)
        for name in _NAME.findall(value.group("value") if value else line):
            if name in loads and name not in placed:
                placed.add(name)
                load_what(loads[name])
                out.append(loads[name])
                out.extend(stores.pop(name, []))

    def place(name: str, line: str) -> None:
        load_what(line)
        out.append(line)
        out.extend(stores.pop(name, []))

    for name, line in definitions:
        place(name, line)
    for name, line in loads.items():  # a load whose value is stored but never computed with
        if name not in placed:
            placed.add(name)
            place(name, line)
    if stores:  # a store of a value defined nowhere in the branch: not a loop this module knows
        return None
    out.extend(last)
    return out if len(out) == len(body) else None


def _split_arguments(text: str) -> list[str]:
    """``a, f(b, c)`` -> ``["a", "f(b, c)"]``: the top-level comma-separated arguments of a call."""
    args, depth, current = [], 0, []
    for char in text:
        if char == "," and depth == 0:
            args.append("".join(current).strip())
            current = []
            continue
        depth += (char in "(<[") - (char in ")>]")
        current.append(char)
    args.append("".join(current).strip())
    return args


def _closing_brace(lines: list[str], opening: int) -> int | None:
    """The index of the line that closes the block opened on line ``opening``."""
    depth = 0
    for index in range(opening, len(lines)):
        depth += lines[index].count("{") - lines[index].count("}")
        if depth == 0:
            return index
    return None


# --- where inductor hands a kernel's source to the C++ compiler --------------------------------------------

_LOCAL = threading.local()
_COUNTS = {"rewritten": 0, "left": 0}
_INSTALLED: list[str | None] = []  #: [] until installed, then [None] or [why not]
_LOCK = threading.Lock()


def enabled() -> bool:
    """Whether :data:`SWITCH` lets the rewrite run (``on`` by default).

    >>> enabled() in (True, False)
    True
    """
    return switched_on(SWITCH)


class ours:
    """While inside, kernels that inductor compiles are the ``cpu`` backend's own and get rewritten, with
    ``interleave`` vectors of neurons per loop iteration (see :func:`rewrite`).

    A class with slots rather than a generator context: it is entered at every call of a compiled loop.

    >>> with ours(interleave=2):
    ...     print(_LOCAL.interleave)
    2
    >>> getattr(_LOCAL, "interleave", None) is None  # and nothing outside
    True
    """

    __slots__ = ("interleave", "previous")

    def __init__(self, interleave: int = 1) -> None:
        self.interleave = interleave

    def __enter__(self) -> None:
        self.previous = getattr(_LOCAL, "interleave", None)
        _LOCAL.interleave = self.interleave

    def __exit__(self, *exc) -> None:
        _LOCAL.interleave = self.previous


def counts() -> dict[str, int]:
    """How many of the ``cpu`` backend's kernels were rewritten, and how many were left as inductor wrote them.

    >>> sorted(counts())
    ['left', 'rewritten']
    """
    return dict(_COUNTS)


def install() -> str | None:
    """Route the C++ kernels that inductor compiles inside :class:`ours` through :func:`rewrite` (once per
    process); None when in place, else why not (the switch is off, or this PyTorch has no such hook).

    >>> install() in (None, "BSNN_CPU_REWRITE=off")
    True
    """
    if not enabled():
        return f"{SWITCH}=off"
    with _LOCK:
        if not _INSTALLED:
            _INSTALLED.append(_wrap_inductor())
    return _INSTALLED[0]


def _wrap_inductor() -> str | None:
    from torch._inductor import async_compile

    compiler = getattr(async_compile.AsyncCompile, "cpp_pybinding", None)
    if compiler is None:
        return "this PyTorch's inductor has no AsyncCompile.cpp_pybinding"

    def cpp_pybinding(self, argtypes, source_code, *args, **kwargs):
        return compiler(self, argtypes, _for_us(source_code), *args, **kwargs)

    cpp_pybinding.__wrapped__ = compiler  # type: ignore[attr-defined]
    async_compile.AsyncCompile.cpp_pybinding = cpp_pybinding
    return None


def _for_us(source: str) -> str:
    interleave = getattr(_LOCAL, "interleave", None)
    if interleave is None or not enabled():
        return source
    rewritten = rewrite(source, interleave)
    _COUNTS["rewritten" if rewritten is not None else "left"] += 1
    return source if rewritten is None else rewritten

