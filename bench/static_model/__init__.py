"""A static performance model of the triton backend's kernels, built on a machine without a GPU.

The benchmark's calls (those of ``bench/kernels.py``: ``SpikingJellyLIF`` and ``SnnTorchLeaky`` with float
parameters, no initial state, T in {4, 8, 16, 32}, fp32 and bf16; forward under ``no_grad`` and
forward + backward with only the spikes carrying a gradient) are planned by the real launcher
(its public launch plans: ``triton_backend.launch_plan`` / ``backward_launch_plan``, the ones the custom ops
launch) on CPU tensors and launched with Triton's interpreter off, a stand-in CUDA driver and a
``jit_cache_hook`` that records each compile request and cancels it. Each
kernel is thereby specialised exactly as on a GPU (dtypes, 16-byte alignment, integers equal to 1 or
divisible by 16, constexprs, ``num_warps``), then compiled with ``triton.compile`` for sm_90 (or
``--arch``) with the ptxas inside the triton wheel. SpikingJelly 2.0's Triton LIF, the benchmark's other
contender, is compiled the same way from the arguments its launcher passes (when it is installed).

Per kernel it prints: registers, CTAs per SM, spills, shared and local memory, then from the SASS of the
time loop: instructions per neuron-step (fast path: the slow-path calls of IEEE division excluded),
whether every global load of an iteration comes before its first global store (``ld<st``) and the order of
them, and the bytes in flight per SM; then the DRAM bytes per neuron-step, a modelled fraction of the
H200's bandwidth (and at 1.5x the latency), what bounds it, and a modelled time per neuron-step; last, per
benchmark row, forward and forward+backward times and the ratios to SpikingJelly.

The model (``--latency-ns``, ``--bandwidth``, ``--clock-ghz`` change its figures; ``docs/kernels.md`` has
the before/after tables):

- one thread is simulated through its kernel's fast path (prologue, the loop ``ceil(T / CHUNK)`` times,
  epilogue): an instruction issues one clock after the previous one, or when the registers it reads (or
  overwrites) arrive from a global load issued a DRAM latency ``L`` earlier. Stores do not wait;
- *bytes in flight per SM* (Little's law): the bytes one loop iteration loads, each in flight for ``L``,
  over the iteration's simulated time, times the threads resident on an SM (registers allocated per warp in
  units of 256 out of 64 K, at most 64 warps and 32 CTAs per SM);
- one wave of the ``n`` threads resident on an SM (``w = n / 32`` warps) takes the longest of: its DRAM
  bytes at the SM's share of the bandwidth (``n x bytes / (B / SMs)``, bytes from the model of
  ``bench/kernels.py``: what the call must move), its instructions at four warp-instructions per clock
  (``w x I / (4 f)``), and one thread's simulated time. The modelled fraction of the bandwidth is the first
  over that longest, which names the bound.

Figures (H200 SXM): ``B`` = 4.8 TB/s (NVIDIA's H200 specification), 132 SMs and a 1.98 GHz boost clock (the
GH100 configuration of the H100 SXM5, which the H200 shares), ``L`` = 600 ns for a DRAM access (unloaded
pointer-chase figures for H100 are some 450-600 ns; under load it is longer, so the table repeats the
fraction at 1.5 L). What it leaves out: DRAM efficiency (a copy reaches less than the datasheet figure),
the latency of dependent arithmetic (some 4 clocks, counted as 1), limits on outstanding requests per SM,
L2 hits, the last partial wave, launch overhead, clock throttling. It ranks variants and finds
latency-bound loops; it does not replace ``bench/kernels.py`` on a GPU.

    python bench/kernels_static.py                     # the benchmark's kernels (about 2 min on 2 cores)
    python bench/kernels_static.py --repo /tmp/before  # the same, for another checkout (e.g. a worktree;
                                                      # one with triton_backend.launch_plan)
    python bench/kernels_static.py --set check --arch 90 80   # a small representative set; exit 1 on a
                                                      # compile error, a spill, local or shared memory
    python bench/kernels_static.py --set sweep        # 242 kernels: every dynamics, option, dtype (~25 min)
    python bench/kernels_static.py --set sweep --only immediate synaptic sj014   # the labels containing these
    python bench/kernels_static.py --set check --launch FORWARD_CHUNK=16 NUM_WARPS=8 BACKWARD_BLOCK=256
                                                      # other launch constants (bench/gpu_check.py's sweep)
    options: --jobs N, --json FILE, --keep DIR (ptx, SASS, ptxas log per kernel), --no-spikingjelly, --only TEXT ...

Exit status: 0 when every kernel compiled with no spill and no local memory (with ``--set check`` or
``sweep``: no shared memory either); 1 otherwise; 2 on a set-up error.

The package (run it as ``python bench/kernels_static.py``, or ``python -m static_model`` from ``bench/``):
:mod:`.driver` the stand-in CUDA driver and compile-request recorder, :mod:`.configs` the configuration sets,
:mod:`.launches` the configurations through the launch plans, :mod:`.compiling` one kernel through
``triton.compile``, ptxas and ``cuobjdump``, :mod:`.sass` the SASS parser and loop analysis, :mod:`.model` the
machine and the performance model, :mod:`.cli` the command. ``tests/test_kernels_static.py`` checks the parser
and the model against SASS saved in ``bench/static_model/fixtures/``.
"""
