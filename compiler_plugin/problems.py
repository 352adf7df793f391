"""`mlirforge bench-problems DIR`: run a folder of KernelBench-format problems.

Each `*.py` file in DIR defines `class Model(torch.nn.Module)`, `get_inputs()`
and `get_init_inputs()` (`mlirforge.kernelbench.load_model_file`). Every
problem goes through `torch.compile(model, backend="mlirforge", options=...)`
and is compared with eager PyTorch and timed against it, side by side.

    mlirforge bench-problems problems/ [--timeout-s 300] [--max-memory-mb 8192]
        [--rounds 20] [--json OUT] [--filter SUBSTRING] [--options KEY=VALUE ...]

Per problem the status is one of:

  pass       every graph ran in IREE and the outputs match eager
             (`mlirforge.numerics.compare_outputs` tolerances)
  mismatch   the outputs differ from eager (the max abs error is shown)
  fell-back  the outputs match, but part or all of the model ran in eager
             PyTorch (ops mlirforge cannot lower, dynamo graph breaks)
  error      the file fails to import or build, or compiling raises
  timeout    the problem exceeded --timeout-s
  skipped    the problem is estimated too large for --max-memory-mb or for
             the RAM available (estimated on the `meta` device: nothing real
             is allocated)

Why a subprocess per problem: a crash, a hang or a memory blow-up of one
problem must not take down the run. The child (`python -m mlirforge.problems
--one FILE ...`) bounds its own address space with RLIMIT_AS before importing
torch, the parent bounds its wall time (and kills its process group, which
holds the `iree-compile` it may have started) and reads one JSON line from its
stdout. Problems run one at a time: concurrent runs would distort each
other's timings on a small machine.

Exit status: 0 the run completed (whatever the statuses), 2 usage errors,
1 internal failure, 130 interrupted (the table so far is printed).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import re
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

STATUSES = ("pass", "mismatch", "fell-back", "error", "timeout", "skipped")

DEFAULT_TIMEOUT_S = 300.0
DEFAULT_ROUNDS = 20
# RLIMIT_AS bounds virtual memory, not resident memory. On the reference
# machine (2 cores) a trivial problem (an 8x64 linear layer) peaks at 1.35 GB
# of address space (torch 0.64 GB, + mlirforge/torch-mlir/IREE 0.98 GB, + the
# compile and the IREE runtime) while only 0.53 GB is resident, and fails to
# import below ~1.2 GB. The iree-compile child inherits the limit. 8 GB leaves
# ~6.5 GB of address space for the problem's data and matches the evaluation
# worker's default bound (llm_rewrite.evaluate.EvalSettings.memory_mb).
DEFAULT_MAX_MEMORY_MB = 8192
MIN_MAX_MEMORY_MB = 1536
BASELINE_MB = 1536
"""Address space a trivial problem needs (measured 1.35 GB peak, rounded up)."""
DATA_COPIES = 3
"""The size estimate counts parameters + inputs + outputs this many times: the
eager model's tensors, IREE's bound/packed copy of the weights, and the
compiled outputs next to the eager reference."""

RESULT_MARKER = "MLIRFORGE_PROBLEM_RESULT "
PHASE_MARKER = "mlirforge-problems: phase "
MIB = 2**20


# --------------------------------------------------------------------------- results


@dataclasses.dataclass
class SizeEstimate:
    """Bytes a problem's tensors take, from building it on the `meta` device."""

    param_bytes: int
    input_bytes: int
    output_bytes: int | None  # None: the forward could not run on meta tensors
    note: str = ""

    @property
    def data_bytes(self) -> int:
        return self.param_bytes + self.input_bytes + (self.output_bytes or 0)

    @property
    def needed_mb(self) -> float:
        """Address space the child is expected to need: baseline + copies of the data."""
        return BASELINE_MB + DATA_COPIES * self.data_bytes / MIB


