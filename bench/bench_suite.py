"""Benchmark suite: models and single ops under eager, Inductor, iree-turbine and mlirforge.

Workloads (`bench/workloads.py`): the MLP, CNN and transformer layer of
`examples/`, an attention block, matmuls of four shapes, a 3x3 conv2d,
softmax, layernorm, and sum/max over the last dimension.

Systems, all in ONE process per workload (a fresh `python` for each, so a
crash or a hang costs one workload, not the run), timed interleaved:

  eager                the model itself, under `torch.no_grad()`
  inductor             `torch.compile(model)` (TorchInductor)
  turbine_cpu          `torch.compile(model, backend="turbine_cpu")` (iree-turbine's
                       dynamo backend, an entry point of the iree-turbine package)
  mlirforge            `torch.compile(model, backend="mlirforge")` (no search)
  mlirforge[heuristic] ... `options={"optimize": True, "budget_s": B}` (the verified
                       search, offline heuristic proposer)
  mlirforge[llm-replay] ... `options={"optimize": True, "proposer": "replay",
                       "transcript": PATH, "budget_s": B}`, only with `--transcript`
                       (otherwise the row says so); if the replay proposer cannot run,
                       the row says "not available" and why

Per system it records:

  compile s   wall time of the first call (trace + compile, + the search for the
              optimize systems), with cold on-disk caches (fresh MLIRFORGE_CACHE_DIR
              per mlirforge system, fresh TORCHINDUCTOR_CACHE_DIR per workload;
              iree-turbine keeps no on-disk cache).
  peak MiB    memory of the compile + first call: the rise of this process's peak
              RSS (VmHWM, reset through /proc/self/clear_refs just before the call,
              so it is exact for this process) and, separately, the peak summed RSS
              of the child processes started meanwhile (iree-compile, the search's
              workers, Inductor's compile workers), sampled every 10 ms; children
              alive before are not counted. The backends' Python modules are imported before any
              measurement, so import costs are not charged to whichever system
              happens to run first.
  check       the first call's output against eager (`mlirforge.numerics.compare_outputs`).
  time/call   `mlirforge.timing.interleaved_times` over all systems of the workload
              together: rounds of A,B,C,... with `inner` calls each (inner chosen so
              that one eager sample lasts about `--sample-ms`), median, p10 and p90.
  x eager     eager median / system median, with a 95% confidence interval from a
              paired bootstrap over rounds (round i of eager and round i of the
              system were taken back to back, so they are resampled together).
  GFLOP/s     for workloads with a defined flop count; for matmuls also the
              fraction of the CPU's fp32 peak: cores x clock x FMA units x fp32
              lanes x 2 (see `cpu_peak`; `--fma-units`, `--clock-mhz` override).

Run from the repository root:

    python bench/bench_suite.py                              # everything (~20 min on 2 cores)
    python bench/bench_suite.py --quick                      # 2 workloads, 3 rounds, tiny budget
    python bench/bench_suite.py --workloads mlp,softmax --json out.json --markdown out.md
    python bench/bench_suite.py --transcript run.jsonl      # adds the replayed-LLM search

A table goes to stdout, progress to stderr; `--json` writes every raw number
(samples included), `--markdown` tables ready for docs.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib.metadata
import json
import logging
import math
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Self

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

import numpy as np
import torch
import workloads as W

# Systems ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SystemSpec:
    name: str
    backend: str | None  # None: eager
    options: dict[str, Any] | None = None
    searches: bool = False  # its first call runs the verified search (budget_s)

    @property
    def is_mlirforge(self) -> bool:
        return self.backend == "mlirforge"


EAGER = "eager"
REPLAY = "mlirforge[llm-replay]"
SYSTEM_NAMES = (EAGER, "inductor", "turbine_cpu", "mlirforge", "mlirforge[heuristic]", REPLAY)


def systems_for(budget_s: float, transcript: str | None) -> list[SystemSpec]:
    specs = [
        SystemSpec(EAGER, None),
        SystemSpec("inductor", "inductor"),
        SystemSpec("turbine_cpu", "turbine_cpu"),
        # The plain build must come before the searches: fallback warnings are
        # issued once per op per process, so it is the one that sees them.
        SystemSpec("mlirforge", "mlirforge"),
        SystemSpec(
            "mlirforge[heuristic]", "mlirforge", {"optimize": True, "budget_s": budget_s}, True
        ),
    ]
    if transcript:
        specs.append(
            SystemSpec(
                REPLAY,
                "mlirforge",
                {
                    "optimize": True,
                    "proposer": "replay",
                    "transcript": str(transcript),
                    "budget_s": budget_s,
                },
                True,
            )
        )
    return specs


# CPU and its fp32 peak ------------------------------------------------------------------


def _cpuinfo() -> list[dict[str, str]]:
    """/proc/cpuinfo as one dict per logical CPU."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    cpus = []
    for block in text.strip().split("\n\n"):
        entry = {}
        for line in block.splitlines():
            key, _, value = line.partition(":")
            entry[key.strip()] = value.strip()
        cpus.append(entry)
    return cpus


