"""The configurations to compile, as dicts the launch step (:mod:`.launches`) reads: ``bench`` (the calls
``bench/kernels.py`` times), ``check`` (a small representative set the slow test compiles), ``sweep`` (every
dynamics, option, dtype and layout) and ``coupled`` (the coupled bifurcation at 4 to 64 channels)."""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

#: bench/, where bench/kernels.py (the benchmark whose calls and byte counts ``bench`` reuses) lives
BENCH = Path(__file__).resolve().parent.parent


def coupled_configs(channels=(4, 8, 16, 32, 64)) -> list[dict]:
    """The coupled bifurcation's kernels, per channel count: a plain fp32 call (floats, gradients of x and the
    coupling), the typical 16-bit training call (a per-neuron IMP too) and every option at once (a full initial
    state, a per-channel threshold, v_seq and its gradient, every gradient). Up to
    ``triton_coupled.CHANNEL_ROWS`` channels the state is in registers, past that staged through the scratch."""
    import torch

    from bsnn_lightning.engine import CoupledBifurcation

    configs = []
    for c in channels:
        shape = (8, 2, c, 8, 8)  # 128 positions: a full program of 4 warps, as a real layer launches
        configs += [
            dict(coupled=True, label=f"coupled C{c} fp32 plain", dynamics=CoupledBifurcation(), dtype=torch.float32,
                 shape=shape, threshold=torch.ones(()), needs=(True, False, True, False)),
            dict(coupled=True, label=f"coupled C{c} bf16 typical", dynamics=CoupledBifurcation(surrogate="sigmoid"),
                 dtype=torch.bfloat16, shape=shape, threshold=torch.ones(()), v0=torch.zeros(shape[2:]),
                 needs=(True, True, True, False)),
            dict(coupled=True, label=f"coupled C{c} bf16 all", dtype=torch.bfloat16, shape=shape,
                 dynamics=CoupledBifurcation(v_reset=0.0, detach_reset=True, surrogate="atan"),
                 threshold=torch.ones((c, 1, 1)), v0=torch.zeros(shape[1:]), v_seq=True, needs=(True, True, True, True)),
        ]
    return configs


