"""Run snnTorch's and SpikingJelly's own test suites with every supported neuron converted (issue 12).

    python tests/scripts/library_suites.py {snntorch|spikingjelly} CHECKOUT [--backends torch triton cpu auto]
        [--python PY] [--files F ...] [--json OUT] [-- PYTEST_ARGS]

CHECKOUT is a clone of the library's repository (``git clone https://github.com/jeshraghian/snntorch``,
``git clone https://github.com/fangwei123456/spikingjelly``) at the commit whose tests match the installed
release (docs/adapters.md names the commits used). Only its test files (and its root ``conftest.py``) are
copied into a scratch directory, so the tests import the *installed* library, not the checkout's sources.

The suite runs once plain (the baseline) and once per backend, each time as a separate ``pytest`` process
that loads this module as a plugin (``-p library_suites``). With ``BSNN_SUITE_BACKEND`` set to a backend,
the plugin wraps ``__init__`` of snnTorch's ``Leaky``, ``Synaptic``, ``RLeaky`` and SpikingJelly's
``LIFNode``, ``ParametricLIFNode``, ``IFNode``: every instance of exactly one of those classes is converted
right after its construction, ``bsnn_lightning.convert(instance, dynamics="lif", backend=B)``, as a user's
code would convert a model built by the library's own code. A configuration that ``convert`` refuses stays
the library's own neuron and is counted, with the reason; instances of subclasses (refused by the adapters)
are counted as such. The baseline run loads the same plugin without converting. In every run a global
forward pre-hook counts the calls of supported neurons, native and converted, per test, so the summary says
how many tests actually ran a converted neuron. ``backend="triton"`` runs set ``TRITON_INTERPRET=1`` (no GPU
needed). ``--dynamics bifurcation`` is a negative control: the suites must then fail where neurons change.

snnTorch's ``tests/test_nir.py`` needs ``nir`` and ``nirtorch`` (snnTorch's ``full`` extra; ``h5py`` for nir):
put them on ``PYTHONPATH`` (``pip install --no-deps --target DIR nir nirtorch h5py``) or it errors natively too.

The script prints, per backend, the tests that pass natively but fail (or error) converted, with the
failure's first line, and the counts. Exit status 1 if there is any such test other than a call that the
explicit backend refuses at run time (say, a float64 input to ``backend="triton"``).

Not collected as tests by this repository's pytest (the file name matches no test pattern; importing it, as
``--doctest-modules`` does, has no side effect).
"""

from __future__ import annotations

import collections
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent

#: the library test files run by default (relative to the checkout): every file that constructs one of
#: the supported neurons, or tests the tools that see them (reset utilities, monitors, op counters)
DEFAULT_FILES = {
    "snntorch": ["tests"],
    "spikingjelly": [
        f"test/activation_based/{name}.py"
        for name in (
            "test_monitor",
            "test_functional",
            "test_functional_neuron",
            "test_neuron_variants",
            "test_neuron_kernel_surrogate_contract",
            "test_noisy_and_misc",
            "test_checkpointing",
            "test_memory",
            "test_learning",
            "test_online_learning",
            "test_synops",
            "test_ac",
            "test_mac",
            "test_op_counter_compute_energy",
            "test_op_counter_neuron_state",
            "test_op_counter_snn_energy",
            "test_op_counter_spikesim_event_energy",
            "test_op_counter_neuromc_runtime",
            "test_profiler",
            "test_roofline",
            "test_neuron_dtype_invariance",  # not at that commit: from commit 2ed3ba6c, SpikingJelly 2.0's line
        )
    ],
}
#: what is copied from the checkout besides the test files
SUPPORT = {"snntorch": ["tests/conftest.py", "tests/__init__.py"], "spikingjelly": ["conftest.py", "test/activation_based/_op_counter_test_utils.py"]}

SUPPORTED = {
    "snntorch": ("snntorch", ("Leaky", "Synaptic", "RLeaky")),
    "spikingjelly": ("spikingjelly.activation_based.neuron", ("LIFNode", "ParametricLIFNode", "IFNode")),
}


# --- the plugin (runs inside each pytest process) ----------------------------------------------------------
_STATE = {"test": "<collection>", "log": collections.defaultdict(collections.Counter), "outcomes": {}, "messages": {}}