def _max_freq_mhz() -> float | None:
    path = Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
    try:
        return int(path.read_text()) / 1000.0
    except (OSError, ValueError):
        return None


def busy_cpu_seconds() -> float | None:
    """CPU seconds all processes (and the hypervisor's steal) have used since boot, from /proc/stat."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return None
    user, nice, system, _idle, _iowait, irq, softirq, steal = (fields + [0] * 8)[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def own_children_cpu_seconds() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def cpu_peak(fma_units: int | None = None, clock_mhz: float | None = None) -> dict[str, Any]:
    """The CPU's fp32 peak: physical cores x clock x FMA units x fp32 lanes x 2 flops (one FMA).

    Cores: distinct (physical id, core id) pairs of /proc/cpuinfo (SMT siblings share
    their core's FMA units), else the logical CPU count. Lanes: 16 with avx512f, 8 with
    avx2/avx, else 4. Clock: /sys cpuinfo_max_freq if present, else /proc/cpuinfo
    "cpu MHz". FMA units per core: 2 unless given (server cores with AVX-512 issue two
    vector FMAs per cycle; see the doc for when that is an overestimate).
    """
    cpus = _cpuinfo()
    flags = set(cpus[0].get("flags", "").split()) if cpus else set()
    cores_ids = {(c.get("physical id"), c.get("core id")) for c in cpus if "core id" in c}
    logical = len(cpus) or (os.cpu_count() or 1)
    cores = len(cores_ids) or logical
    lanes, isa = (
        (16, "avx512f")
        if "avx512f" in flags
        else (8, "avx2")
        if "avx2" in flags
        else (8, "avx")
        if "avx" in flags
        else (4, "sse/neon")
    )
    clock_source = "--clock-mhz"
    if clock_mhz is None:
        clock_mhz, clock_source = (
            _max_freq_mhz(),
            "/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq",
        )
    if clock_mhz is None and cpus and cpus[0].get("cpu MHz"):
        clock_mhz, clock_source = float(cpus[0]["cpu MHz"]), '/proc/cpuinfo "cpu MHz"'
    if clock_mhz is None:
        clock_mhz, clock_source = 2000.0, "unknown (assumed 2000 MHz)"
    fma_source = "--fma-units"
    if fma_units is None:
        fma_units, fma_source = 2, "assumed (2 vector FMA pipes per core)"
    peak = cores * clock_mhz * 1e6 * fma_units * lanes * 2
    return {
        "model_name": cpus[0].get("model name", platform.processor())
        if cpus
        else platform.processor(),
        "cpu_family": cpus[0].get("cpu family") if cpus else None,
        "cpu_model": cpus[0].get("model") if cpus else None,
        "logical_cpus": logical,
        "cores": cores,
        "clock_mhz": clock_mhz,
        "clock_source": clock_source,
        "isa": isa,
        "fp32_lanes": lanes,
        "fma_units": fma_units,
        "fma_source": fma_source,
        "peak_gflops": peak / 1e9,
        "formula": f"{cores} cores x {clock_mhz / 1000:.3f} GHz x {fma_units} FMA units x "
        f"{lanes} fp32 lanes x 2 flops = {peak / 1e9:.1f} GFLOP/s",
        "features": sorted(
            f for f in flags if f.startswith(("avx", "fma", "amx", "sse", "f16c", "neon", "sve"))
        ),
    }


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in (
        "torch",
        "torch-mlir",
        "iree-base-compiler",
        "iree-base-runtime",
        "iree-turbine",
        "mlirforge",
        "numpy",
        "matplotlib",
    ):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def machine_info(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": cpu_peak(args.fma_units, args.clock_mhz),
        "memory_gib": memory_gib(),
        "torch_threads": getattr(args, "torch_threads", None) or torch.get_num_threads(),
        "platform": platform.platform(),
        "versions": versions(),
    }


# Memory ----------------------------------------------------------------------------------


def _status_kb(key: str, pid: str = "self") -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _descendants(pid: int) -> list[int]:
    out, stack = [], [pid]
    while stack:
        p = stack.pop()
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for t in tasks:
            try:
                kids = [int(k) for k in Path(f"/proc/{p}/task/{t}/children").read_text().split()]
            except (OSError, ValueError):
                continue
            out += kids
            stack += kids
    return out


def _children_rss_kb(exclude: frozenset[int] = frozenset()) -> int:
    """Summed RSS of this process's descendants, except those in `exclude`."""
    return sum(_status_kb("VmRSS", str(c)) for c in _descendants(os.getpid()) if c not in exclude)


class MemoryTracker:
    """Peak RSS rise of this process (exact, via VmHWM reset) and peak RSS of the child
    processes started meanwhile (sampled; children alive before, such as the compile
    workers an earlier Inductor compile left behind, are not counted)."""

    def __init__(self, interval_s: float = 0.01):
        self.interval_s = interval_s
        self.self_mib: float | None = None
        self.children_mib: float | None = None
        self.method = ""

    def __enter__(self) -> Self:
        try:
            Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
            self.exact = True
        except OSError:
            self.exact = False
        self.base_self = _status_kb("VmRSS")
        self.peak_self_sampled = self.base_self
        self.existing = frozenset(_descendants(os.getpid()))
        self.peak_children = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.peak_children = max(self.peak_children, _children_rss_kb(self.existing))
            self.peak_self_sampled = max(self.peak_self_sampled, _status_kb("VmRSS"))

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        peak_self = _status_kb("VmHWM") if self.exact else self.peak_self_sampled
        self.self_mib = max(0, peak_self - self.base_self) / 1024
        self.children_mib = self.peak_children / 1024
        self.method = (
            "VmHWM reset via /proc/self/clear_refs" if self.exact else "VmRSS sampled every 10 ms"
        ) + "; children: summed VmRSS of new descendants, sampled every 10 ms"


# Results ---------------------------------------------------------------------------------


@dataclasses.dataclass
class Timing:
    samples_us: list[float]
    median_us: float
    p10_us: float
    p90_us: float
    speedup: float | None = None  # eager median / this median
    ci_low: float | None = None
    ci_high: float | None = None
    gflops: float | None = None
    peak_fraction: float | None = None


@dataclasses.dataclass
class SystemResult:
    name: str
    backend: str | None
    options: dict[str, Any] | None
    status: str = "ok"  # ok | error | not available | not run
    error: str | None = None
    compile_s: float | None = None
    peak_self_mib: float | None = None
    peak_children_mib: float | None = None
    ok: bool | None = None
    max_abs_error: float | None = None
    check_message: str | None = None
    timing: Timing | None = None
    notes: list[str] = dataclasses.field(default_factory=list)
    stats_delta: dict[str, float] | None = None


@dataclasses.dataclass
class WorkloadResult:
    name: str
    group: str
    description: str
    input_shapes: list[list[int]]
    flops: float | None
    is_matmul: bool
    inner: int | None = None
    rounds: int | None = None
    seconds: float | None = None
    error: str | None = None  # the workload's process died or the model could not be built
    torch_threads: int | None = None
    other_cpu_share: float | None = None
    """Share of the machine's CPU time that OTHER processes used while this workload ran
    (/proc/stat busy time minus this workload's own process tree): noisy neighbours."""
    systems: list[SystemResult] = dataclasses.field(default_factory=list)


# Measuring (worker side) -------------------------------------------------------------------


def summarize(samples_s: Sequence[float]) -> Timing:
    """Median and p10/p90 of per-call seconds, in microseconds."""
    from mlirforge.timing import spread_us

    median, p10, p90 = spread_us(samples_s)
    return Timing(samples_us=[s * 1e6 for s in samples_s], median_us=median, p10_us=p10, p90_us=p90)


def paired_bootstrap(
    base: Sequence[float],
    other: Sequence[float],
    resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """CI of median(base)/median(other), resampling rounds (pairs) with replacement."""
    a, b = np.asarray(base), np.asarray(other)
    n = min(len(a), len(b))
    if n < 2:
        r = float(np.median(a) / np.median(b))
        return r, r
    a, b = a[:n], b[:n]
    idx = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    ratios = np.median(a[idx], axis=1) / np.median(b[idx], axis=1)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(ratios, [alpha, 1 - alpha])
    return float(low), float(high)


def progress(message: str) -> None:
    """A progress line of a workload's process (the parent forwards these)."""
    print(f"  > {message}", file=sys.stderr, flush=True)


def first_line(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return text.splitlines()[0] if text else type(exc).__name__


class _LogCapture(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if "search kept" in msg or record.levelno >= logging.WARNING:
            self.messages.append(msg.splitlines()[0])


def build_callable(spec: SystemSpec, model: torch.nn.Module) -> Callable:
    if spec.backend is None:
        return model
    if spec.backend == "inductor":
        return torch.compile(model)
    if spec.options:
        return torch.compile(model, backend=spec.backend, options=spec.options)
    return torch.compile(model, backend=spec.backend)


def preimport() -> None:
    """Import every backend's modules up front: import costs are not charged to one system."""
    import mlirforge
    import mlirforge.backend
    import mlirforge.llm_rewrite.optimize  # noqa: F401
    import torch._inductor.compile_fx  # noqa: F401

    try:
        from torch._dynamo.backends.registry import lookup_backend

        lookup_backend("turbine_cpu")  # loads iree.turbine through its entry point
    except Exception as exc:  # noqa: BLE001
        progress(f"turbine_cpu backend not loadable: {first_line(exc)}")


def run_system_first_call(
    spec: SystemSpec, model, inputs, expected, result: SystemResult, cache_root: Path
) -> Callable | None:
    """Build, compile (first call) and check one system; returns its callable or None."""
    import mlirforge
    from mlirforge.backend import FallbackWarning
    from mlirforge.numerics import changed_inputs, clone_tree, compare_outputs

    if spec.is_mlirforge:
        safe = "".join(c if c.isalnum() else "-" for c in spec.name)
        os.environ["MLIRFORGE_CACHE_DIR"] = tempfile.mkdtemp(prefix=f"{safe}-", dir=cache_root)
    before = dataclasses.asdict(mlirforge.stats())
    capture = _LogCapture()
    logger = logging.getLogger("mlirforge")
    old_level, old_propagate = logger.level, logger.propagate
    logger.addHandler(capture)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # the captured lines go into the notes, not to the console
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            mem = MemoryTracker()
            untouched = clone_tree(inputs)
            try:
                fn = build_callable(spec, model)
                with mem:
                    start = time.perf_counter()
                    try:
                        actual = fn(*inputs)
                    finally:
                        result.compile_s = time.perf_counter() - start
            except Exception as exc:  # noqa: BLE001 (a broken system must not stop the others)
                traceback.print_exc(file=sys.stderr)
                # The replay proposer is optional equipment: if it cannot run, the row says so.
                result.status = "not available" if spec.name == REPLAY else "error"
                result.error = first_line(exc)
                return None
            finally:
                result.peak_self_mib, result.peak_children_mib = mem.self_mib, mem.children_mib
    finally:
        logger.removeHandler(capture)
        logger.setLevel(old_level)
        logger.propagate = old_propagate
    result.ok, result.max_abs_error, result.check_message = compare_outputs(actual, expected)
    if changed_inputs(inputs, untouched):
        result.ok, result.check_message = False, f"modified input(s) {changed_inputs(inputs, untouched)}"
    if spec.is_mlirforge:
        after = dataclasses.asdict(mlirforge.stats())
        result.stats_delta = {k: round(after[k] - before[k], 3) for k in after}
        msgs = [
            str(w.message).splitlines()[0]
            for w in caught
            if issubclass(w.category, FallbackWarning)
        ]
        failed = [m for m in msgs if "the search failed" in m]
        if failed and spec.name == REPLAY:
            # The row is about the replayed LLM search; without it, it is not that system.
            result.status, result.error = "not available", failed[0]
            return None
        result.notes += msgs + capture.messages
        if result.stats_delta.get("graphs_compiled", 0) == 0:
            result.notes.append("nothing was compiled: ran in eager PyTorch")
        elif result.stats_delta.get("partitions_compiled") or result.stats_delta.get(
            "eager_graphs"
        ):
            result.notes.append("partly in eager PyTorch (unsupported ops)")
    return fn


def per_call_s(fn: Callable, inputs, calls: int = 3) -> float:
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        fn(*inputs)
        times.append(time.perf_counter() - start)
    return max(statistics.median(times), 1e-7)


def choose_inner(eager_s: float, slowest_s: float, sample_s: float, cap: int = 200) -> int:
    """Calls per timing sample: one eager sample lasts about `sample_s`, but no
    system's sample lasts much more than 10 x `sample_s` (or one call)."""
    inner = math.ceil(sample_s / eager_s)
    inner = min(inner, max(1, math.floor(10 * sample_s / slowest_s)))
    return max(1, min(cap, inner))


def timed_robustly(
    runnable: list[tuple[SystemResult, Callable]], inputs, rounds: int, inner: int, warmup: int
):
    """Interleaved timing; a system that raises is dropped (with its error) and the rest re-timed."""
    from mlirforge.timing import interleaved_times

    while runnable:
        calls = [lambda fn=fn: fn(*inputs) for _, fn in runnable]
        try:
            return runnable, interleaved_times(calls, rounds=rounds, inner=inner, warmup=warmup)
        except Exception as exc:  # noqa: BLE001
            failure = exc
        # Which one? The first that raises again; if none does, the last timed.
        culprit = len(runnable) - 1
        for i, (_, fn) in enumerate(runnable):
            try:
                fn(*inputs)
            except Exception as exc:  # noqa: BLE001
                culprit, failure = i, exc
                break
        victim = runnable.pop(culprit)[0]
        victim.status, victim.error = "error", f"during timing: {first_line(failure)}"
        progress(f"{victim.name} failed during timing: {first_line(failure)}")
    return [], []


def run_workload(name: str, args: argparse.Namespace) -> WorkloadResult:
    """All systems on one workload, in this process; its on-disk caches are removed afterwards."""
    cache_root = Path(tempfile.mkdtemp(prefix=f"mlirforge-suite-{name}-"))
    try:
        return _run_workload(name, args, cache_root)
    finally:
        shutil.rmtree(cache_root, ignore_errors=True)


def _run_workload(name: str, args: argparse.Namespace, cache_root: Path) -> WorkloadResult:
    wl = W.get(name)
    started = time.perf_counter()
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(cache_root / "inductor")
    result = WorkloadResult(wl.name, wl.group, wl.description, [], wl.flops, wl.is_matmul)
    specs = systems_for(args.budget_s, args.transcript)
    peak = cpu_peak(args.fma_units, args.clock_mhz)["peak_gflops"] * 1e9
    if args.torch_threads:
        torch.set_num_threads(args.torch_threads)
    result.torch_threads = torch.get_num_threads()
    preimport()
    try:
        model, inputs = wl.build()
    except Exception as exc:  # noqa: BLE001
        result.error = f"could not build the workload: {first_line(exc)}"
        return result
    result.input_shapes = [list(t.shape) for t in inputs if isinstance(t, torch.Tensor)]
    runnable: list[tuple[SystemResult, Callable]] = []
    with torch.no_grad():
        expected = model(*inputs)
        for spec in specs:
            progress(f"{name}: {spec.name} compile ...")
            sr = SystemResult(spec.name, spec.backend, spec.options)
            result.systems.append(sr)
            fn = run_system_first_call(spec, model, inputs, expected, sr, cache_root)
            if fn is not None:
                runnable.append((sr, fn))
            progress(
                f"{name}: {spec.name} {sr.status}"
                + (f" ({sr.error})" if sr.error else f", first call {sr.compile_s:.1f} s")
            )
        if not args.transcript:
            result.systems.append(
                SystemResult(
                    REPLAY, "mlirforge", None, status="not run", error="no --transcript given"
                )
            )
        per_call = {}
        for r, fn in list(runnable):
            try:
                per_call[r.name] = per_call_s(fn, inputs)
            except Exception as exc:  # noqa: BLE001 (the first call worked, a later one did not)
                traceback.print_exc(file=sys.stderr)
                r.status, r.error = "error", f"after the first call: {first_line(exc)}"
                runnable.remove((r, fn))
        eager_s = per_call.get(EAGER) or per_call_s(model, inputs)
        result.inner = choose_inner(
            eager_s, max(per_call.values(), default=eager_s), args.sample_ms / 1000
        )
        result.rounds = args.rounds
        progress(
            f"{name}: timing {len(runnable)} systems, {args.rounds} rounds x {result.inner} calls ..."
        )
        timed, samples = timed_robustly(runnable, inputs, args.rounds, result.inner, args.warmup)
    eager_samples = None
    for (sr, _), s in zip(timed, samples):
        sr.timing = summarize(s)
        if sr.name == EAGER:
            eager_samples = s
    for (sr, _), s in zip(timed, samples):
        t = sr.timing
        if eager_samples is not None:
            t.speedup = statistics.median(eager_samples) / statistics.median(s)
            t.ci_low, t.ci_high = paired_bootstrap(eager_samples, s)
        if wl.flops:
            t.gflops = wl.flops / (t.median_us * 1e-6) / 1e9
            if wl.is_matmul:
                t.peak_fraction = t.gflops * 1e9 / peak
    result.seconds = round(time.perf_counter() - started, 1)
    return result


# Orchestration (parent side) ----------------------------------------------------------------

# Seconds a workload takes on the reference machine (2 vCPUs, busy neighbours), measured:
# (everything but the searches: process start, Inductor's and the other compiles, 30
# timing rounds; how far one search overshoots its budget: the evaluation under way
# when the budget ends, composition and the end-to-end A/B, which grow with the model
# and with the time of one call).
ESTIMATES = {
    "mlp": (25, 5),
    "cnn": (30, 8),
    "attention": (22, 25),
    "transformer": (50, 20),
    "matmul_64x256x512": (12, 4),
    "matmul_256x1024x1024": (13, 8),
    "matmul_128x4096x1024": (18, 45),
    "matmul_1024x1024x1024": (18, 40),
    "conv2d": (33, 22),
    "softmax": (18, 3),
    "layernorm": (28, 4),
    "sum": (25, 3),
    "max": (18, 3),
}
DEFAULT_ESTIMATE = (30, 15)


def estimate_seconds(
    names: Sequence[str], budget_s: float, transcript: str | None, quick: bool = False
) -> float:
    """A pessimistic estimate: every search spends its whole budget."""
    searches = 2 if transcript else 1
    total = 0.0
    for n in names:
        base, overshoot = ESTIMATES.get(n, DEFAULT_ESTIMATE)
        total += (0.8 if quick else 1.0) * base + searches * (budget_s + overshoot)
    return total


def worker_argv(name: str, out: Path, args: argparse.Namespace) -> list[str]:
    argv = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        name,
        "--worker-out",
        str(out),
        "--rounds",
        str(args.rounds),
        "--warmup",
        str(args.warmup),
        "--sample-ms",
        str(args.sample_ms),
        "--budget-s",
        str(args.budget_s),
    ]
    if args.transcript:
        argv += ["--transcript", str(args.transcript)]
    if args.fma_units is not None:
        argv += ["--fma-units", str(args.fma_units)]
    if args.clock_mhz is not None:
        argv += ["--clock-mhz", str(args.clock_mhz)]
    if args.torch_threads:
        argv += ["--torch-threads", str(args.torch_threads)]
    return argv


def run_in_subprocess(name: str, args: argparse.Namespace) -> WorkloadResult:
    """One workload in a fresh Python; a crash or a timeout becomes the workload's error."""
    wl = W.get(name)
    with tempfile.TemporaryDirectory(prefix="mlirforge-suite-") as tmp:
        out = Path(tmp) / "result.json"
        tail: list[str] = []
        proc = subprocess.Popen(
            worker_argv(name, out, args),
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
            env={**os.environ, "PYTHONWARNINGS": "ignore::DeprecationWarning"},
        )

        def pump():
            for line in proc.stderr:
                tail.append(line.rstrip())
                del tail[:-30]
                if args.verbose or line.startswith("  > "):
                    print(line, end="", file=sys.stderr, flush=True)

        busy0, own0, wall0 = busy_cpu_seconds(), own_children_cpu_seconds(), time.perf_counter()
        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        timeout = args.workload_timeout_s or (
            300 + 3 * args.budget_s * (2 if args.transcript else 1)
        )
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            rc = None
        reader.join(timeout=5)
        other = None
        busy1 = busy_cpu_seconds()
        if busy0 is not None and busy1 is not None:
            capacity = (time.perf_counter() - wall0) * (os.cpu_count() or 1)
            other = max(0.0, (busy1 - busy0) - (own_children_cpu_seconds() - own0)) / capacity
            if other > 0.1:
                print(
                    f"  ! {name}: other processes used {100 * other:.0f}% of the CPUs meanwhile; "
                    "its timings are disturbed",
                    file=sys.stderr,
                    flush=True,
                )
        if rc == 0 and out.is_file():
            result = workload_from_json(json.loads(out.read_text()))
            result.other_cpu_share = other
            return result
    why = (
        f"timed out after {timeout:.0f} s"
        if rc is None
        else f"the workload's process exited with {rc}"
    )
    last = next((line.strip() for line in reversed(tail) if line.strip()), "")
    result = WorkloadResult(
        wl.name, wl.group, wl.description, [], wl.flops, wl.is_matmul, error=f"{why}: {last}"[:400]
    )
    for s in SYSTEM_NAMES:
        result.systems.append(SystemResult(s, None, None, status="error", error=result.error))
    return result


def workload_from_json(d: dict[str, Any]) -> WorkloadResult:
    systems = []
    for s in d.pop("systems"):
        t = s.pop("timing")
        systems.append(SystemResult(**s, timing=Timing(**t) if t else None))
    return WorkloadResult(**d, systems=systems)


def fmt_duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 60}:{seconds % 60:02d}"


def run_all(args: argparse.Namespace) -> tuple[dict[str, Any], list[WorkloadResult]]:
    machine = machine_info(args)
    estimate = estimate_seconds(args.workloads, args.budget_s, args.transcript, args.quick)
    print(
        f"suite: {len(args.workloads)} workloads, {args.rounds} rounds, search budget {args.budget_s:g} s; "
        f"estimated {fmt_duration(estimate)} (m:ss)",
        file=sys.stderr,
        flush=True,
    )
    started = time.perf_counter()
    results = []
    estimated_done = 0.0
    for i, name in enumerate(args.workloads, 1):
        print(
            f"[{i}/{len(args.workloads)}] {name} (elapsed {fmt_duration(time.perf_counter() - started)})",
            file=sys.stderr,
            flush=True,
        )
        results.append(run_in_subprocess(name, args))
        estimated_done += estimate_seconds([name], args.budget_s, args.transcript, args.quick)
        elapsed = time.perf_counter() - started
        remaining = (estimate - estimated_done) * (elapsed / estimated_done)
        print(
            f"[{i}/{len(args.workloads)}] {name} done; elapsed {fmt_duration(elapsed)}, "
            f"about {fmt_duration(remaining)} left",
            file=sys.stderr,
            flush=True,
        )
    report = {
        "machine": machine,
        "settings": settings_of(args),
        "total_seconds": round(time.perf_counter() - started, 1),
        "estimated_seconds": round(estimate),
    }
    return report, results


def settings_of(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "workloads": args.workloads,
        "systems": [dataclasses.asdict(s) for s in systems_for(args.budget_s, args.transcript)],
        "rounds": args.rounds,
        "warmup": args.warmup,
        "sample_ms": args.sample_ms,
        "budget_s": args.budget_s,
        "transcript": str(args.transcript) if args.transcript else None,
        "quick": args.quick,
        "bootstrap": "paired over rounds, 2000 resamples, 95%",
        "caches": "cold: fresh MLIRFORGE_CACHE_DIR per mlirforge system, fresh TORCHINDUCTOR_CACHE_DIR "
        "per workload; one process per workload",
        "memory": "peak RSS rise of the process over compile + first call (VmHWM reset via "
        "/proc/self/clear_refs) and peak summed RSS of the child processes started meanwhile "
        "(sampled every 10 ms)",
    }


# Reporting -----------------------------------------------------------------------------------


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def speedup_cell(t: Timing | None) -> str:
    if t is None or t.speedup is None:
        return "-"
    return f"{t.speedup:.2f} ({t.ci_low:.2f}-{t.ci_high:.2f})"


def check_cell(r: SystemResult) -> str:
    if r.status == "ok":
        return "ok" if r.ok else "FAIL"
    return r.status


DETAIL_HEADERS = [
    "system",
    "check",
    "compile s",
    "peak MiB (proc+children)",
    "median us",
    "p10-p90 us",
    "x eager (95% CI)",
    "GFLOP/s",
    "% fp32 peak",
]


def detail_rows(wl: WorkloadResult) -> list[list[str]]:
    rows = []
    for r in wl.systems:
        t = r.timing
        mem = (
            "-"
            if r.peak_self_mib is None
            else f"{r.peak_self_mib:.0f}+{r.peak_children_mib or 0:.0f}"
        )
        rows.append(
            [
                r.name,
                check_cell(r),
                fmt(r.compile_s, ".2f"),
                mem,
                fmt(t and t.median_us, ".1f"),
                "-" if t is None else f"{t.p10_us:.1f}-{t.p90_us:.1f}",
                speedup_cell(t),
                fmt(t and t.gflops, ".1f"),
                fmt(t and t.peak_fraction and 100 * t.peak_fraction, ".1f"),
            ]
        )
    return rows


def detail_notes(wl: WorkloadResult) -> list[str]:
    notes = []
    if wl.error:
        notes.append(f"workload: {wl.error}")
    for r in wl.systems:
        if r.error and not wl.error:
            notes.append(f"{r.name}: {r.status}: {r.error}")
        if r.ok is False:
            notes.append(f"{r.name}: wrong output: {r.check_message}")
        notes += [f"{r.name}: {n}" for n in dict.fromkeys(r.notes)]
    return notes


def summary_table(results: Sequence[WorkloadResult]) -> tuple[list[str], list[list[str]]]:
    names = [s for s in SYSTEM_NAMES if s != EAGER]
    headers = ["workload", "eager us", *names]
    rows = []
    for wl in results:
        by = {r.name: r for r in wl.systems}
        eager = by.get(EAGER)
        row = [wl.name, fmt(eager and eager.timing and eager.timing.median_us, ".1f")]
        for n in names:
            r = by.get(n)
            if r is None:
                row.append("-")
            elif r.timing is None:
                row.append(r.status if r.status != "ok" else "-")
            else:
                cell = f"{r.timing.speedup:.2f}x" if r.timing.speedup else "-"
                if r.ok is False:
                    cell += " WRONG"
                row.append(cell)
        rows.append(row)
    return headers, rows


def text_table(headers: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1) -> str:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)
    ]

    def line(cells):
        return "  ".join(
            c.ljust(w) if i < left else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths))
        )

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[str]], left: int = 1) -> str:
    aligns = ["---" if i < left else "---:" for i in range(len(headers))]
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join(aligns) + "|"]
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(out)