@dataclasses.dataclass
class ProblemResult:
    """Everything measured about one problem; `--json` writes these as they are."""

    problem: str
    path: str
    status: str
    reason: str = ""
    max_abs_error: float | None = None
    eager_us: float | None = None
    mlirforge_us: float | None = None
    speedup: float | None = None
    compile_s: float | None = None
    fallback_ops: list[str] = dataclasses.field(default_factory=list)
    fallback_warnings: list[str] = dataclasses.field(default_factory=list)
    graph_breaks: list[str] = dataclasses.field(default_factory=list)
    stats_delta: dict[str, float] | None = None  # mlirforge.stats() change over the first call
    iree_calls_per_call: int | None = None
    estimate: dict[str, Any] | None = None
    timing: dict[str, Any] | None = None  # rounds, inner, raw samples (µs)
    phase: str | None = None  # the last phase the child reached
    wall_s: float | None = None
    load_avg: float | None = None  # 1-minute load average when it finished: other work skews timings
    stderr_tail: str = ""

    def to_json(self) -> dict[str, Any]:
        return _json_safe(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ProblemResult:
        known = {f.name for f in dataclasses.fields(cls)}
        fields = {k: v for k, v in data.items() if k in known}
        for key in ("max_abs_error", "speedup"):  # "inf"/"nan" back to floats
            if isinstance(fields.get(key), str):
                fields[key] = float(fields[key])
        return cls(**fields)


@dataclasses.dataclass
class Totals:
    counts: dict[str, int]
    geomean_speedup: float | None  # over passing problems with a timing
    timed_passes: int


def _json_safe(value: Any) -> Any:
    """Non-finite floats as strings: strict JSON has no Infinity/NaN."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


def one_line(exc: BaseException, limit: int = 240) -> str:
    """`Type: first line` of the innermost meaningful exception.

    Dynamo wraps backend failures ("backend='mlirforge' raised:"), so the
    wrapper's own first line says nothing; the inner exception does.
    """
    seen = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        inner = getattr(exc, "inner_exception", None) or exc.__cause__
        if inner is None:
            break
        exc = inner
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    text = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------- the child


OOM_PATTERN = re.compile(
    r"MemoryError|bad_alloc|can't allocate memory|Cannot allocate memory|failed to map segment|out of memory")


def _failure(what: str, text: str, max_memory_mb: int) -> str:
    """One-line reason; an allocation failure is named as hitting the memory bound."""
    if OOM_PATTERN.search(text):
        return f"{what}: out of memory (address-space bound {max_memory_mb} MB): {text}"
    return f"{what}: {text}"


def _phase(name: str) -> None:
    """Tell the parent how far we got: a timeout or a crash is reported with it."""
    print(f"{PHASE_MARKER}{name}", file=sys.stderr, flush=True)


def _set_memory_limit(max_memory_mb: int) -> None:
    """Bound this process's address space; must run before torch is imported."""
    import resource

    limit = max_memory_mb * MIB
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _tensor_bytes(tree) -> int:
    import torch
    import torch.utils._pytree as pytree

    return sum(t.numel() * t.element_size() for t in pytree.tree_leaves(tree) if isinstance(t, torch.Tensor))


def estimate_size(path: Path) -> SizeEstimate:
    """Parameters + inputs + outputs, built under `torch.device("meta")`.

    Meta tensors have shapes and dtypes but no storage, so a 64 GB model costs
    nothing to measure. Raises whatever the problem file raises.
    """
    import torch

    from mlirforge.kernelbench import import_model_module

    module = import_model_module(path)
    with torch.device("meta"), torch.no_grad():
        model = module.Model(*module.get_init_inputs())
        inputs = list(module.get_inputs())
        param_bytes = _tensor_bytes(list(model.parameters()) + list(model.buffers()))
        input_bytes = _tensor_bytes(inputs)
        try:
            output_bytes: int | None = _tensor_bytes(model(*inputs))
            note = ""
        except Exception as exc:  # ops without meta kernels, data-dependent code
            output_bytes, note = None, f"outputs not estimated ({one_line(exc, 120)})"
    return SizeEstimate(param_bytes, input_bytes, output_bytes, note)


def available_ram_mb() -> float | None:
    """MemAvailable from /proc/meminfo (None where there is none)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _size(mb: float) -> str:
    return f"{mb / 1024:.1f} GB" if mb >= 1024 else f"{mb:.1f} MB"


def skip_reason(estimate: SizeEstimate, max_memory_mb: int, available_mb: float | None) -> str | None:
    """Why a problem must not be run, or None if it fits."""
    data_mb = estimate.data_bytes / MIB
    outputs = "?" if estimate.output_bytes is None else _size(estimate.output_bytes / MIB)
    what = (f"params {_size(estimate.param_bytes / MIB)} + inputs {_size(estimate.input_bytes / MIB)}"
            f" + outputs {outputs}")
    if max_memory_mb > 0 and estimate.needed_mb > max_memory_mb:  # 0: no bound (child's --one only)
        return (f"too large: needs ~{_size(estimate.needed_mb)} > --max-memory-mb {max_memory_mb} "
                f"({what}; {BASELINE_MB} MB + {DATA_COPIES} x data)")
    if available_mb is not None and DATA_COPIES * data_mb > available_mb:
        return (f"too large: {DATA_COPIES} x data = {_size(DATA_COPIES * data_mb)} > {_size(available_mb)} "
                f"of available RAM ({what})")
    return None


def _stats_snapshot() -> dict[str, float]:
    import mlirforge

    return dataclasses.asdict(mlirforge.stats())


def _graph_break_counter() -> dict[str, int]:
    from torch._dynamo.utils import counters

    return dict(counters["graph_break"])


def fallback_ops(messages: list[str]) -> list[str]:
    """Op names from the backend's FallbackWarning texts ("...: aten.erfinv (1 node at m.py:3); the rest ...")."""
    ops = []
    for msg in messages:
        m = re.search(r"these ops run in eager PyTorch(?: by choice)?: (.*?); (?:the rest|so does|why)", msg)
        if m:
            ops += [re.sub(r"\s*\(\d+ nodes?[^)]*\)$", "", part.strip())
                    for part in re.split(r", (?=[\w.]+ \()", m.group(1))]
    return ops


def classify(result: ProblemResult, ok: bool, message: str) -> None:
    """Set status/reason from the comparison and what ran eagerly (mismatch wins)."""
    if not ok:
        result.status, result.reason = "mismatch", message
        return
    delta = result.stats_delta or {}
    eager_parts = []
    if result.fallback_ops:
        eager_parts.append("ran eagerly: " + ", ".join(result.fallback_ops))
    if delta.get("eager_graphs"):
        eager_parts.append(f"{int(delta['eager_graphs'])} graph(s) ran eagerly")
    if result.graph_breaks:
        eager_parts.append("dynamo graph break: " + "; ".join(result.graph_breaks))
    if result.iree_calls_per_call == 0:
        eager_parts.append("no IREE call: the model ran in eager PyTorch")
    other = [w for w in result.fallback_warnings if "these ops run in eager PyTorch" not in w]
    eager_parts += [w.removeprefix("mlirforge: ") for w in other]
    if eager_parts:
        result.status, result.reason = "fell-back", "; ".join(eager_parts)
    else:
        result.status, result.reason = "pass", ""


def _compile_first_call(compiled, inputs: list, result: ProblemResult):
    """The first compiled call (traces and compiles): output, with what fell back recorded."""
    from mlirforge.backend import FallbackWarning

    before, breaks_before = _stats_snapshot(), _graph_break_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        try:
            actual = compiled(*inputs)
        finally:
            result.compile_s = time.perf_counter() - start
    after = _stats_snapshot()
    result.stats_delta = {k: round(after[k] - before[k], 3) for k in after}
    result.fallback_warnings = [str(w.message) for w in caught if issubclass(w.category, FallbackWarning)]
    result.fallback_ops = fallback_ops(result.fallback_warnings)
    result.graph_breaks = sorted(k for k, n in _graph_break_counter().items() if n > breaks_before.get(k, 0))
    return actual


def _calls_per_sample(eager, compiled) -> int:
    """Calls per timing sample: enough for ~2 ms a sample, 1 to 10.

    A fast model needs several calls per sample to rise above the timer's
    noise; a slow one must not multiply the run time. Judged from the fastest
    of 3 calls of each, so that one preempted call does not decide it.
    """
    slowest = 1e-7
    for fn in (eager, compiled):
        best = math.inf
        for _ in range(3):
            start = time.perf_counter()
            fn()
            best = min(best, time.perf_counter() - start)
        slowest = max(slowest, best)
    return max(1, min(10, math.ceil(0.002 / slowest)))


def time_problem(eager, compiled, rounds: int, result: ProblemResult) -> None:
    """Interleaved eager/compiled timing (`mlirforge.timing.interleaved_times`), medians."""
    from mlirforge.timing import interleaved_times, median_us

    inner = _calls_per_sample(eager, compiled)
    eager_s, compiled_s = interleaved_times([eager, compiled], rounds=rounds, inner=inner, warmup=2)
    result.eager_us, result.mlirforge_us = median_us(eager_s), median_us(compiled_s)
    result.speedup = result.eager_us / result.mlirforge_us if result.mlirforge_us > 0 else None
    result.timing = {"rounds": rounds, "inner": inner,
                     "eager_samples_us": [s * 1e6 for s in eager_s],
                     "mlirforge_samples_us": [s * 1e6 for s in compiled_s]}


def _count_iree_calls(fn) -> int:
    import mlirforge

    before = mlirforge.stats().iree_calls
    fn()
    return mlirforge.stats().iree_calls - before


def solve_one(path: Path, max_memory_mb: int, rounds: int, options: dict[str, Any]) -> ProblemResult:
    """Estimate, build, compile, compare and time one problem (in the child)."""
    result = ProblemResult(problem=path.name, path=str(path), status="error")
    _phase("estimate")
    try:
        estimate = estimate_size(path)
    except Exception as exc:  # the real build below reports the file's own error
        estimate = None
        result.estimate = {"note": f"estimate failed: {one_line(exc, 160)}"}
    if estimate is not None:
        result.estimate = {**dataclasses.asdict(estimate), "needed_mb": round(estimate.needed_mb, 1)}
        reason = skip_reason(estimate, max_memory_mb, available_ram_mb())
        if reason:
            result.status, result.reason = "skipped", reason
            return result

    _phase("build")
    import torch

    from mlirforge.kernelbench import load_model_file
    from mlirforge.lowering.errors import UserError
    from mlirforge.numerics import check_against_eager

    try:
        problem = load_model_file(path)
    except UserError as exc:
        what, _, text = str(exc).splitlines()[0].removeprefix(f"{path}: ").partition(": ")
        result.reason = _failure(what, text, max_memory_mb)
        return result
    model, inputs = problem.model, problem.inputs
    with torch.no_grad():
        eager_failed: list[str] = []

        def eager(*args):
            _phase("eager")
            try:
                return model(*args)
            except Exception as exc:
                eager_failed.append(one_line(exc))
                raise

        def first_call(*args):
            _phase("compile")
            return _compile_first_call(compiled, args, result)

        compiled = torch.compile(model, backend="mlirforge", options=options or None)
        try:
            # Eager on copies, the compiled model on the inputs: outputs and inputs are compared.
            check = check_against_eager(first_call, eager, inputs)
        except Exception as exc:
            what = "eager forward failed" if eager_failed else "compile failed"
            result.reason = _failure(what, eager_failed[0] if eager_failed else one_line(exc), max_memory_mb)
            return result
        ok, result.max_abs_error, message = check.ok, check.max_abs_error, check.message
        _phase("time")
        try:
            # A later call that runs no IREE module is a fallback too: count before classifying.
            result.iree_calls_per_call = _count_iree_calls(lambda: compiled(*inputs))
            classify(result, ok, message)
            time_problem(lambda: model(*inputs), lambda: compiled(*inputs), rounds, result)
        except Exception as exc:  # the first call worked, a later one did not
            result.status = "error"
            result.reason = _failure("a later call failed", one_line(exc), max_memory_mb)
    return result


def child_main(argv: list[str]) -> int:
    """`python -m mlirforge.problems --one FILE ...`: one problem, one JSON line on stdout."""
    parser = argparse.ArgumentParser(prog="python -m mlirforge.problems --one")
    parser.add_argument("--one", required=True, type=Path, metavar="FILE")
    parser.add_argument("--max-memory-mb", type=int, default=DEFAULT_MAX_MEMORY_MB, help="0: no bound")
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS)
    parser.add_argument("--options-json", default="{}", help="backend options as a JSON object")
    args = parser.parse_args(argv)
    if args.max_memory_mb:
        _set_memory_limit(args.max_memory_mb)
    warnings.filterwarnings("ignore", category=FutureWarning)  # torch's own deprecations
    try:
        result = solve_one(args.one, args.max_memory_mb, args.rounds, json.loads(args.options_json))
    except MemoryError:
        result = ProblemResult(args.one.name, str(args.one), "error",
                               f"out of memory: exceeded the {args.max_memory_mb} MB address-space bound")
    except Exception as exc:
        result = ProblemResult(args.one.name, str(args.one), "error", f"runner failed: {one_line(exc)}")
    sys.stdout.write(RESULT_MARKER + json.dumps(result.to_json()) + "\n")
    sys.stdout.flush()
    return 0