def bench_configs() -> list[dict]:
    """The calls bench/kernels.py times (its shapes scaled down: the same specialisation, M divisible by 16)."""
    import torch

    sys.path.insert(0, str(BENCH))
    from kernels import (  # bench/kernels.py
        BETA,
        CHECKPOINT_EVERY,
        DTYPES,
        STEPS,
        TAU,
        THRESHOLD,
        bytes_per_neuron_step,
    )

    from bsnn_lightning.engine import SnnTorchLeaky, SpikingJellyLIF

    contenders = {
        "ours[SJ-LIF]": (SpikingJellyLIF(), {"tau": TAU, "threshold": THRESHOLD}),
        "ours[Leaky]": (SnnTorchLeaky(), {"beta": BETA, "threshold": THRESHOLD, "graded": 1.0}),
    }
    configs = []
    for (name, (dynamics, params)), (dname, dtype), steps in itertools.product(
        contenders.items(), DTYPES.items(), STEPS
    ):
        elem = torch.empty((), dtype=dtype).element_size()
        fwd = bytes_per_neuron_step(name, "fwd", steps, elem)[0]
        both = bytes_per_neuron_step(name, "fwd+bwd", steps, elem)[0]
        train_fwd = fwd + 4 * (-(-steps // CHECKPOINT_EVERY) - 1) / steps  # + the checkpoints it writes
        shape = (steps, 32, 64)  # as the benchmark's (T, 32, 2**24 / T): M and the sample divisible by 16
        label = f"{name} {dname} T{steps}"
        configs.append(dict(label=f"{label} infer", dynamics=dynamics, params=params, dtype=dtype, shape=shape,
                            train=False, bytes={"fwd": fwd}))
        configs.append(dict(label=label, dynamics=dynamics, params=params, dtype=dtype, shape=shape, train=True,
                            bytes={"fwd": train_fwd, "bwd": both - train_fwd}))
    return configs


def check_configs() -> list[dict]:
    """A small representative set (the test suite compiles it for sm_90 and sm_80): the heaviest forward and
    backward (every option on, 16-bit x with v_seq and checkpoints, a ragged T), whole chunks of another
    dynamics in fp16, a layer whose neuron count is not a multiple of 16 (scalar accesses), snnTorch's
    immediate reset with every option (its backward keeps one more register tile: the states entering each
    step), SpikingJelly 0.0.0.0.14's product form, and the 16-bit states (a library's membrane kept in the
    input's dtype, every op rounded to it: SpikingJelly's LIF, PLIF and IF, snnTorch's membrane without a
    reset term), compiled with PyTorch's CUDA rule (a Python-float tau: a multiply by its reciprocal)."""
    import torch

    from bsnn_lightning.engine import (
        DiagonalBifurcation,
        SnnTorchLeaky,
        SnnTorchSynapticZeroImmediate,
        SpikingJelly014LIF,
        SpikingJellyIF,
        SpikingJellyLIF,
        SpikingJellyPLIF,
    )

    def heavy(label, dynamics, params, dtype, steps, sample=(3, 4, 8), batch=2, train=True, plain=False):
        shape = (steps, batch, *sample)
        made = {}
        for name, kind in params.items():
            if isinstance(kind, float):  # a Python float, as a library passes tau
                made[name] = kind
                continue
            layout = {"layer": (), "channel": (sample[0],) + (1,) * (len(sample) - 1), "neuron": sample}[kind]
            made[name] = torch.full(layout, 0.75)
        if plain:  # a recipe's call: a per-neuron initial state (the IMP) with its gradient, no v_seq, spikes' gradient
            return dict(label=label, dynamics=dynamics, params=made, dtype=dtype, shape=shape, train=train, v_seq=False,
                        v0=torch.zeros(sample), grads=(True, False, False), needs=(True, True, False, False, False))
        return dict(label=label, dynamics=dynamics, params=made, dtype=dtype, shape=shape, train=train, v_seq=True,
                    v0=torch.zeros(shape[1:]), grads=(True, True, True),
                    needs=(True, True, *(isinstance(made.get(n), torch.Tensor) for n in p_names(dynamics))))

    return [
        heavy("check LIF sigmoid bf16 all T40", SpikingJellyLIF(), {"tau": "channel", "threshold": "neuron"},
              torch.bfloat16, 40),
        heavy("check Leaky zero atan fp16 all T8", SnnTorchLeaky(reset_mechanism="zero", surrogate="atan"),
              {"beta": "channel", "threshold": "neuron", "graded": "channel"}, torch.float16, 8),
        heavy("check bifurcation bf16 M=105 T40", DiagonalBifurcation(), {"eigenvalues": "neuron",
              "threshold": "channel"}, torch.bfloat16, 40, sample=(5, 7), batch=3, train=False),
        heavy("check Synaptic-zero-immediate sigmoid bf16 all T40", SnnTorchSynapticZeroImmediate(surrogate="sigmoid"),
              {"beta": "neuron", "threshold": "channel", "graded": "neuron"}, torch.bfloat16, 40),
        heavy("check SJ014-LIF hard fp16 all T17", SpikingJelly014LIF(v_reset=0.0, surrogate="atan"),
              {"tau": "channel", "threshold": "neuron"}, torch.float16, 17),
        # 16-bit states (issue 18): SpikingJelly's membrane under AMP, float tau and threshold as it passes them
        heavy("check LIF sigmoid bf16-state all T40", SpikingJellyLIF(state_dtype=torch.bfloat16),
              {"tau": 2.7, "threshold": 1.0}, torch.bfloat16, 40),
        heavy("check LIF soft detach sigmoid fp16-state IMP T16 (CIFAR10-DVS recipe)",
              SpikingJellyLIF(v_reset=None, detach_reset=True, state_dtype=torch.float16),
              {"tau": 2.0, "threshold": 1.0}, torch.float16, 16, sample=(64, 8, 8), plain=True),
        heavy("check LIF soft nodecay atan fp16-state T17", SpikingJellyLIF(v_reset=None, decay_input=False,
              surrogate="atan", state_dtype=torch.float16), {"tau": 2.7, "threshold": 1.0}, torch.float16, 17, plain=True),
        heavy("check PLIF hard fp16-state all T40", SpikingJellyPLIF(state_dtype=torch.float16),
              {"q": "layer", "threshold": 1.0}, torch.float16, 40),
        heavy("check IF soft bf16-state all T17", SpikingJellyIF(v_reset=None, state_dtype=torch.bfloat16),
              {"threshold": 1.0}, torch.bfloat16, 17, sample=(5, 7), batch=3),
        heavy("check Leaky none sigmoid bf16-state all T40",
              SnnTorchLeaky(reset_mechanism="none", surrogate="sigmoid", state_dtype=torch.bfloat16),
              {"beta": "layer", "threshold": "layer", "graded": "layer"}, torch.bfloat16, 40),
        heavy("check Leaky none sigmoid fp16-state T40",
              SnnTorchLeaky(reset_mechanism="none", surrogate="sigmoid", state_dtype=torch.float16),
              {"beta": "layer", "threshold": "layer", "graded": "layer"}, torch.float16, 40, plain=True),
        # the coupled kernels, staged, with every option at once: 16, 32 and 64 channels (the report's hidden layer)
        *[c for c in coupled_configs(channels=(16, 32, 64)) if "all" in c["label"]],
    ]


def p_names(dynamics) -> tuple:
    """The names of the kernels' p0, p1 (threshold) and p2 for a dynamics (None where it has none)."""
    names = dynamics.param_names
    p0 = names[0] if names[0] != "threshold" else None
    return (p0, "threshold", "graded" if "graded" in names else None)


def sweep_configs() -> list[dict]:
    """Every dynamics x reset x flag, every surrogate and dtype, every value layout, odd shapes."""
    import torch

    from bsnn_lightning.engine import (
        DiagonalBifurcation,
        SnnTorchLeaky,
        SnnTorchLeakyImmediate,
        SnnTorchSynapticZero,
        SnnTorchSynapticZeroImmediate,
        SpikingJelly014LIF,
        SpikingJelly014PLIF,
        SpikingJellyIF,
        SpikingJellyLIF,
        SpikingJellyPLIF,
    )

    C, H, W = 3, 4, 8
    dtypes = (torch.float32, torch.bfloat16, torch.float16)
    surrogates = ("atan", "sigmoid", "fast_sigmoid", "triangle")

    def value(kind, sample):
        if kind == "float":
            return 0.75
        if kind == "layer":
            return torch.full((), 0.75)
        if kind == "channel":
            return torch.full((sample[0],) + (1,) * (len(sample) - 1), 0.75)
        return torch.full(sample, 0.75)

    def config(label, dynamics, modes, dtype, steps, v0=None, sample=(C, H, W), batch=2, v_seq=True,
               train=True, grads=(True, True, True), needs=None):
        shape = (steps, batch, *sample)
        names = tuple(n for n in dynamics.param_names if n != "threshold") + ("threshold",)
        params = {n: value(modes.get(n, "float"), sample) for n in names}
        v0t = None if v0 is None else (torch.zeros(shape[1:]) if v0 == "full" else value(v0, sample))
        if needs is None:
            tensor = lambda n: isinstance(params.get(n), torch.Tensor)
            p0 = names[0] if names[0] != "threshold" else None
            needs = (True, v0t is not None, p0 is not None and tensor(p0), tensor("threshold"), tensor("graded"))
        if v0t is not None and v0t.dim() == 0:
            v0t = v0t.reshape(())
        return dict(label=label, dynamics=dynamics, params=params, dtype=dtype, shape=shape, v0=v0t,
                    v_seq=v_seq, train=train, grads=grads, needs=needs)

    dyns = []
    for cls, k in ((SpikingJellyLIF, "lif"), (SpikingJellyPLIF, "plif")):
        for decay, reset, detach in itertools.product((True, False), (0.0, None), (False, True)):
            dyns.append((f"{k}-{'decay' if decay else 'nodecay'}-{'soft' if reset is None else 'hard'}"
                         f"{'-detach' if detach else ''}",
                         lambda s, c=cls, d=decay, r=reset, t=detach: c(decay_input=d, v_reset=r, detach_reset=t,
                                                                        surrogate=s)))
    for reset, detach in itertools.product((0.0, None), (False, True)):
        hard = "soft" if reset is None else "hard"
        dyns.append((f"if-{hard}{'-detach' if detach else ''}",
                     lambda s, r=reset, t=detach: SpikingJellyIF(v_reset=r, detach_reset=t, surrogate=s)))
        dyns.append((f"bif-{hard}{'-detach' if detach else ''}",
                     lambda s, r=reset, t=detach: DiagonalBifurcation(v_reset=r, detach_reset=t, surrogate=s)))
    for mech in ("subtract", "zero", "none"):
        dyns.append((f"leaky-{mech}", lambda s, m=mech: SnnTorchLeaky(reset_mechanism=m, surrogate=s)))
    for mech in ("subtract", "zero"):
        dyns.append((f"leaky-immediate-{mech}", lambda s, m=mech: SnnTorchLeakyImmediate(reset_mechanism=m, surrogate=s)))
    dyns.append(("synaptic-zero", lambda s: SnnTorchSynapticZero(surrogate=s)))
    dyns.append(("synaptic-zero-immediate", lambda s: SnnTorchSynapticZeroImmediate(surrogate=s)))
    for cls, k in ((SpikingJelly014LIF, "sj014-lif"), (SpikingJelly014PLIF, "sj014-plif")):
        for reset, detach in itertools.product((0.0, None), (False, True)):
            dyns.append((f"{k}-{'soft' if reset is None else 'hard'}{'-detach' if detach else ''}",
                         lambda s, c=cls, r=reset, t=detach: c(v_reset=r, detach_reset=t, surrogate=s)))
    heavy = {"tau": "channel", "q": "neuron", "beta": "channel", "eigenvalues": "neuron", "threshold": "neuron",
             "graded": "channel"}
    name = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}
    out = []
    # every dynamics with every option on (T = 40: checkpoints, a last chunk of 8), surrogate and dtype rotating
    for i, (label, make) in enumerate(dyns):
        s, dt = surrogates[i % 4], dtypes[i % 3]
        out.append(config(f"sweep {label} {s} {name[dt]} all-options", make(s), heavy, dt, 40, v0="full"))
    # every surrogate and every dtype for LIF and Leaky
    lookup = dict(dyns)
    for label in ("lif-decay-hard", "leaky-subtract"):
        for s, dt in itertools.product(surrogates, dtypes):
            out.append(config(f"sweep {label} {s} {name[dt]} all-options", lookup[label](s), heavy, dt, 40,
                              v0="full"))
    # every forward / backward CHUNK, plain calls, and inference
    for (label, make), dt, steps in itertools.product(
        [("lif", lambda: SpikingJellyLIF()), ("leaky", lambda: SnnTorchLeaky())], dtypes, (1, 2, 3, 5, 9, 40)
    ):
        out.append(config(f"sweep {label} plain {name[dt]} T{steps}", make(), {}, dt, steps, v_seq=False,
                          grads=(True, False, False), needs=(True, False, False, False, False)))
        out.append(config(f"sweep {label} infer {name[dt]} T{steps}", make(), {}, dt, steps, v_seq=False,
                          train=False))
    # every value layout
    layouts = ("layer", "channel", "neuron", "full")
    pm = ("float", "layer", "channel", "neuron")
    for v0m, p0m, p1m, p2m in zip(layouts, pm, pm[1:] + pm[:1], pm[2:] + pm[:2]):
        out.append(config(f"sweep leaky v0={v0m} beta={p0m} thr={p1m} graded={p2m}", SnnTorchLeaky(),
                          {"beta": p0m, "threshold": p1m, "graded": p2m}, torch.bfloat16, 40, v0=v0m))
        out.append(config(f"sweep lif v0={v0m} tau={p0m} thr={p1m}", SpikingJellyLIF(),
                          {"tau": p0m, "threshold": p1m}, torch.float32, 17, v0=v0m))
    # shapes: not a multiple of 16, [T, N, C], [T, N], a single neuron; partial gradients
    out.append(config("sweep lif bf16 M=105", SpikingJellyLIF(), heavy, torch.bfloat16, 40, v0="full",
                      sample=(5, 7), batch=3))
    out.append(config("sweep leaky fp32 M=105", SnnTorchLeaky(), heavy, torch.float32, 40, v0="full",
                      sample=(5, 7), batch=3))
    out.append(config("sweep leaky [T,N,C]", SnnTorchLeaky(), heavy, torch.bfloat16, 40, v0="neuron",
                      sample=(96,)))
    out.append(config("sweep lif [T,N]", SpikingJellyLIF(), {"tau": "layer", "threshold": "layer"},
                      torch.float32, 40, v0="full", sample=(), batch=32))
    out.append(config("sweep lif M=1", SpikingJellyLIF(), {}, torch.float32, 40, sample=(), batch=1))
    out.append(config("sweep lif only grad v_final", SpikingJellyLIF(), heavy, torch.bfloat16, 40, v0="full",
                      grads=(False, True, False)))
    out.append(config("sweep bif params only", DiagonalBifurcation(), heavy, torch.float32, 40,
                      needs=(False, False, True, True, False)))
    out.append(config("sweep leaky-zero v0 only", SnnTorchLeaky(reset_mechanism="zero"), {}, torch.bfloat16, 40,
                      v0="full", needs=(False, True, False, False, False)))
    # snnTorch's immediate reset: plain calls and inference at every forward / backward CHUNK (the zero reset
    # keeps the states tile even then: its gradient needs r_t), and the subtract one with the threshold's
    # gradient only (the states tile for r_t alone)
    for mech, dt, steps in itertools.product(("zero", "subtract"), (torch.float32, torch.bfloat16), (1, 3, 17, 40)):
        make = lambda: SnnTorchLeakyImmediate(reset_mechanism=mech)
        out.append(config(f"sweep leaky-immediate-{mech} plain {name[dt]} T{steps}", make(), {}, dt, steps,
                          v_seq=False, grads=(True, False, False), needs=(True, False, False, False, False)))
        out.append(config(f"sweep leaky-immediate-{mech} infer {name[dt]} T{steps}", make(), {}, dt, steps,
                          v_seq=False, train=False))
    out.append(config("sweep leaky-immediate-subtract threshold only", SnnTorchLeakyImmediate(),
                      {"threshold": "channel"}, torch.bfloat16, 40, v_seq=False, grads=(True, False, False),
                      needs=(True, False, False, True, False)))
    out.append(config("sweep synaptic-zero-immediate fp32 M=105", SnnTorchSynapticZeroImmediate(), heavy,
                      torch.float32, 40, v0="full", sample=(5, 7), batch=3))
    out.append(config("sweep sj014-lif float tau plain bf16 T16", SpikingJelly014LIF(), {}, torch.bfloat16, 16,
                      v_seq=False, grads=(True, False, False), needs=(True, False, False, False, False)))
    return out



SETS = {"bench": bench_configs, "check": check_configs, "sweep": sweep_configs, "coupled": coupled_configs}