def code_span(text: str) -> str:
    text = text.replace("\n", " ")
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def timing_text(settings: dict[str, Any]) -> str:
    return (
        f"{settings['rounds']} interleaved rounds after {settings['warmup']} warm-up calls, calls per "
        f"round chosen so one eager sample lasts ~{settings['sample_ms']:g} ms; x eager = eager median / "
        "system median, 95% CI from a paired bootstrap over rounds"
    )


def cpu_text(machine: dict[str, Any]) -> str:
    c = machine["cpu"]
    return (
        f"{c['model_name']} (family {c['cpu_family']} model {c['cpu_model']}), {c['cores']} cores "
        f"({c['logical_cpus']} logical), {c['isa']}, {machine['memory_gib']:.1f} GiB, "
        f"torch threads {machine['torch_threads']}"
    )


def versions_text(v: dict[str, str]) -> str:
    return ", ".join(
        f"{k} {v[k]}"
        for k in (
            "torch",
            "torch-mlir",
            "iree-base-compiler",
            "iree-base-runtime",
            "iree-turbine",
            "mlirforge",
            "python",
        )
        if k in v
    )


def workload_title(wl: WorkloadResult) -> str:
    shapes = ", ".join("x".join(map(str, s)) for s in wl.input_shapes)
    inner = f"; {wl.rounds} rounds x {wl.inner} calls" if wl.inner else ""
    other = (
        f"; other processes {100 * wl.other_cpu_share:.0f}% of CPU"
        if wl.other_cpu_share is not None
        else ""
    )
    return f"{wl.name}: {wl.description} (inputs {shapes or '-'}{inner}{other})"