def _wrap_init(cls, supported: tuple, backend: str) -> None:
    original = cls.__init__

    def __init__(self, *args, **kwargs):
        original(self, *args, **kwargs)
        kind = type(self)
        if kind is not cls:
            if kind not in supported and not getattr(self, "_bsnn_suite_seen", False):
                self.__dict__["_bsnn_suite_seen"] = True  # a subclass: the adapters refuse it; leave it native
                _STATE["log"][_STATE["test"]][f"subclass left native: {kind.__qualname__} ({cls.__name__})"] += 1
            return
        import bsnn_lightning

        try:
            bsnn_lightning.convert(self, dynamics=os.environ.get("BSNN_SUITE_DYNAMICS", "lif"), backend=backend)
        except ValueError as error:
            reason = str(error).split(": ", 1)[-1].split(";")[0]
            _STATE["log"][_STATE["test"]][f"refused, left native: {cls.__name__}: {reason}"] += 1
        else:
            _STATE["log"][_STATE["test"]][f"converted: {cls.__name__}"] += 1

    __init__.__wrapped__ = original
    cls.__init__ = __init__


def pytest_configure(config):
    library, backend = os.environ.get("BSNN_SUITE_LIBRARY"), os.environ.get("BSNN_SUITE_BACKEND", "native")
    if library is None:
        return
    import importlib

    import torch

    module_name, names = SUPPORTED[library]
    module = importlib.import_module(module_name)
    classes = tuple(getattr(module, n) for n in names)

    def count_calls(neuron, args):  # in every run, native too: which tests call a supported neuron
        for cls in classes:
            if type(neuron) is cls or type(neuron).__bases__[1:2] == (cls,):
                state = "converted" if type(neuron) is not cls else "native"
                _STATE["log"][_STATE["test"]][f"called {state}: {cls.__name__}"] += 1

    torch.nn.modules.module.register_module_forward_pre_hook(count_calls)
    if backend != "native":
        for cls in classes:
            _wrap_init(cls, classes, backend)


def pytest_runtest_logstart(nodeid, location):
    _STATE["test"] = nodeid


def pytest_runtest_logreport(report):
    outcomes = _STATE["outcomes"]
    if report.when == "call" or report.outcome != "passed":
        if report.when != "call" and report.outcome == "failed":
            outcome = "error"
        elif hasattr(report, "wasxfail"):
            outcome = "xfailed" if report.skipped else "xpassed"
        else:
            outcome = report.outcome
        if outcomes.get(report.nodeid) not in ("failed", "error"):
            outcomes[report.nodeid] = outcome
        if report.outcome == "failed":
            crash = getattr(report.longrepr, "reprcrash", None)
            _STATE["messages"][report.nodeid] = crash.message if crash is not None else str(report.longrepr)[-500:]


def pytest_collectreport(report):
    if report.outcome == "failed":
        _STATE["outcomes"][report.nodeid] = "error"
        _STATE["messages"][report.nodeid] = str(report.longrepr)[-500:]


def pytest_sessionfinish(session, exitstatus):
    path = os.environ.get("BSNN_SUITE_REPORT")
    if path:
        log = {test: dict(counts) for test, counts in _STATE["log"].items()}
        Path(path).write_text(json.dumps({"outcomes": _STATE["outcomes"], "messages": _STATE["messages"], "log": log}))


# --- the driver ----------------------------------------------------------------------------------------------
def _scratch(library: str, checkout: Path, files: list[str]) -> Path:
    """A directory with the checkout's test files and root conftest, but not its sources."""
    work = Path(tempfile.mkdtemp(prefix=f"bsnn-{library}-suite-"))
    for rel in [*files, *SUPPORT[library]]:
        src = checkout / rel
        if not src.exists():
            continue
        dst = work / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True)
        else:
            shutil.copy2(src, dst)
    if library == "spikingjelly":
        # its tests import ``test.activation_based...``: make the copied ``test`` a regular package, or Python's own
        # ``test`` package (the standard library's regression tests) is found first
        for folder in ("test", "test/activation_based"):
            (work / folder / "__init__.py").touch()
    (work / "pytest.ini").write_text("[pytest]\npythonpath = .\n")
    return work


