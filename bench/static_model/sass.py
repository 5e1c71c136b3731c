"""The SASS of a kernel (``cuobjdump -sass``): its instructions, the fast path (IEEE division's slow-path calls
left out), the time loop (the largest backward branch), its global loads and stores and their order.

``analyse`` needs of a launch only ``steps`` (T), ``steps_per_iteration`` (CHUNK) and ``loads_per_step``
(for a loop whose unrolling is the compiler's choice)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

#: one instruction line: /*address*/  [@predicate] OP[.MODIFIERS] operands ;
SASS_LINE = re.compile(r"^\s+/\*([0-9a-f]{4,})\*/\s+(@!?U?P[T0-9]+\s+)?([A-Z][A-Z0-9_]*)((?:\.[A-Z0-9_]+)*)\s*([^;]*);")


@dataclass
class Instruction:
    address: int
    predicate: str
    op: str
    modifiers: str
    operands: str

    @property
    def is_load(self) -> bool:
        return self.op == "LDG"

    @property
    def is_store(self) -> bool:
        return self.op == "STG"

    @property
    def width(self) -> int:
        """Bytes per thread of a global load or store."""
        mods = self.modifiers.split(".")
        for token, size in (("128", 16), ("64", 8), ("U16", 2), ("S16", 2), ("U8", 1), ("S8", 1)):
            if token in mods:
                return size
        return 4

    def registers(self) -> tuple[set[int], set[int]]:
        """(written, read) general registers; a ``.64`` operand names a pair, a 64/128-bit load a run."""
        parts = [p.strip() for p in self.operands.split(",")] if self.operands else []
        written, read = set(), set()
        no_dest = self.is_store or self.op in ("BRA", "EXIT", "BSSY", "BSYNC", "CALL", "RET", "BAR", "NOP",
                                               "WARPSYNC", "STS", "STL", "RED", "ATOM")
        for i, part in enumerate(parts):
            regs = set()
            for match in re.finditer(r"\bR(\d+)(\.64)?\b", part):
                base = int(match.group(1))
                regs.update((base, base + 1) if match.group(2) else (base,))
            if i == 0 and not no_dest and not part.startswith("["):
                if self.is_load:
                    regs = set(range(min(regs), min(regs) + max(self.width // 4, 1))) if regs else regs
                elif self.op.endswith("WIDE") or ".WIDE" in self.modifiers or ".64" in self.modifiers:
                    regs = {r for base in regs for r in (base, base + 1)}
                written |= regs
            else:
                read |= regs
        return written, read


def parse(sass: str) -> list[Instruction]:
    out = []
    for line in sass.splitlines():
        match = SASS_LINE.match(line)
        if match:
            address, predicate, op, modifiers, operands = match.groups()
            out.append(Instruction(int(address, 16), (predicate or "").strip(), op, modifiers, operands.strip()))
    return out


def slow_paths(code: list[Instruction]) -> set[int]:
    """Indices of instructions a fast path skips: from a predicated branch over a CALL to its target."""
    index = {ins.address: i for i, ins in enumerate(code)}
    skipped = set()
    for i, ins in enumerate(code):
        if ins.op != "CALL":
            continue
        for j in range(i - 1, max(i - 8, -1), -1):
            branch = code[j]
            if branch.op == "BRA" and branch.predicate:
                target = branch_target(branch)
                if target is not None and target > ins.address and target in index:
                    skipped.update(range(j + 1, index[target]))
                break
    return skipped


def branch_target(ins: Instruction) -> int | None:
    match = re.search(r"0x([0-9a-f]+)", ins.operands)
    return int(match.group(1), 16) if match else None


def kernel_body(code: list[Instruction]) -> list[Instruction]:
    """The kernel up to its last EXIT before the subroutines (IEEE division's slow path) and padding."""
    exits = [i for i, ins in enumerate(code) if ins.op == "EXIT"]
    calls = [branch_target(ins) for ins in code if ins.op == "CALL"]
    first_sub = min((t for t in calls if t is not None), default=None)
    end = len(code)
    if first_sub is not None:
        end = next((i for i, ins in enumerate(code) if ins.address >= first_sub), end)
    last_exit = max((i for i in exits if i < end), default=end - 1)
    return code[: last_exit + 1]


@dataclass
class LoopReport:
    found: bool  # False: no loop (T a constexpr, unrolled): the whole kernel is one iteration
    prologue: list = field(default_factory=list)  # fast-path instructions before, in and after the loop
    body: list = field(default_factory=list)
    epilogue: list = field(default_factory=list)
    load_bytes_per_iteration: int = 0
    loads_before_stores: bool = True
    order: str = ""
    shared_in_loop: int = 0
    local_in_loop: int = 0
    steps_per_iteration: int = 1
    iterations: int = 1

    @property
    def instructions(self) -> int:
        """Executed per thread over the whole kernel (fast paths)."""
        return len(self.prologue) + self.iterations * len(self.body) + len(self.epilogue)


def analyse(sass: str, launch) -> LoopReport:
    """The time loop of a kernel's SASS (the largest backward branch; the steps inside it are unrolled) and
    how often a thread runs it. A kernel with no loop (SpikingJelly's T is a constexpr) is one iteration."""
    code = kernel_body(parse(sass))
    skipped = slow_paths(code)
    fast = [ins for i, ins in enumerate(code) if i not in skipped]
    index = {ins.address: i for i, ins in enumerate(fast)}
    loop = None
    for i, ins in enumerate(fast):
        if ins.op == "BRA":
            target = branch_target(ins)
            if target is not None and target < ins.address and target in index:
                span = (index[target], i)
                if loop is None or span[1] - span[0] > loop[1] - loop[0]:
                    loop = span
    if loop is None:
        report = LoopReport(found=False, body=fast)
    else:
        report = LoopReport(found=True, prologue=fast[: loop[0]], body=fast[loop[0] : loop[1] + 1],
                            epilogue=fast[loop[1] + 1 :])
    body = report.body
    memory = [ins for ins in body if ins.is_load or ins.is_store]
    report.load_bytes_per_iteration = sum(ins.width for ins in body if ins.is_load)
    loads = sum(ins.is_load for ins in body)
    if loop is None:
        report.steps_per_iteration = launch.steps
    elif launch.loads_per_step:  # a loop whose unrolling is the compiler's choice: count its step loads
        report.steps_per_iteration = max(loads // launch.loads_per_step, 1)
    else:
        report.steps_per_iteration = launch.steps_per_iteration
    report.iterations = -(-launch.steps // report.steps_per_iteration)
    report.order = order(memory)
    first_store = next((i for i, ins in enumerate(memory) if ins.is_store), None)
    last_load = max((i for i, ins in enumerate(memory) if ins.is_load), default=None)
    report.loads_before_stores = first_store is None or last_load is None or last_load < first_store
    report.shared_in_loop = sum(ins.op in ("LDS", "STS") for ins in body)
    report.local_in_loop = sum(ins.op in ("LDL", "STL") for ins in body)
    return report


def order(memory: list[Instruction]) -> str:
    """Global loads (L) and stores (S) of one iteration, runs compressed: 'L16 S1 L1 S1' ..."""
    out, last, count = [], None, 0
    for ins in memory:
        kind = "L" if ins.is_load else "S"
        if kind == last:
            count += 1
        else:
            if last:
                out.append(f"{last}{count}")
            last, count = kind, 1
    if last:
        out.append(f"{last}{count}")
    text = " ".join(out)
    return text if len(text) <= 60 else text[:57] + "..."
