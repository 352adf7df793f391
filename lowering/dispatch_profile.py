"""Where a compiled module's time goes: per-dispatch timings, and which source ops each dispatch holds.

`profile_dispatches` runs a vmfb for exactly `calls` calls under IREE's own
HAL profiling (`iree-benchmark-module --device_profiling_mode=host-execution`,
decoded by `iree-profile export`): one timed event per dispatch, so each
dispatch's time per model call is a median over calls, measured inside the
whole module (not the dispatch alone, whose caches would be warm).

`dispatch_sources` says, for each dispatch, which tagged source functions its
ops came from: ops carry name locations (`loc("<tag>"(...))`, see
`passes.tag_kernel_locations`) that survive into IREE's executable sources
(`--compile-to=executable-sources --mlir-print-debuginfo`, no code generated).
IREE names a dispatch by its root op and shapes only (`main_dispatch_3_matmul_256x1024x512_f32`),
so this is the only reliable way back to our kernels.

Both use IREE's tools from the installed packages (iree-base-runtime /
iree-base-compiler 3.13); errors are `LoweringError`s of stage `profile`.
Measured on a 2-core machine: the per-dispatch sum matches the whole call
within 1-2% on local-sync; on local-task the call also holds worker wake-up.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import re
import statistics
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from mlirforge.lowering.errors import LoweringError
from mlirforge.lowering.runtime import PARAMETER_SCOPE


@dataclasses.dataclass(frozen=True)
class DispatchTime:
    name: str
    """IREE's export name, e.g. `main$async_dispatch_3_matmul_256x1024x512_f32`."""
    per_call: int
    """How often it runs in one call of the function."""
    median_us: float
    """Median over calls of its summed wall time in one call, µs."""
    cpu_us: float
    """Median over calls of its summed CPU time (all workgroups, all worker threads), µs."""


@dataclasses.dataclass(frozen=True)
class DispatchProfile:
    dispatches: list[DispatchTime]
    call_us: float
    """Median over calls of the summed dispatch time of one call, µs."""
    calls: int


def runtime_tool(name: str) -> str:
    """Path of an IREE runtime tool shipped in iree-base-runtime (`iree-benchmark-module`, `iree-profile`)."""
    import iree._runtime_libs as libs

    path = Path(libs.__file__).parent / name
    if not path.is_file():
        raise LoweringError("profile", f"{name} is not in the installed iree-base-runtime ({path.parent})")
    return str(path)


