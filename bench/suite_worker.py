"""One workload of the suite, measured in its own process: every system compiled, checked and timed.

`python bench/bench_suite.py --worker NAME --worker-out FILE` lands in
`run_workload`; `bench/suite_runner.py` starts it and reads FILE back.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import torch
import workloads as W
from machine import cpu_peak
from mlirforge.benchmarking import (
    calls_per_sample,
    first_call_against_eager,
    one_line,
    per_call_s,
    ran_in,
    settle_calls,
)
from output import progress
from peak_memory import MemoryTracker
from suite_results import EAGER, REPLAY, SuiteSystemResult, WorkloadResult, systems_for
from systems import SystemSpec, build_callable, fresh_mlirforge_cache, summarize


class _LogCapture(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        msg = record.getMessage()
        if "search kept" in msg or record.levelno >= logging.WARNING:
            self.messages.append(msg.splitlines()[0])


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
        progress(f"turbine_cpu backend not loadable: {one_line(exc)}")


def _unavailable_or_error(spec: SystemSpec, result: SuiteSystemResult) -> None:
    # The replay proposer is optional equipment: if it cannot run, the row says so.
    result.status = "not available" if spec.name == REPLAY else "error"


def run_system_first_call(
    spec: SystemSpec, model, inputs, result: SuiteSystemResult, cache_root: Path
) -> Callable | None:
    """Build, compile (first call) and check one system; returns its callable or None."""
    if spec.is_mlirforge:
        fresh_mlirforge_cache(cache_root, spec.name)
    try:
        fn = build_callable(spec, model)
    except Exception as exc:  # noqa: BLE001 (a broken system must not stop the others)
        traceback.print_exc(file=sys.stderr)
        _unavailable_or_error(spec, result)
        result.error = one_line(exc)
        return None
    mem = MemoryTracker()

    def tracked(*args):
        with mem:
            return fn(*args)

    capture = _LogCapture()
    logger = logging.getLogger("mlirforge")
    old_level, old_propagate = logger.level, logger.propagate
    logger.addHandler(capture)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # the captured lines go into the notes, not to the console
    try:
        seen = first_call_against_eager(tracked, model, inputs)
    finally:
        logger.removeHandler(capture)
        logger.setLevel(old_level)
        logger.propagate = old_propagate
    result.peak_self_mib, result.peak_children_mib = mem.self_mib, mem.children_mib
    if not result.record_first_call(seen, spec.is_mlirforge):
        _unavailable_or_error(spec, result)
        return None
    if spec.is_mlirforge:
        msgs = [m.splitlines()[0] for m in seen.fallback_warnings]
        if seen.search_failures and spec.name == REPLAY:
            # The row is about the replayed LLM search; without it, it is not that system.
            result.status, result.error = "not available", seen.search_failures[0].splitlines()[0]
            return None
        result.notes += msgs + capture.messages
        where = ran_in(result.stats_delta)
        if where == "eager (fallback)":
            result.notes.append("nothing was compiled: ran in eager PyTorch")
        elif where == "IREE+eager":
            result.notes.append("partly in eager PyTorch (unsupported ops)")
    return fn


def timed_robustly(
    runnable: list[tuple[SuiteSystemResult, Callable]], inputs, rounds: int, inner: int, warmup: int
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
        victim.status, victim.error = "error", f"during timing: {one_line(failure)}"
        progress(f"{victim.name} failed during timing: {one_line(failure)}")
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
        result.error = f"could not build the workload: {one_line(exc)}"
        return result
    result.input_shapes = [list(t.shape) for t in inputs if isinstance(t, torch.Tensor)]
    runnable: list[tuple[SuiteSystemResult, Callable]] = []
    with torch.no_grad():
        for spec in specs:
            progress(f"{name}: {spec.name} compile ...")
            sr = SuiteSystemResult(spec.name, spec.options, backend=spec.backend)
            result.systems.append(sr)
            fn = run_system_first_call(spec, model, inputs, sr, cache_root)
            if fn is not None:
                runnable.append((sr, fn))
            progress(
                f"{name}: {spec.name} {sr.status}"
                + (f" ({sr.error})" if sr.error else f", first call {sr.compile_s:.1f} s")
            )
        if not args.transcript:
            result.systems.append(
                SuiteSystemResult(REPLAY, backend="mlirforge", status="not run", error="no --transcript given")
            )
        per_call = {}
        for r, fn in list(runnable):
            try:
                per_call[r.name] = per_call_s(lambda fn=fn: fn(*inputs))
            except Exception as exc:  # noqa: BLE001 (the first call worked, a later one did not)
                traceback.print_exc(file=sys.stderr)
                r.status, r.error = "error", f"after the first call: {one_line(exc)}"
                runnable.remove((r, fn))
        eager_s = per_call.get(EAGER) or per_call_s(lambda: model(*inputs))
        result.inner = calls_per_sample(
            eager_s, args.sample_ms / 1000, max(per_call.values(), default=eager_s)
        )
        result.rounds = args.rounds
        progress(
            f"{name}: timing {len(runnable)} systems, {args.rounds} rounds x {result.inner} calls ..."
        )
        # After the per-graph choices (driver, eager-if-faster) are made, as for a user's later calls.
        timed, samples = timed_robustly(runnable, inputs, args.rounds, result.inner,
                                        max(args.warmup, settle_calls()))
    eager_samples = next((s for (sr, _), s in zip(timed, samples) if sr.name == EAGER), None)
    for (sr, _), s in zip(timed, samples):
        t = sr.timing = summarize(s, eager_samples)
        if wl.flops:
            t.gflops = wl.flops / (t.median_us * 1e-6) / 1e9
            if wl.is_matmul:
                t.peak_fraction = t.gflops * 1e9 / peak
    result.seconds = round(time.perf_counter() - started, 1)
    return result