def render_text(report: dict[str, Any], results: Sequence[WorkloadResult]) -> str:
    m = report["machine"]
    parts = [
        "\n".join(
            [
                f"date      {m['date']}",
                f"cpu       {cpu_text(m)}",
                f"fp32 peak {m['cpu']['formula']} ({m['cpu']['fma_source']}; clock from {m['cpu']['clock_source']})",
                f"versions  {versions_text(m['versions'])}",
                f"timing    {timing_text(report['settings'])}",
            ]
        )
    ]
    headers, rows = summary_table(results)
    parts.append("== speedup over eager (median ratio)\n" + text_table(headers, rows))
    for wl in results:
        parts.append(
            f"== {workload_title(wl)}\n" + text_table(DETAIL_HEADERS, detail_rows(wl), left=2)
        )
        notes = detail_notes(wl)
        if notes:
            parts.append("\n".join("  " + n for n in notes))
    return "\n\n".join(parts) + "\n"


def render_markdown(
    report: dict[str, Any], results: Sequence[WorkloadResult], heading: str = "##"
) -> str:
    m, s = report["machine"], report["settings"]
    out = [
        f"{heading} Suite: eager, TorchInductor, iree-turbine and mlirforge",
        "",
        f"- Date: {m['date']}",
        f"- CPU: {cpu_text(m)}",
        f"- fp32 peak: {m['cpu']['formula']} (FMA units: {m['cpu']['fma_source']}; clock: {m['cpu']['clock_source']})",
        f"- Versions: {versions_text(m['versions'])}",
        f"- Timing: `mlirforge.timing.interleaved_times`, {timing_text(s)}",
        f"- Search budget (mlirforge[heuristic], mlirforge[llm-replay]): {s['budget_s']:g} s per workload",
        f"- Total: {report['total_seconds']:.0f} s",
        "",
        f"{heading}# Speedup over eager (median ratio; CI in the per-workload tables)",
        "",
        markdown_table(*summary_table(results)),
    ]
    for wl in results:
        out += [
            "",
            f"{heading}# {workload_title(wl)}",
            "",
            markdown_table(DETAIL_HEADERS, detail_rows(wl), left=2),
        ]
        notes = detail_notes(wl)
        if notes:
            out.append("")
            out += [f"- {code_span(n)}" for n in notes]
    return "\n".join(out) + "\n"


