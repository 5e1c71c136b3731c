"""The static model of ``bench/kernels_static.py`` (the package ``bench/static_model``) against real SASS.

The fixtures (``bench/static_model/fixtures/``, how they were made in its README) are the SASS and ptxas logs of
three kernels compiled for sm_90 by the tool itself. The expected figures were read off the SASS by hand:
the loop is the backward branch at the end of the body, its length is (end - start) / 16 + 1
instructions, and the global loads (``LDG``) and stores (``STG``) were counted in that range."""

import gzip
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from static_model.cli import kernel_rows, problems  # noqa: E402
from static_model.compiling import read_ptxas_log  # noqa: E402
from static_model.launches import Launch  # noqa: E402
from static_model.model import Machine, model, occupancy, simulate  # noqa: E402
from static_model.sass import analyse, branch_target, kernel_body, parse, slow_paths  # noqa: E402

FIXTURES = ROOT / "bench" / "static_model" / "fixtures"


def sass(name: str) -> str:
    return gzip.decompress((FIXTURES / f"{name}.sass.gz").read_bytes()).decode()


def launch(kernel: str, steps: int, chunk: int, per_thread: int, nbytes: float | None = None) -> Launch:
    return Launch(label=kernel, kernel=kernel, signature={}, constants={}, attrs={}, options={"num_warps": 4},
                  steps=steps, neurons_per_thread=per_thread, steps_per_iteration=chunk,
                  bytes_per_neuron_step=nbytes)  # fmt: skip


FORWARD = launch("multistep_forward_kernel", steps=3, chunk=4, per_thread=4)
BACKWARD = launch("multistep_backward_kernel", steps=3, chunk=4, per_thread=1)
SCALAR = launch("multistep_forward_kernel", steps=40, chunk=8, per_thread=1)


@pytest.mark.parametrize(
    "name, regs", [("sm90-lif-plain-fp32-T3-fwd", 40), ("sm90-lif-plain-fp32-T3-bwd", 32), ("sm90-lif-M1-T40-fwd", 32)]
)
def test_ptxas_log_gives_registers_and_no_spills(name, regs):
    figures = read_ptxas_log((FIXTURES / f"{name}.ptxas.log").read_text())
    assert figures == {"regs": regs, "stack": 0, "spill_stores": 0, "spill_loads": 0}


def test_ptxas_log_spills_and_stack_are_read():
    log = (
        "ptxas info    : Function properties for k\n"
        "    24 bytes stack frame, 16 bytes spill stores, 20 bytes spill loads\n"
        "ptxas info    : Used 255 registers, used 0 barriers, 24 bytes cumulative stack size\n"
    )
    assert read_ptxas_log(log) == {"regs": 255, "stack": 24, "spill_stores": 16, "spill_loads": 20}


