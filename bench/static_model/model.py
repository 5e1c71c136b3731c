"""The performance model: occupancy from the registers, one thread's time from its SASS (:func:`simulate`), and
both to a modelled fraction of the H200's bandwidth (:func:`model`); the assumptions are in the package's
docstring (``bench/static_model/__init__.py``)."""

from __future__ import annotations

from dataclasses import dataclass

from typing import TYPE_CHECKING

from .sass import Instruction, LoopReport

if TYPE_CHECKING:
    from .launches import Launch

# --- the machine (H200 SXM) -------------------------------------------------------------------------------
SMS = 132
REGISTERS_PER_SM = 65536
MAX_WARPS_PER_SM = 64
MAX_CTAS_PER_SM = 32
SHARED_PER_SM = 228 * 1024
SCHEDULERS = 4  # warp schedulers per SM, one warp-instruction per clock each


@dataclass
class Machine:
    bandwidth: float = 4.8e12  # B/s
    clock: float = 1.98e9  # Hz
    latency: float = 600e-9  # s

    def describe(self) -> str:
        return (
            f"H200 SXM model: {self.bandwidth / 1e12:.1f} TB/s over {SMS} SMs ({self.bandwidth / SMS / 1e9:.1f} B/ns "
            f"per SM), {self.clock / 1e9:.2f} GHz, DRAM latency {self.latency * 1e9:.0f} ns "
            f"(so {self.bandwidth / SMS * self.latency / 1024:.1f} KB in flight per SM to reach the bandwidth)"
        )




def simulate(parts: list[list[Instruction]], latency_cycles: float) -> list[float]:
    """Cycles one thread spends in each part, alone on its SM: an instruction issues one clock after the
    previous one, or when the registers it reads (or overwrites) have arrived from an earlier global load,
    ``latency_cycles`` after that load issued. Stores and everything else cost their issue clock."""
    ready: dict[int, float] = {}  # register -> clock its pending load delivers it
    now = 0.0
    out = []
    for code in parts:
        start = now
        for ins in code:
            written, read = ins.registers()
            waits = [ready[r] for r in read | written if r in ready]
            if waits:
                now = max(now, max(waits))
            for r in read | written:
                if r in ready and ready[r] <= now:
                    del ready[r]
            now += 1
            if ins.is_load:
                for r in written:
                    ready[r] = now + latency_cycles
        out.append(now - start)
    return out


def occupancy(registers: int, warps_per_cta: int, shared: int) -> int:
    """CTAs per SM on sm_80 / sm_90: registers allocated per warp in units of 256, 64 warps, 32 CTAs."""
    per_warp = -(-max(registers, 1) * 32 // 256) * 256
    warps_by_registers = REGISTERS_PER_SM // per_warp
    ctas = min(MAX_CTAS_PER_SM, MAX_WARPS_PER_SM // warps_per_cta, warps_by_registers // warps_per_cta)
    if shared:
        ctas = min(ctas, SHARED_PER_SM // shared)
    return ctas


def model(launch: Launch, result: dict, loop: LoopReport, machine: Machine) -> dict:
    """Registers to occupancy, the SASS to a thread's time, and both to a fraction of the bandwidth."""
    warps = launch.options["num_warps"]
    ctas = occupancy(result["regs"], warps, result["shared"])
    threads = ctas * warps * 32
    out = dict(
        ctas_per_sm=ctas,
        warps_per_sm=ctas * warps,
        instructions_per_neuron_step=round(len(loop.body) / loop.steps_per_iteration / launch.neurons_per_thread, 1),
        steps_per_iteration=loop.steps_per_iteration,
        loads_before_stores=loop.loads_before_stores,
        order=loop.order,
    )
    cycles = machine.latency * machine.clock
    # a steady-state iteration (loads issued at the end of one may be consumed by the next)
    iteration = simulate([loop.body, loop.body], cycles)[1] if loop.found else simulate([loop.body], cycles)[0]
    # Little's law for one thread: the bytes it loads per iteration were each in flight for a latency
    out["bytes_in_flight_per_sm"] = round(loop.load_bytes_per_iteration * cycles / max(iteration, 1) * threads)
    out["iteration_latency_share"] = round(1 - len(loop.body) / max(iteration, 1), 2)  # waiting, not issuing
    if launch.bytes_per_neuron_step is None or not threads:
        return out
    neuron_steps = launch.neurons_per_thread * launch.steps  # per thread
    t_bytes = threads * neuron_steps * launch.bytes_per_neuron_step / (machine.bandwidth / SMS)
    t_issue = (threads / 32) * loop.instructions / (SCHEDULERS * machine.clock)
    fractions = {}
    for latency in (machine.latency, 1.5 * machine.latency):
        parts = [loop.prologue] + [loop.body] * loop.iterations + [loop.epilogue]
        t_thread = sum(simulate(parts, latency * machine.clock)) / machine.clock
        t = max(t_bytes, t_issue, t_thread)
        bound = "bandwidth" if t == t_bytes else ("issue" if t == t_issue else "latency")
        fractions[latency] = (t_bytes / t, t, bound)
    fraction, t, bound = fractions[machine.latency]
    out.update(
        bytes_per_neuron_step=launch.bytes_per_neuron_step,
        fraction=round(fraction, 3),
        fraction_slow_memory=round(fractions[1.5 * machine.latency][0], 3),
        bound=bound,
        ps_per_neuron_step=round(t / (threads * neuron_steps) / SMS * 1e12, 3),
    )
    return out
