"""The suite's parent process: one fresh Python per workload, its time estimated, its neighbours watched.

A crash or a hang costs one workload, not the run: `run_in_subprocess`
starts `bench_suite.py --worker NAME` (`bench/suite_worker.py`), forwards its
progress lines, kills it after its time bound and reads its result file; the
share of the CPU other processes took meanwhile is recorded with it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import workloads as W
from machine import machine_info
from mlirforge.benchmarking import OtherCpu
from output import fmt_duration, step
from suite_results import (
    SYSTEM_NAMES,
    SuiteSystemResult,
    WorkloadResult,
    systems_for,
    workload_from_json,
)

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent

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
        str(BENCH_DIR / "bench_suite.py"),
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

        reader = threading.Thread(target=pump, daemon=True)
        # Seven systems, two of them searching: the transformer layer took more than 420 s on a
        # 2-core Zen 4 (compile of every system plus 2 x 20 s searches plus their composition).
        timeout = args.workload_timeout_s or (
            600 + 3 * args.budget_s * (2 if args.transcript else 1)
        )
        with OtherCpu() as other_cpu:
            reader.start()
            try:
                rc = proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
                rc = None
            reader.join(timeout=5)
        other = other_cpu.share
        if other is not None and other > 0.1:
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
        result.systems.append(SuiteSystemResult(s, status="error", error=result.error))
    return result


def run_all(args: argparse.Namespace) -> tuple[dict[str, Any], list[WorkloadResult]]:
    machine = machine_info(args.fma_units, args.clock_mhz, args.torch_threads)
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
        step(i, len(args.workloads), name, started)
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