@pytest.mark.parametrize(
    "name, target, start, end, loads, load_bytes, order, prologue, epilogue",
    [
        # the forward: 4 neurons per thread, 16-byte accesses; the reciprocal of tau's slow path (the branch at
        # 0x220 over the CALL at 0x240 to 0x260) is out of the fast path: 47 - 3 prologue instructions
        ("sm90-lif-plain-fp32-T3-fwd", FORWARD, 0x2F0, 0x11F0, 4, 64, "L4 S4", 44, 6),
        # the backward: the branch at 0x190 over the CALL at 0x1b0; the kernel ends at the EXIT at 0xe20
        ("sm90-lif-plain-fp32-T3-bwd", BACKWARD, 0x2D0, 0xE10, 9, 36, "L9 S4", 43, 1),
        # scalar accesses: 8 loads (x of the chunk's 8 steps), then the spikes' and the state's stores
        # (the branch at 0x1c0 over the CALL at 0x1e0 to 0x200: 42 - 3 prologue instructions)
        ("sm90-lif-M1-T40-fwd", SCALAR, 0x2A0, 0xBA0, 8, 32, "L8 S17", 39, 8),
    ],
)
def test_the_time_loop_is_found_with_its_loads_and_stores(name, target, start, end, loads, load_bytes, order,
                                                          prologue, epilogue):  # fmt: skip
    report = analyse(sass(name), target)
    assert report.found
    assert (report.body[0].address, report.body[-1].address) == (start, end)
    assert report.body[-1].op == "BRA" and branch_target(report.body[-1]) == start  # the loop's back edge
    assert len(report.body) == (end - start) // 16 + 1
    assert sum(ins.is_load for ins in report.body) == loads
    assert report.load_bytes_per_iteration == load_bytes
    assert report.order == order
    assert report.loads_before_stores
    assert (len(report.prologue), len(report.epilogue)) == (prologue, epilogue)
    assert report.shared_in_loop == report.local_in_loop == 0
    assert report.iterations == -(-target.steps // target.steps_per_iteration)


def test_slow_path_and_kernel_end():
    code = kernel_body(parse(sass("sm90-lif-plain-fp32-T3-fwd")))
    assert code[-1].op == "EXIT" and code[-1].address == 0x1250  # the subroutine (IEEE division) starts at 0x1260
    skipped = sorted(code[i].address for i in slow_paths(code))
    assert skipped == [0x230, 0x240, 0x250]


def test_a_store_before_the_last_load_is_reported():
    """The order check can fail: the forward's loop with its first store moved ahead of its loads."""
    text = sass("sm90-lif-plain-fp32-T3-fwd").splitlines()
    store = next(i for i, line in enumerate(text) if "/*1020*/" in line)
    load = next(i for i, line in enumerate(text) if "/*0370*/" in line)
    address = lambda line, a: line.replace(line[line.index("/*"):line.index("*/") + 2], f"/*{a:04x}*/")  # noqa: E731
    swapped = list(text)
    swapped[load], swapped[store] = address(text[store], 0x370), address(text[load], 0x1020)
    report = analyse("\n".join(swapped), FORWARD)
    assert report.order == "S1 L4 S3" and not report.loads_before_stores


def test_occupancy_from_registers():
    assert occupancy(40, 4, 0) == 12  # 40 x 32 = 1280 per warp -> 51 warps -> 12 CTAs of 4
    assert occupancy(32, 4, 0) == 16  # 1024 per warp -> 64 warps: the 64-warp limit
    assert occupancy(255, 4, 0) == 2  # 8192 per warp -> 8 warps
    assert occupancy(32, 4, 48 * 1024) == 4  # 228 KB of shared memory / 48 KB


def test_simulated_thread_waits_for_its_loads():
    lines = [
        "        /*0000*/                   LDG.E R4, desc[UR10][R4.64] ;",
        "        /*0010*/                   S2UR UR6, SR_CTAID.X ;",
        "        /*0020*/                   FADD R5, R4, R4 ;",  # reads R4: waits for the load
        "        /*0030*/                   STG.E desc[UR10][R2.64], R5 ;",
    ]
    code = parse("\n".join(lines))
    assert [ins.op for ins in code] == ["LDG", "S2UR", "FADD", "STG"]
    # LDG issues in clock 0 and R4 arrives 100 clocks after (at 101), S2UR issues in clock 1, FADD waits for R4
    # and issues in clock 101, STG in clock 102: 103 clocks; split after S2UR, the first part takes 2
    assert simulate([code], 100) == [103]
    assert simulate([code[:2], code[2:]], 100) == [2, 101]
    assert simulate([code], 10) == [13]


def test_model_rows_of_the_saved_kernels():
    machine = Machine()
    result = dict(regs=40, spill_stores=0, spill_loads=0, stack=0, shared=0, seconds=0.0)
    rows = kernel_rows(sass("sm90-lif-plain-fp32-T3-fwd"), result, [FORWARD], 90, machine)
    (row,) = rows
    assert row["ctas_per_sm"] == 12 and row["warps_per_sm"] == 48
    assert row["instructions_per_neuron_step"] == round(241 / 4 / 4, 1) == 15.1
    assert row["order"] == "L4 S4" and row["loads_before_stores"] and row["loop_found"]
    assert (result["LDS"], result["STS"], result["LDL"], result["STL"]) == (0, 0, 0, 0)
    assert problems(result, shared_counts=True) == []
    assert problems(dict(result, spill_stores=8, LDL=2), shared_counts=True) == [
        "spills 8/0 bytes", "local memory (LDL 2, STL 0, stack 0)"
    ]
    assert problems(dict(result, shared=512), shared_counts=False) == []
    assert problems(dict(result, shared=512), shared_counts=True) == ["shared memory (512 bytes, LDS 0, STS 0)"]


def test_bandwidth_model_of_a_saved_kernel():
    """8 bytes per neuron-step: the 1536 resident threads (12 CTAs x 128) need 12 neuron-steps x 8 bytes each at
    4.8 TB/s / 132 SMs, 4.06 us, longer than their issue time (48 warps x 291 instructions at 4 per clock,
    1.76 us) and than one thread's time (a few DRAM latencies of 600 ns): bandwidth-bound, fraction 1."""
    machine = Machine()
    target = launch("multistep_forward_kernel", steps=3, chunk=4, per_thread=4, nbytes=8.0)
    loop = analyse(sass("sm90-lif-plain-fp32-T3-fwd"), target)
    assert loop.instructions == 44 + 241 + 6
    out = model(target, dict(regs=40, shared=0), loop, machine)
    assert out["bound"] == "bandwidth" and out["fraction"] == 1.0
    t_bytes = 1536 * 12 * 8.0 / (machine.bandwidth / 132)
    assert out["ps_per_neuron_step"] == round(t_bytes / (1536 * 12) / 132 * 1e12, 3)
    thin = model(launch("multistep_forward_kernel", steps=3, chunk=4, per_thread=4, nbytes=0.5),
                 dict(regs=40, shared=0), loop, machine)  # fmt: skip
    assert thin["bound"] in ("issue", "latency") and thin["fraction"] < 1.0
