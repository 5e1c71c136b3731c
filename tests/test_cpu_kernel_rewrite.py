"""The rewrite of the ``cpu`` backend's C++ (engine/cpu_kernel_rewrite.py): on inductor's real kernels, the same
statements in a new order, streaming stores only where nothing reads the buffer back, a fence per parallel
region, and results equal to the reference bit for bit (aligned, unaligned and multi-threaded); the kernels it
must leave alone; its switch; a user's own torch.compile untouched.

The tests that compile are slow; in the fast subset, ``tests/test_cpu_backend.py``'s shared variant runs
rewritten kernels (per-channel and per-neuron loops) against the reference."""

import re
from collections import Counter

import pytest
import torch

from bsnn_lightning.engine import SpikingJellyLIF, cpu_kernel_rewrite, multistep
from test_cpu_backend import _check

LIF = {"tau": 1.7, "threshold": 1.0}


@pytest.fixture
def captured(monkeypatch):
    """Every (source, rewritten source, vectors per iteration) that the cpu backend hands to the C++ compiler
    from now on."""
    pairs = []
    rewrite = cpu_kernel_rewrite.rewrite

    def spy(source, interleave=1):
        out = rewrite(source, interleave)
        pairs.append((source, out, interleave))
        return out

    monkeypatch.setattr(cpu_kernel_rewrite, "rewrite", spy)
    return pairs


def _statements(source: str) -> list[str]:
    """The statements of every full-vector branch, written one way: stores as ``v.store(p)``, the copies of an
    interleaved loop under the names of the one-vector loop (``tmp3_1`` as ``tmp3``, ``x0_1`` and ``x0_r`` as
    ``x0``), without the copies' index definitions."""
    out, lines = [], source.split("\n")
    for i, line in enumerate(lines):
        if line.strip().startswith("if(C10_LIKELY("):
            for stmt in _statements_of_branch(lines, i):
                if stmt.startswith("const int64_t "):
                    continue
                stmt = re.sub(r"^bsnn_store\((.*), (tmp\d+(?:_\d+)?)\);$", r"\2.store(\1);", stmt)
                stmt = re.sub(r"\b(tmp\d+)_\d+\b", r"\1", stmt)
                out.append(re.sub(r"\b(x\d+)_(?:\d+|r)\b", r"\1", stmt))
    return out


def _assert_defined_before_use(source: str) -> None:
    for i, line in enumerate(source.split("\n")):
        if line.strip().startswith("if(C10_LIKELY("):
            defined = set()
            for stmt in _statements_of_branch(source.split("\n"), i):
                value = stmt.split("=", 1)[1] if stmt.startswith("auto ") else stmt
                used = set(re.findall(r"\btmp\d+\b", value))
                assert used <= defined, f"{stmt!r} uses {sorted(used - defined)} before their definition"
                if stmt.startswith("auto "):
                    defined.add(stmt.split()[1])


def _statements_of_branch(lines, i):
    j = i + 2
    while lines[j].strip() != "}":
        yield lines[j].strip()
        j += 1


def _case(shape, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=gen) * 0.8 + 0.6


@pytest.mark.slow
def test_real_kernels_keep_their_statements_and_results(captured):
    """A SpikingJelly LIF (decay_input=False, sigmoid surrogate: a variant of its own here) forward and backward:
    both kernels rewritten; the same statements (the forward's twice side by side, and once more for the
    last vectors), each value defined before it is used, every output store streaming (nothing reads them
    back) and one fence per parallel region; spikes and states bit for bit."""
    before = cpu_kernel_rewrite.counts()["rewritten"]
    dynamics = SpikingJellyLIF(decay_input=False, surrogate="sigmoid")
    _check(dynamics, LIF, _case((6, 4, 32)), 0.0, needs=("x",))  # 128 neurons: whole vectors, aligned steps
    assert cpu_kernel_rewrite.counts()["rewritten"] >= before + 2
    rewritten = [(src, out, k) for src, out, k in captured if out is not None]
    assert sorted(k for _, _, k in rewritten) == [1, 2]  # one backward, one forward
    for source, out, interleave in rewritten:
        assert out.startswith(cpu_kernel_rewrite.MARK)
        copies = 1 if interleave == 1 else interleave + 1
        assert Counter(_statements(out)) == Counter({s: n * copies for s, n in Counter(_statements(source)).items()})
        _assert_defined_before_use(out)
        assert "bsnn_store(" in out and ".store(out_ptr" not in "".join(_statements_of_branch_all(out))
        regions = source.count("#pragma omp parallel") or 1
        assert out.count("bsnn_fence();") == regions
        # compiled at 128 neurons, a parallel region all the same (the threads are decided when it runs: the
        # variant serves larger layers too)
        assert "#pragma omp parallel\n" in source


def _statements_of_branch_all(source):
    lines = source.split("\n")
    return [s for i, line in enumerate(lines) if line.strip().startswith("if(C10_LIKELY(") for s in _statements_of_branch(lines, i)]