def _run(command: list[str], what: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode != 0:
        raise LoweringError("profile", f"{what} failed (exit {proc.returncode}): "
                                       f"{proc.stderr.strip()[-2000:] or proc.stdout.strip()[-2000:]}")
    return proc


def profile_dispatches(vmfb: Path, inputs: Sequence[np.ndarray], parameters: Path | None = None,
                       driver: str = "local-sync", calls: int = 30, function: str = "main") -> DispatchProfile:
    """Per-dispatch medians of `function` over exactly `calls` profiled calls (the first is cold; the
    median does not let it decide). `inputs`: host arrays in argument order; `parameters`: the
    module's IREE parameter archive (scope `mlirforge`)."""
    if calls < 3:
        raise ValueError("calls: at least 3 for a median")
    with tempfile.TemporaryDirectory(prefix="mlirforge-profile-") as tmp:
        args = []
        for i, a in enumerate(inputs):
            np.save(Path(tmp) / f"in{i}.npy", np.ascontiguousarray(a))
            args.append(f"--input=@{Path(tmp) / f'in{i}.npy'}")
        if parameters is not None:
            args.append(f"--parameters={PARAMETER_SCOPE}={parameters}")
        prof = Path(tmp) / "run.ireeprof"
        _run([runtime_tool("iree-benchmark-module"), f"--module={vmfb}", f"--device={driver}",
              f"--function={function}", f"--benchmark_min_time={calls}x", "--benchmark_repetitions=1",
              "--device_profiling_mode=host-execution", f"--device_profiling_output={prof}", *args],
             "iree-benchmark-module")
        exported = _run([runtime_tool("iree-profile"), "export", "--format=ireeperf-jsonl", "--output=-", str(prof)],
                        "iree-profile export").stdout
    events = [json.loads(line) for line in exported.splitlines() if line.strip()]
    return per_call(events, calls)


def per_call(events: list[dict], calls: int) -> DispatchProfile:
    """Fold host-execution dispatch events of `calls` calls into per-call medians per dispatch."""
    dispatches = sorted((e for e in events if e.get("record_type") == "host_execution_event"
                         and e.get("op") == "dispatch" and e.get("valid", True)),
                        key=lambda e: e["start_host_time_ns"])
    if not dispatches or len(dispatches) % calls:
        raise LoweringError("profile", f"{len(dispatches)} dispatch events for {calls} calls: the profile is "
                                       "incomplete (dropped records?)")
    per = len(dispatches) // calls
    chunks = [dispatches[i * per:(i + 1) * per] for i in range(calls)]
    order = [e["key"] for e in chunks[0]]
    if any([e["key"] for e in c] != order for c in chunks):
        raise LoweringError("profile", "the calls ran different dispatch sequences; cannot fold them per call")
    wall: dict[str, list[float]] = collections.defaultdict(list)
    cpu: dict[str, list[float]] = collections.defaultdict(list)
    for chunk in chunks:
        w, c = collections.Counter(), collections.Counter()
        for e in chunk:
            w[e["key"]] += e["duration_ns"]
            c[e["key"]] += e.get("tile_duration_sum_ns", e["duration_ns"])
        for key in w:
            wall[key].append(w[key] / 1e3)
            cpu[key].append(c[key] / 1e3)
    counts = collections.Counter(order)
    rows = [DispatchTime(key, counts[key], statistics.median(wall[key]), statistics.median(cpu[key]))
            for key in dict.fromkeys(order)]
    totals = [sum(e["duration_ns"] for e in chunk) / 1e3 for chunk in chunks]
    return DispatchProfile(rows, statistics.median(totals), calls)


_EXPORT = re.compile(r"hal\.executable\.export\s+public\s+@([\w$.\-]+)")
_TAG = re.compile(r'loc\((?:callsite\()?"([^"]+)"\(')


@dataclasses.dataclass(frozen=True)
class DispatchSource:
    root: str | None
    """The tag of the dispatch's root op (where its workgroup count comes from)."""
    tags: tuple[str, ...]
    """Every tag whose ops were fused into the dispatch, root first."""


def dispatch_sources(mlir_text: str, flags: Sequence[str], prefix: str = "") -> dict[str, DispatchSource]:
    """Dispatch export name -> the tagged sources of its ops (tags starting with `prefix`).

    `mlir_text` must carry name locations (printed with debug info) and `flags`
    must be the real build's, so that IREE forms the same dispatches.
    """
    from mlirforge.lowering.iree_compile import iree_compile_tool

    with tempfile.TemporaryDirectory(prefix="mlirforge-sources-") as tmp:
        src, dump = Path(tmp) / "input.mlir", Path(tmp) / "sources"
        src.write_text(mlir_text)
        _run([iree_compile_tool(), str(src), *flags, "--compile-to=executable-sources", "--mlir-print-debuginfo",
              f"--iree-hal-dump-executable-sources-to={dump}", "-o", str(Path(tmp) / "out.mlir")],
             "iree-compile --compile-to=executable-sources")
        texts = [p.read_text() for p in sorted(dump.glob("*.mlir"))]
    found = {}
    for text in texts:
        # A binding's subspan carries its producer's location, not this dispatch's ops.
        body = "\n".join(line for line in text.splitlines() if "hal.interface.binding.subspan" not in line)
        tags = tuple(t for t in dict.fromkeys(_TAG.findall(body)) if t.startswith(prefix))
        for line in text.splitlines():
            m = _EXPORT.search(line)
            if m:
                roots = [t for t in _TAG.findall(line) if t.startswith(prefix)]
                root = roots[0] if roots else None
                found[m.group(1)] = DispatchSource(root, tuple(dict.fromkeys([*([root] if root else []), *tags])))
    return found