def to_json(report: dict[str, Any], results: Sequence[WorkloadResult]) -> str:
    from mlirforge.llm_rewrite.types import json_safe

    data = {**report, "workloads": [dataclasses.asdict(r) for r in results]}
    return json.dumps(json_safe(data), indent=1, allow_nan=False) + "\n"


# Main -------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--workloads", help=f"comma-separated names (default: all): {', '.join(W.BY_NAME)}"
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke test: {', '.join(W.QUICK)}, 3 rounds, 5 s search budget",
    )
    p.add_argument("--rounds", type=int, help="timing rounds (default 30; 3 with --quick)")
    p.add_argument(
        "--warmup", type=int, default=3, help="untimed calls per system first (default 3)"
    )
    p.add_argument(
        "--sample-ms",
        type=float,
        default=5.0,
        help="target duration of one eager timing sample, sets calls per round (default 5)",
    )
    p.add_argument(
        "--budget-s",
        type=float,
        help="search budget per workload and search (default 30, 20 with --transcript, 5 with --quick)",
    )
    p.add_argument("--transcript", type=Path, help="LLM transcript: adds mlirforge[llm-replay]")
    p.add_argument(
        "--fma-units", type=int, help="vector FMA units per core for the fp32 peak (default: 2)"
    )
    p.add_argument(
        "--clock-mhz",
        type=float,
        help="clock for the fp32 peak (default: from /sys or /proc/cpuinfo)",
    )
    p.add_argument(
        "--torch-threads",
        type=int,
        help="torch.set_num_threads in every workload (default: torch's)",
    )
    p.add_argument(
        "--workload-timeout-s", type=float, help="kill a workload's process after this long"
    )
    p.add_argument("--json", type=Path, help="write all raw numbers (samples included) here")
    p.add_argument("--markdown", type=Path, help="write Markdown tables here")
    p.add_argument("--verbose", action="store_true", help="forward all of the workers' stderr")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--worker-out", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.workloads:
        args.workloads = [w.strip() for w in args.workloads.split(",") if w.strip()]
        unknown = [w for w in args.workloads if w not in W.BY_NAME]
        if unknown:
            p.error(f"unknown workload(s) {unknown}; known: {', '.join(W.BY_NAME)}")
    else:
        args.workloads = list(W.QUICK if args.quick else W.BY_NAME)
    if args.rounds is None:
        args.rounds = 3 if args.quick else 30
    if args.budget_s is None:
        args.budget_s = 5.0 if args.quick else 20.0 if args.transcript else 30.0
    if args.rounds < 2 or args.warmup < 0 or args.budget_s <= 0 or args.sample_ms <= 0:
        p.error("--rounds must be >= 2, --warmup >= 0, --budget-s and --sample-ms > 0")
    if args.transcript and not args.transcript.is_file():
        p.error(f"--transcript: no such file {args.transcript}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        result = run_workload(args.worker, args)
        from mlirforge.llm_rewrite.types import json_safe

        args.worker_out.write_text(json.dumps(json_safe(dataclasses.asdict(result))))
        return 0
    report, results = run_all(args)
    emit(report, results, args, render_text, to_json, render_markdown)
    return 0


def emit(report: dict[str, Any], results, args: argparse.Namespace, text, as_json, markdown) -> None:
    """The console table and totals, then --json and --markdown files (both benches' outputs)."""
    print(text(report, results), end="")
    print(
        f"total {report['total_seconds']:.0f} s (estimated {report['estimated_seconds']} s)",
        file=sys.stderr,
    )
    for path, render in ((args.json, as_json), (args.markdown, markdown)):
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(render(report, results))
            print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