@pytest.mark.slow
def test_unaligned_steps_and_a_tail_are_exact():
    """37 neurons per sample: a partial vector at the end of every row, and steps whose start is not 64-byte
    aligned (the streaming store falls back to an ordinary one there)."""
    _check(SpikingJellyLIF(decay_input=False, surrogate="sigmoid"), LIF, _case((6, 3, 37), seed=1), 0.0, needs=("x",))


@pytest.mark.slow
def test_many_threads_and_streaming_stores_are_exact():
    """A layer large enough for inductor's parallel loop (131,072 neurons): every thread's streaming stores are
    fenced before the caller reads them."""
    x = _case((4, 8, 16384), seed=2)
    _check(SpikingJellyLIF(decay_input=False, surrogate="sigmoid"), LIF, x, 0.0, needs=("x",))


# --- what it leaves alone ----------------------------------------------------------------------------------

_KERNEL = """extern "C" void kernel(const float* in_ptr0, float* out_ptr0, float* out_ptr1, const int64_t ks0)
{
    #pragma omp parallel
    {
        {
            #pragma omp for
            for(int64_t x0=static_cast<int64_t>(0L); x0<static_cast<int64_t>(ks0); x0+=static_cast<int64_t>(16L))
            {
                {
                    if(C10_LIKELY(x0 >= static_cast<int64_t>(0) && x0 < static_cast<int64_t>(16L*(ks0/16))))
                    {
BODY
                    }
                    if(C10_UNLIKELY(x0 >= static_cast<int64_t>(16L*(ks0/16)) && x0 < static_cast<int64_t>(ks0)))
                    {
                    }
                }
            }
        }
AFTER
    }
}"""
_LOAD0 = "auto tmp0 = at::vec::Vectorized<float>::loadu(in_ptr0 + static_cast<int64_t>(x0), static_cast<int64_t>(16));"
_TWICE = "auto tmp1 = tmp0 + tmp0;"


def _kernel(*body, after=""):
    return _KERNEL.replace("BODY", "\n".join(" " * 24 + line for line in body)).replace("AFTER", after)


def test_a_plain_kernel_is_rewritten():
    out = cpu_kernel_rewrite.rewrite(_kernel(_LOAD0, _TWICE, "tmp1.store(out_ptr0 + static_cast<int64_t>(x0));"))
    assert "bsnn_store(out_ptr0 + static_cast<int64_t>(x0), tmp1);" in out and out.count("bsnn_fence();") == 1


def test_two_vectors_side_by_side():
    """interleave=2: the loop steps over two vectors; while both are whole, statement i of each, side by side;
    the last vectors run the one-vector block (renamed x0_r), tail included."""
    out = cpu_kernel_rewrite.rewrite(_kernel(_LOAD0, _TWICE, "tmp1.store(out_ptr0 + static_cast<int64_t>(x0));"), interleave=2)
    assert "x0+=static_cast<int64_t>(32L))" in out and "if(C10_LIKELY(x0 + 16 < static_cast<int64_t>(16L*(ks0/16))))" in out
    both = [line.strip() for line in out.split("\n") if "tmp1_" in line or "tmp0_" in line]
    assert both[:4] == [
        "auto tmp0_0 = at::vec::Vectorized<float>::loadu(in_ptr0 + static_cast<int64_t>(x0_0), static_cast<int64_t>(16));",
        "auto tmp0_1 = at::vec::Vectorized<float>::loadu(in_ptr0 + static_cast<int64_t>(x0_1), static_cast<int64_t>(16));",
        "auto tmp1_0 = tmp0_0 + tmp0_0;",
        "auto tmp1_1 = tmp0_1 + tmp0_1;",
    ]
    assert "for(int64_t x0_r=x0; x0_r<std::min<int64_t>(x0 + 32, static_cast<int64_t>(ks0)); x0_r+=static_cast<int64_t>(16L))" in out
    assert "if(C10_UNLIKELY(x0_r >= static_cast<int64_t>(16L*(ks0/16)) && x0_r < static_cast<int64_t>(ks0)))" in out
    with pytest.raises(ValueError, match="expected interleave of at least 1"):
        cpu_kernel_rewrite.rewrite(_kernel(_LOAD0), interleave=0)


def test_a_sums_step_goes_with_its_value():
    """A sum's step (serial: into the accumulator; parallel: into the thread's cascade) moves up to just after
    its value, as a store does; interleaved, both copies add into the one accumulator, copy 0 first."""
    for step in (
        "tmp_acc0_vec = tmp_acc0_vec + tmp1;",
        "tmp_acc0_vec_local = tmp_acc0_vec_local + tmp1;",
        "tmp_acc0_vec_local = cascade_sum_combine(tmp1, &cascade_helper0);",
    ):
        later = "auto tmp2 = at::vec::Vectorized<float>::loadu(in_ptr0 + static_cast<int64_t>(x0 + ks0), static_cast<int64_t>(16));"
        body = (_LOAD0, later, _TWICE, "auto tmp3 = tmp1 + tmp2;", "tmp3.store(out_ptr0 + static_cast<int64_t>(x0));", step)
        out = cpu_kernel_rewrite.rewrite(_kernel(*body))
        branch = _statements_of_branch_all(out)
        assert branch.index(step) == branch.index(_TWICE) + 1 < branch.index(later), branch
        paired = cpu_kernel_rewrite.rewrite(_kernel(*body), interleave=2)
        copies = [line.strip() for line in paired.split("\n") if "tmp_acc0_vec" in line and "tmp1_" in line]
        assert copies == [step.replace("tmp1", "tmp1_0"), step.replace("tmp1", "tmp1_1")]


