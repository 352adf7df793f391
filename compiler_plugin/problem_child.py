"""One problem, inside its own child process: estimate, build, compile, compare with eager, time.

`python -m mlirforge.problems --one FILE ...` lands in `child_main`, which
bounds its own address space (RLIMIT_AS) before torch is imported, then
prints one `MLIRFORGE_PROBLEM_RESULT {json}` line on stdout and
`mlirforge-problems: phase NAME` lines on stderr as it goes (the parent,
`mlirforge.problem_runner`, reports a timeout or a crash with the last one).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
import warnings
from pathlib import Path
from typing import Any

from mlirforge.benchmarking import (
    AgainstEager,
    FirstCall,
    first_call_against_eager,
    iree_calls_of,
    one_line,
    time_against_eager,
)
from mlirforge.problem_results import ProblemResult
from mlirforge.problem_size import (
    DEFAULT_MAX_MEMORY_MB,
    MIB,
    available_ram_mb,
    estimate_size,
    skip_reason,
)

DEFAULT_ROUNDS = 20
RESULT_MARKER = "MLIRFORGE_PROBLEM_RESULT "
PHASE_MARKER = "mlirforge-problems: phase "
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


def classify(result: ProblemResult, ok: bool, message: str, other_fallbacks: list[str]) -> None:
    """Set status/reason from the comparison and what ran eagerly (mismatch wins).

    `other_fallbacks`: the FallbackWarnings that name no op (a whole graph, a failed compile).
    """
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
    eager_parts += [w.removeprefix("mlirforge: ") for w in other_fallbacks]
    if eager_parts:
        result.status, result.reason = "fell-back", "; ".join(eager_parts)
    else:
        result.status, result.reason = "pass", ""


def _record_first_call(seen: FirstCall, result: ProblemResult) -> None:
    result.compile_s = seen.compile_s
    if seen.error is None:  # what fell back is only known of a call that finished
        result.stats_delta = seen.stats_delta
        result.fallback_warnings = seen.fallback_warnings
        result.fallback_ops = seen.fallback_ops
        result.graph_breaks = seen.graph_breaks


def _record_timing(timing: AgainstEager, result: ProblemResult) -> None:
    result.eager_us, result.mlirforge_us, result.speedup = timing.eager_us, timing.compiled_us, timing.speedup
    result.timing = {"rounds": timing.rounds, "inner": timing.inner,
                     "eager_samples_us": [s * 1e6 for s in timing.eager_s],
                     "mlirforge_samples_us": [s * 1e6 for s in timing.compiled_s]}


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
            return compiled(*args)

        compiled = torch.compile(model, backend="mlirforge", options=options or None)
        try:
            # Eager on copies, the compiled model on the inputs: outputs and inputs are compared.
            seen = first_call_against_eager(first_call, eager, inputs)
        except Exception as exc:
            what = "eager forward failed" if eager_failed else "compile failed"
            result.reason = _failure(what, eager_failed[0] if eager_failed else one_line(exc), max_memory_mb)
            return result
        _record_first_call(seen, result)
        if seen.error is not None:
            result.reason = _failure("compile failed", one_line(seen.error), max_memory_mb)
            return result
        result.max_abs_error = seen.check.max_abs_error
        _phase("time")
        try:
            # A later call that runs no IREE module is a fallback too: count before classifying.
            result.iree_calls_per_call = iree_calls_of(lambda: compiled(*inputs))
            classify(result, seen.check.ok, seen.check.message, seen.other_fallbacks)
            _record_timing(time_against_eager(lambda: model(*inputs), lambda: compiled(*inputs), rounds), result)
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