# --------------------------------------------------------------------------- the parent


def natural_key(path: Path) -> list:
    """`2_x.py` before `10_x.py`, as KernelBench numbers its problems."""
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", path.name)]


def problem_files(directory: Path, substring: str | None) -> list[Path]:
    files = [p for p in directory.glob("*.py") if p.is_file() and not p.name.startswith("_")]
    if substring:
        files = [p for p in files if substring in p.name]
    return sorted(files, key=natural_key)


def parse_options(pairs: list[str], parser: argparse.ArgumentParser) -> dict[str, Any]:
    """KEY=VALUE pairs; a VALUE that parses as JSON (true, 20, ["--x"]) is taken as such."""
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            parser.error(f"--options: expected KEY=VALUE, got '{pair}'")
        try:
            options[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            options[key.strip()] = value
    if options:
        from mlirforge.config import CompileConfig
        from mlirforge.lowering.errors import UserError

        try:
            CompileConfig.from_options(options)
        except UserError as exc:
            parser.error(f"--options: {exc}")
    return options


def _child_command(path: Path, args: argparse.Namespace, options: dict[str, Any]) -> list[str]:
    return [sys.executable, "-m", "mlirforge.problems", "--one", str(path),
            "--max-memory-mb", str(args.max_memory_mb), "--rounds", str(args.rounds),
            "--options-json", json.dumps(options)]


def _kill_group(proc: subprocess.Popen) -> None:
    """Kill the child and whatever it started (iree-compile): they share its session."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _last_phase(stderr: str) -> str | None:
    phases = [ln[len(PHASE_MARKER):].strip() for ln in stderr.splitlines() if ln.startswith(PHASE_MARKER)]
    return phases[-1] if phases else None


def _stderr_tail(stderr: str, lines: int = 15) -> str:
    kept = [ln for ln in stderr.splitlines() if not ln.startswith(PHASE_MARKER)]
    return "\n".join(kept[-lines:])


def _crash_reason(returncode: int, stderr: str, max_memory_mb: int) -> str:
    """One line for a child that died without a result."""
    if returncode < 0:
        try:
            how = signal.Signals(-returncode).name
        except ValueError:
            how = f"signal {-returncode}"
    else:
        how = f"exit status {returncode}"
    if OOM_PATTERN.search(stderr):
        return f"out of memory (bound {max_memory_mb} MB), child died ({how})"
    last = next((ln.strip() for ln in reversed(stderr.splitlines())
                 if ln.strip() and not ln.startswith(PHASE_MARKER)), "")
    return f"child died ({how}){': ' + last[:160] if last else ''}"


def run_problem(path: Path, args: argparse.Namespace, options: dict[str, Any]) -> ProblemResult:
    """Run one problem in a child process under the time bound; never raises for its failures."""
    start = time.monotonic()
    proc = subprocess.Popen(_child_command(path, args, options), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, errors="replace", start_new_session=True)
    timed_out = False
    try:
        stdout, stderr = proc.communicate(timeout=args.timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(proc)
        stdout, stderr = proc.communicate()
    finally:
        if proc.poll() is None:  # interrupted (Ctrl-C): take the child down with us
            _kill_group(proc)
            proc.wait()
    wall = time.monotonic() - start
    phase = _last_phase(stderr)
    result_lines = [ln for ln in stdout.splitlines() if ln.startswith(RESULT_MARKER)]
    if timed_out:
        where = f" (during {phase})" if phase else ""
        result = ProblemResult(path.name, str(path), "timeout", f"exceeded {args.timeout_s:g} s{where}")
    elif result_lines:
        result = ProblemResult.from_json(json.loads(result_lines[-1][len(RESULT_MARKER):]))
    else:
        result = ProblemResult(path.name, str(path), "error",
                               _crash_reason(proc.returncode, stderr, args.max_memory_mb))
    result.phase, result.wall_s, result.load_avg = phase, round(wall, 2), _load_avg()
    result.stderr_tail = _stderr_tail(stderr)
    return result


def _load_avg() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def load_note(results: list[ProblemResult]) -> str | None:
    """A warning when other work competed for the CPU: eager PyTorch's thread pool
    then slows down far more than single-threaded IREE, and speedups mean little."""
    cores = os.cpu_count() or 1
    worst = max((r.load_avg for r in results if r.load_avg is not None), default=None)
    if worst is not None and worst > cores:
        return (f"mlirforge: note: load average reached {worst:.1f} on {cores} cores during the run; "
                "other processes competed for the CPU and the timings are unreliable")
    return None


def _fmt(value: float | None, spec: str) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):  # "inf" from JSON
        return value
    return format(value, spec)


def progress_line(index: int, total: int, result: ProblemResult) -> str:
    parts = [f"[{index}/{total}]", result.problem, result.status]
    if result.speedup is not None:
        parts.append(f"{result.speedup:.2f}x")
    if result.compile_s is not None:
        parts.append(f"compile {result.compile_s:.1f} s")
    if result.wall_s is not None:
        parts.append(f"({result.wall_s:.1f} s)")
    if result.reason:
        parts.append(f"- {result.reason[:120]}")
    return " ".join(parts)


def format_table(results: list[ProblemResult]) -> list[str]:
    header = ["problem", "status", "max abs err", "eager µs", "mlirforge µs", "speedup", "compile s", "note"]
    rows = [[r.problem, r.status, _fmt(r.max_abs_error, ".2g"), _fmt(r.eager_us, ".1f"),
             _fmt(r.mlirforge_us, ".1f"), "-" if r.speedup is None else f"{r.speedup:.2f}x",
             _fmt(r.compile_s, ".2f"), r.reason[:130]] for r in results]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header) - 1)]
    numeric = {2, 3, 4, 5, 6}

    def line(cells: list[str]) -> str:
        out = [c.rjust(w) if i in numeric else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))]
        return "  ".join([*out, cells[-1]]).rstrip()

    return [line(header), line(["-" * w for w in widths] + ["-" * 4]), *(line(r) for r in rows)]


def totals(results: list[ProblemResult]) -> Totals:
    counts = {s: sum(r.status == s for r in results) for s in STATUSES}
    speedups = [r.speedup for r in results if r.status == "pass" and r.speedup]
    geo = math.exp(sum(math.log(s) for s in speedups) / len(speedups)) if speedups else None
    return Totals(counts, geo, len(speedups))


def format_totals(t: Totals, total: int) -> str:
    counts = ", ".join(f"{n} {s}" for s, n in t.counts.items() if n)
    geo = (f"geometric-mean speedup over {t.timed_passes} passing: {t.geomean_speedup:.2f}x"
           if t.geomean_speedup is not None else "no passing problem to average")
    return f"totals: {total} problem{'s' * (total != 1)}: {counts or 'none run'}; {geo}"


def write_json(path: Path, args: argparse.Namespace, options: dict[str, Any],
               results: list[ProblemResult], planned: int, interrupted: bool) -> None:
    t = totals(results)
    data = {
        "directory": str(args.directory), "options": options, "timeout_s": args.timeout_s,
        "max_memory_mb": args.max_memory_mb, "rounds": args.rounds, "filter": args.filter,
        "planned": planned, "interrupted": interrupted, "cpu_count": os.cpu_count(),
        "results": [r.to_json() for r in results],
        "totals": _json_safe(dataclasses.asdict(t)),
    }
    path.write_text(json.dumps(data, indent=2) + "\n")


def _check_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> list[Path]:
    """Usage errors (exit 2) before anything runs; returns the problem files."""
    directory = Path(args.directory)
    if not directory.is_dir():
        parser.error(f"{directory}: no such directory")
    if args.timeout_s <= 0:
        parser.error("--timeout-s must be positive")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.json and not Path(args.json).resolve().parent.is_dir():
        parser.error(f"--json {args.json}: its folder does not exist")
    if args.max_memory_mb < MIN_MAX_MEMORY_MB:
        parser.error(f"--max-memory-mb must be at least {MIN_MAX_MEMORY_MB} "
                     "(torch, mlirforge and IREE alone need about 1.4 GB of address space)")
    files = problem_files(directory, args.filter)
    if not files:
        what = f" matching --filter '{args.filter}'" if args.filter else ""
        parser.error(f"{directory}: no .py problem files{what}")
    return files


def cmd_bench_problems(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Run every problem in args.directory; print progress, the table and the totals."""
    files = _check_args(args, parser)
    options = parse_options(args.options or [], parser)
    results: list[ProblemResult] = []
    interrupted = False
    print(f"mlirforge: {len(files)} problems in {args.directory}, timeout {args.timeout_s:g} s, "
          f"memory bound {args.max_memory_mb} MB, {args.rounds} rounds", file=sys.stderr)
    failure: BaseException | None = None
    try:
        for i, path in enumerate(files, 1):
            result = run_problem(path, args, options)
            results.append(result)
            print(progress_line(i, len(files), result), file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        interrupted = True
        print(f"mlirforge: interrupted after {len(results)} of {len(files)} problems", file=sys.stderr)
    except Exception as exc:  # a bug in the runner itself, not in a problem: still show what ran
        failure = exc
    try:
        for line in format_table(results):
            print(line)
        print(format_totals(totals(results), len(results)), flush=True)
        if args.json:
            write_json(Path(args.json), args, options, results, len(files), interrupted)
    except Exception as exc:
        failure = failure or exc
    note = load_note(results)
    if note:
        print(note, file=sys.stderr)
    if failure is not None:
        print(f"mlirforge: internal error: {one_line(failure)}", file=sys.stderr)
        return 1
    return 130 if interrupted else 0


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add `bench-problems` to a CLI's subparsers (mlirforge.cli and this module's main)."""
    p = subparsers.add_parser(
        "bench-problems", help="run a folder of KernelBench-format problems through the backend",
        description="Run each KernelBench-format *.py in DIR through torch.compile(backend='mlirforge') "
                    "in its own subprocess; report pass / mismatch / fell-back / error / timeout / skipped, "
                    "max abs error, eager and mlirforge µs, speedup and compile time.")
    p.add_argument("directory", metavar="DIR", help="folder of problem files (class Model, get_inputs, get_init_inputs)")
    p.add_argument("--timeout-s", type=float, default=DEFAULT_TIMEOUT_S, dest="timeout_s",
                   help=f"wall-time bound per problem, seconds (default {DEFAULT_TIMEOUT_S:g})")
    p.add_argument("--max-memory-mb", type=int, default=DEFAULT_MAX_MEMORY_MB, dest="max_memory_mb",
                   help=f"address-space bound per problem (RLIMIT_AS), MB; bigger problems are skipped "
                        f"(default {DEFAULT_MAX_MEMORY_MB}; a trivial problem needs ~1.4 GB)")
    p.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS,
                   help=f"interleaved timing rounds (default {DEFAULT_ROUNDS})")
    p.add_argument("--json", metavar="OUT", help="write all raw results to this JSON file")
    p.add_argument("--filter", metavar="SUBSTRING", help="only problem files whose name contains SUBSTRING")
    p.add_argument("--options", action="append", metavar="KEY=VALUE",
                   help="backend option, repeatable: --options optimize=true --options budget_s=20")
    p.set_defaults(func=cmd_bench_problems)
    return p


def main(argv: list[str] | None = None) -> int:
    """`python -m mlirforge.problems [bench-problems] DIR ...` or the child's `--one FILE ...`."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--one"]:
        return child_main(argv)
    if argv and argv[0] not in ("bench-problems", "-h", "--help"):
        argv.insert(0, "bench-problems")
    parser = argparse.ArgumentParser(prog="python -m mlirforge.problems")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_parser(sub)
    args = parser.parse_args(argv)
    return args.func(args, parser)


if __name__ == "__main__":
    sys.exit(main())