@pytest.mark.parametrize(
    "body, why",
    [
        ((_LOAD0, _TWICE, "tmp1.store(out_ptr0 + static_cast<int64_t>(x0), static_cast<int64_t>(8));"), "a masked store"),
        (
            (
                _LOAD0,
                "auto tmp2 = at::vec::Vectorized<float>::loadu(out_ptr0 + static_cast<int64_t>(x0), static_cast<int64_t>(16));",
                "auto tmp1 = tmp0 + tmp2;",
                "tmp1.store(out_ptr0 + static_cast<int64_t>(x0));",
            ),
            "a buffer read and written in the branch",
        ),
        ((_LOAD0, "tmp_acc0_vec = at::vec::maximum(tmp_acc0_vec, tmp0);"), "a reduction other than a sum"),
        ((_LOAD0, "tmp_acc0_vec = tmp_acc1_vec + tmp0;"), "a sum into another accumulator than its own"),
        ((_LOAD0, "tmp_acc0_vec_local = tmp_acc0_vec + tmp0;"), "a sum into another accumulator than its own, local"),
        ((_LOAD0, _TWICE, "tmp9.store(out_ptr0 + static_cast<int64_t>(x0));"), "a store of an undefined value"),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_kernels_it_does_not_know_are_left_as_inductor_wrote_them(body, why):
    assert cpu_kernel_rewrite.rewrite(_kernel(*body)) is None, why


def test_a_parallel_region_of_another_form_is_left_alone():
    """Streaming stores need every thread fenced before its region ends; with clauses on the region (or a
    combined construct) the rewrite does not guess where that is."""
    kernel = _kernel(_LOAD0, _TWICE, "tmp1.store(out_ptr0 + static_cast<int64_t>(x0));")
    assert cpu_kernel_rewrite.rewrite(kernel.replace("#pragma omp parallel", "#pragma omp parallel num_threads(2)")) is None


def test_no_vector_loop_is_left_alone():
    assert cpu_kernel_rewrite.rewrite('extern "C" void kernel(float* out_ptr0)\n{\n    out_ptr0[0] = 1;\n}') is None


def test_a_buffer_read_back_later_keeps_ordinary_stores():
    """out_ptr1 is read after the loop (as a later loop of the same kernel would): no streaming store for it."""
    after = " " * 8 + "auto tmp9 = out_ptr1[static_cast<int64_t>(0L)];"
    body = (_LOAD0, _TWICE, "tmp1.store(out_ptr0 + static_cast<int64_t>(x0));", "tmp0.store(out_ptr1 + static_cast<int64_t>(x0));")
    out = cpu_kernel_rewrite.rewrite(_kernel(*body, after=after))
    assert "bsnn_store(out_ptr0 + static_cast<int64_t>(x0), tmp1);" in out
    assert "tmp0.store(out_ptr1 + static_cast<int64_t>(x0));" in out


def test_the_switch(monkeypatch):
    source = _kernel(_LOAD0, _TWICE, "tmp1.store(out_ptr0 + static_cast<int64_t>(x0));")
    monkeypatch.setenv(cpu_kernel_rewrite.SWITCH, "off")
    before = cpu_kernel_rewrite.counts()
    with cpu_kernel_rewrite.ours():
        assert cpu_kernel_rewrite._for_us(source) is source
    assert cpu_kernel_rewrite.counts() == before
    assert cpu_kernel_rewrite.install() == "BSNN_CPU_REWRITE=off"
    monkeypatch.setenv(cpu_kernel_rewrite.SWITCH, "sometimes")
    with pytest.raises(ValueError, match="expected BSNN_CPU_REWRITE 'on' or 'off', got 'sometimes'"):
        cpu_kernel_rewrite.enabled()
    monkeypatch.setenv(cpu_kernel_rewrite.SWITCH, "on")
    assert cpu_kernel_rewrite._for_us(source) is source  # outside ours(): not the cpu backend's kernel
    with cpu_kernel_rewrite.ours():
        assert cpu_kernel_rewrite._for_us(source).startswith(cpu_kernel_rewrite.MARK)


@pytest.mark.slow
def test_a_users_own_compiled_function_is_not_rewritten(captured):
    """After the cpu backend installed the hook, a user's torch.compile goes through inductor unchanged."""
    multistep(_case((2, 2, 16)), SpikingJellyLIF(), {"tau": 2.0, "threshold": 1.0}, backend="cpu")
    assert cpu_kernel_rewrite.install() is None
    before = cpu_kernel_rewrite.counts()
    captured.clear()
    compiled = torch.compile(lambda a: (a * 3 + 1).relu(), dynamic=False)
    a = torch.randn(4096)
    assert torch.equal(compiled(a), (a * 3 + 1).relu())
    assert cpu_kernel_rewrite.counts() == before and not captured