def _run(library, backend, work, files, python, extra, report, dynamics="lif") -> dict:
    env = dict(os.environ, BSNN_SUITE_LIBRARY=library, BSNN_SUITE_BACKEND=backend, BSNN_SUITE_REPORT=str(report))
    env["BSNN_SUITE_DYNAMICS"] = dynamics
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE), str(ROOT), env.get("PYTHONPATH", "")) if p)
    if backend == "triton":
        from bsnn_lightning.engine.triton_mode import environment_for

        env = environment_for("interpret", env)  # the child's Triton mode: the kernels run on the CPU
    command = [python, "-m", "pytest", "-p", "library_suites", "-p", "no:cacheprovider", "-q", "-rN", "--continue-on-collection-errors",
               "--rootdir", str(work), "-c", str(work / "pytest.ini"), *files, *extra]
    print(f"\n=== {library}, {backend}: {' '.join(command[1:])}", flush=True)
    proc = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True)
    tail = proc.stdout.strip().splitlines()[-1:] or proc.stderr.strip().splitlines()[-3:]
    print("   ", *tail, flush=True)
    if not report.exists():
        print(proc.stdout[-3000:], proc.stderr[-3000:])
        raise SystemExit(f"pytest did not finish the {backend} run")
    return json.loads(report.read_text())


def main(argv: list[str]) -> int:
    import argparse

    extra = []
    if "--" in argv:
        argv, extra = argv[: argv.index("--")], argv[argv.index("--") + 1 :]
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("library", choices=sorted(SUPPORTED))
    parser.add_argument("checkout", type=Path)
    parser.add_argument("--backends", nargs="+", default=["torch"], choices=["torch", "triton", "cpu", "auto"])
    parser.add_argument("--python", default=sys.executable, help="the interpreter whose environment runs the suite")
    parser.add_argument("--files", nargs="+", help="test files or directories, relative to the checkout")
    parser.add_argument("--json", type=Path, help="write every run's outcomes and conversion log here")
    parser.add_argument("--dynamics", default="lif", choices=["lif", "bifurcation"],
                        help="'bifurcation' is a negative control: the suites must then see the changed neurons")
    args = parser.parse_args(argv)
    files = args.files or DEFAULT_FILES[args.library]
    if not args.checkout.is_dir():
        parser.error(f"expected CHECKOUT to be a clone of {args.library}'s repository, got {str(args.checkout)!r}, "
                     "which is not a directory")
    missing = [f for f in files if not (args.checkout / f).exists()]
    files = [f for f in files if f not in missing]
    if not files:
        parser.error(f"expected {args.library}'s test files in CHECKOUT {str(args.checkout)!r}, found none of {missing}")
    if missing:
        print(f"not in the checkout, not run: {missing}", file=sys.stderr)
    work = _scratch(args.library, args.checkout.resolve(), files)
    results = {}
    try:
        for backend in ["native", *args.backends]:
            report = work / f"{backend}.json"
            results[backend] = _run(args.library, backend, work, files, args.python, extra, report, args.dynamics)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))
    return _summarise(results)


def _summarise(results: dict) -> int:
    base = results["native"]["outcomes"]
    native_pass = {t for t, o in base.items() if o in ("passed", "xfailed")}
    print(f"\nnative: {_counts(base)}")
    worse = 0
    for backend, run in results.items():
        if backend == "native":
            continue
        outcomes, log = run["outcomes"], run["log"]
        totals = collections.Counter()
        for counts in log.values():
            totals.update(counts)
        touched = {t for t, counts in log.items() if any(k.startswith("called converted") for k in counts)}
        differ = sorted(t for t in native_pass if outcomes.get(t) not in ("passed", "xfailed"))
        better = sorted(t for t, o in outcomes.items() if o == "passed" and t in base and base[t] != "passed")
        print(f"\n{backend}: {_counts(outcomes)}")
        print(f"  tests that called a converted neuron: {len(touched)}; of those passing natively: "
              f"{len(touched & native_pass)}")
        for what, n in sorted(totals.items()):
            if what.startswith("called"):
                what = f"{what} (calls, in {sum(1 for c in log.values() if what in c)} tests)"
            print(f"  {n:6d} x {what}")
        print(f"  pass natively, not converted: {len(differ)}")
        refused = [t for t in differ if _REFUSED_AT_CALL in run["messages"].get(t, "")]
        if refused:
            print(f"    of which refused at call time by the explicit backend={backend!r} (a documented refusal: the "
                  f"call's dtype or state is one the backend does not run; 'auto' runs it on torch): {len(refused)}")
        for t in differ:
            print(f"    {outcomes.get(t, 'missing')}: {t}\n        {run['messages'].get(t, '').splitlines()[:1]}")
        worse += len(differ) - len(refused)
        if better:
            print(f"  pass converted, not natively: {len(better)}: {better[:10]}")
    return 1 if worse else 0


_REFUSED_AT_CALL = "cannot run this call"


def _counts(outcomes: dict) -> str:
    return ", ".join(f"{n} {o}" for o, n in sorted(collections.Counter(outcomes.values()).items()))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
