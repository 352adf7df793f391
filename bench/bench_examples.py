"""Benchmark the example models: eager PyTorch, TorchInductor and mlirforge, side by side.

For each model file in `examples/` (KernelBench format: `Model`, `get_inputs()`,
`get_init_inputs()`), one process builds the model once and runs it through:

  eager                      the model itself, under `torch.no_grad()`
  inductor                   `torch.compile(model)` (TorchInductor, the default backend)
  mlirforge                  `torch.compile(model, backend="mlirforge")`
  mlirforge[local-task]      ... `options={"driver": "local-task"}` (IREE thread pool)
  mlirforge[no-data-tiling]  ... `options={"iree_flags": []}` (no `--iree-opt-data-tiling`)
  mlirforge[torch-form]      ... `options={"form": "torch"}` (IREE's torch input conversion)
  mlirforge[optimize]        ... `options={"optimize": True, "budget_s": 40}` (the verified search)

and records, per system:

  compile    wall time of the first call, which traces and compiles. The on-disk
             caches start cold: MLIRFORGE_CACHE_DIR points at a fresh temporary
             directory for every mlirforge system (the variants would otherwise
             hit modules compiled by an earlier one: the driver is not part of the
             module key), and TORCHINDUCTOR_CACHE_DIR at a fresh one for the run.
  error      max abs error against eager (`mlirforge.numerics.compare_outputs`,
             whose dtype tolerances decide ok / FAIL).
  time/call  `mlirforge.timing.interleaved_times` over all systems of one example
             together (after warm-up, rounds of A,B,C,... with `inner` calls
             each): median, p10 and p90 in microseconds, and speedup over eager
             (eager median / system median).

For the mlirforge systems it also reports what fell back to eager PyTorch: the
change in `mlirforge.stats()` over the first call, the IREE calls one later
call makes, and the `FallbackWarning` messages. The backend warns once per op
per process, so an op is named only by the first system (and example) to hit it.

Finally it measures the per-call overhead on a tiny model (`x + 1` on 4 floats):
eager against mlirforge, median microseconds.

Run from the repository root:

    python bench/bench_examples.py                         # all examples
    python bench/bench_examples.py --examples mlp,cnn --rounds 10
    python bench/bench_examples.py --json out.json --markdown out.md

A table goes to stdout; `--json` writes every raw number (samples included),
`--markdown` tables ready to paste into docs. Torch's thread count is left at
its default. At the default settings (20 rounds of 5 calls) the run is
dominated by compilation and takes a few minutes on a 2-core machine.
The tables are `bench/examples_report.py`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

import torch  # noqa: E402
from machine import machine_info  # noqa: E402
from mlirforge.benchmarking import (  # noqa: E402
    first_call_against_eager,
    iree_calls_of,
    observe_first_call,
    ran_in,
)
from mlirforge.kernelbench import load_model_file  # noqa: E402
from mlirforge.llm_rewrite.types import json_safe  # noqa: E402
from mlirforge.timing import interleaved_times  # noqa: E402
from output import emit  # noqa: E402
from systems import (  # noqa: E402
    SystemResult,
    SystemSpec,
    Timing,
    build_callable,
    fresh_mlirforge_cache,
    summarize,
)
from workloads import AddOne  # noqa: E402

EXAMPLES_DIR = BENCH_DIR.parent / "examples"
DEFAULT_EXAMPLES = ("mlp", "cnn", "transformer_block", "unsupported_op")


SYSTEMS: tuple[SystemSpec, ...] = (
    SystemSpec("eager", None),
    SystemSpec("inductor", "inductor"),
    # The default must stay the first mlirforge system: fallback warnings are
    # issued once per op per process, so it is the one that sees them.
    SystemSpec("mlirforge", "mlirforge"),
    SystemSpec("mlirforge[local-task]", "mlirforge", {"driver": "local-task"}),
    SystemSpec("mlirforge[no-data-tiling]", "mlirforge", {"iree_flags": []}),
    SystemSpec("mlirforge[torch-form]", "mlirforge", {"form": "torch"}),
    # The verified search with the offline heuristic proposer; its compile time
    # is the search budget. Fresh cache: nothing is reused from earlier runs.
    SystemSpec("mlirforge[optimize]", "mlirforge", {"optimize": True, "budget_s": 40}),
)
EAGER = SYSTEMS[0]


@dataclasses.dataclass
class ExampleSystemResult(SystemResult):
    """One system on one example: `SystemResult` plus where it ran and what fell back."""

    iree_calls_per_call: int | None = None
    fallback_warnings: list[str] = dataclasses.field(default_factory=list)
    compiler_errors: list[str] = dataclasses.field(default_factory=list)  # from reproducers
    ran_as: str | None = None  # eager | inductor | IREE | IREE+eager | eager (fallback)


@dataclasses.dataclass
class ExampleResult:
    name: str
    path: str
    input_shapes: list[list[int]]
    systems: list[ExampleSystemResult]


@dataclasses.dataclass
class OverheadResult:
    """Per-call cost on a model that does almost nothing."""

    description: str
    eager: Timing
    mlirforge: Timing
    mlirforge_compile_s: float


# --------------------------------------------------------------------------- setup


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--examples",
        default=",".join(DEFAULT_EXAMPLES),
        help="comma-separated example names from examples/ (default: %(default)s)",
    )
    parser.add_argument("--rounds", type=int, default=20, help="timing rounds (default 20)")
    parser.add_argument(
        "--inner", type=int, default=5, help="calls per round and system (default %(default)s)"
    )
    parser.add_argument(
        "--warmup", type=int, default=3, help="untimed calls per system first (default %(default)s)"
    )
    parser.add_argument(
        "--overhead-inner",
        type=int,
        default=100,
        help="calls per round for the tiny model (default %(default)s)",
    )
    parser.add_argument("--json", type=Path, help="write all raw numbers to this JSON file")
    parser.add_argument("--markdown", type=Path, help="write Markdown tables to this file")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.inner < 1 or args.warmup < 0 or args.overhead_inner < 1:
        parser.error("--rounds, --inner and --overhead-inner must be >= 1, --warmup >= 0")
    args.examples = [e.strip() for e in args.examples.split(",") if e.strip()]
    unknown = [e for e in args.examples if not (EXAMPLES_DIR / f"{e}.py").is_file()]
    if unknown:
        available = sorted(p.stem for p in EXAMPLES_DIR.glob("*.py"))
        parser.error(f"unknown example(s) {unknown}; available: {', '.join(available)}")
    return args


def use_cold_caches(root: Path) -> None:
    """Point the compilers' on-disk caches at empty directories under `root`."""
    os.environ["MLIRFORGE_CACHE_DIR"] = str(root / "mlirforge-initial")
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(root / "inductor")


def ran_as(spec: SystemSpec, stats_delta: dict[str, float] | None) -> str:
    """Where a system's computation ran, judged from mlirforge's counters."""
    if spec.backend is None:
        return "eager"
    if not spec.is_mlirforge:
        return spec.backend
    return "?" if stats_delta is None else ran_in(stats_delta)


def compiler_errors(cache_dir: Path) -> list[str]:
    """The first `error:` line of each failure reproducer mlirforge left in `cache_dir`."""
    errors = []
    for diagnostics in sorted(cache_dir.glob("reproducers/*/diagnostics.txt")):
        lines = diagnostics.read_text(errors="replace").splitlines()
        first = next((line for line in lines if "error:" in line), lines[0] if lines else "")
        stage = "-".join(diagnostics.parent.name.split("-")[2:-1])  # <date>-<time>-<stage>-<random>
        errors.append(f"{stage}: {first.strip()}")
    return errors


def time_systems(
    fns: Sequence[Callable], inputs: list, rounds: int, inner: int, warmup: int, eager_first: bool = True
) -> list[Timing]:
    """Interleaved timing of all callables on the same inputs; speedups against the first (eager)."""
    calls = [lambda fn=fn: fn(*inputs) for fn in fns]
    samples = interleaved_times(calls, rounds=rounds, inner=inner, warmup=warmup)
    return [summarize(s, samples[0] if eager_first else None) for s in samples]


def run_example(name: str, args: argparse.Namespace, cache_root: Path) -> ExampleResult:
    """Compile, check and time one example under every system."""
    path = EXAMPLES_DIR / f"{name}.py"
    problem = load_model_file(path)
    model, inputs = problem.model, problem.inputs
    torch._dynamo.reset()  # a clean slate per example; earlier examples are done
    results: list[ExampleSystemResult] = []
    runnable: list[tuple[ExampleSystemResult, Callable]] = []
    with torch.no_grad():
        for spec in SYSTEMS:
            print(f"  {name}: {spec.name} ...", file=sys.stderr, flush=True)
            result = ExampleSystemResult(spec.name, spec.options)
            results.append(result)
            cache_dir = None
            if spec.is_mlirforge:
                cache_dir = fresh_mlirforge_cache(cache_root, f"{name}-{spec.name}")
            fn = build_callable(spec, model)
            seen = first_call_against_eager(fn, model, inputs)
            succeeded = result.record_first_call(seen, spec.is_mlirforge)
            if cache_dir is not None:
                result.compiler_errors = compiler_errors(cache_dir)
            if not succeeded:
                continue
            result.ran_as = ran_as(spec, result.stats_delta)
            if spec.is_mlirforge:
                result.fallback_warnings = seen.fallback_warnings
                result.iree_calls_per_call = iree_calls_of(lambda fn=fn: fn(*inputs))
            runnable.append((result, fn))
        eager_first = bool(runnable) and runnable[0][0].name == EAGER.name
        timings = time_systems([fn for _, fn in runnable], inputs, args.rounds, args.inner, args.warmup,
                               eager_first)
    for (result, _), timing in zip(runnable, timings):
        result.timing = timing
    shapes = [list(t.shape) for t in inputs if isinstance(t, torch.Tensor)]
    return ExampleResult(name, str(path.relative_to(EXAMPLES_DIR.parent)), shapes, results)


def measure_overhead(args: argparse.Namespace, cache_root: Path) -> OverheadResult:
    """Per-call time of eager vs mlirforge on `x + 1` over 4 floats."""
    torch._dynamo.reset()
    model, x = AddOne().eval(), torch.randn(4)
    fresh_mlirforge_cache(cache_root, "overhead")
    compiled = torch.compile(model, backend="mlirforge")
    with torch.no_grad():
        seen = observe_first_call(lambda: compiled(x))
        if seen.error is not None:
            raise seen.error
        eager_t, ours_t = time_systems(
            [model, compiled], [x], args.rounds, args.overhead_inner, args.warmup
        )
    return OverheadResult("y = x + 1, x: float32[4]", eager_t, ours_t, seen.compile_s)


# --------------------------------------------------------------------------- main


def settings_of(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "examples": args.examples,
        "systems": [dataclasses.asdict(spec) for spec in SYSTEMS],
        "rounds": args.rounds,
        "inner": args.inner,
        "warmup": args.warmup,
        "overhead_inner": args.overhead_inner,
        "caches": "cold: fresh MLIRFORGE_CACHE_DIR per mlirforge system, "
        "fresh TORCHINDUCTOR_CACHE_DIR per run",
    }


def main(argv: Sequence[str] | None = None) -> int:
    from examples_report import render_markdown, render_text

    args = parse_args(argv)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="mlirforge-bench-") as tmp:
        cache_root = Path(tmp)
        use_cold_caches(cache_root)
        machine = machine_info()
        examples = [run_example(name, args, cache_root) for name in args.examples]
        print("  overhead ...", file=sys.stderr, flush=True)
        overhead = measure_overhead(args, cache_root)
    report = {
        "machine": machine,
        "settings": settings_of(args),
        "examples": [dataclasses.asdict(e) for e in examples],
        "overhead": dataclasses.asdict(overhead),
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    emit(report, (examples, overhead), args,
         lambda rep, res: render_text(rep, *res),
         lambda rep, res: json.dumps(json_safe(rep), indent=2, allow_nan=False) + "\n",
         lambda rep, res: render_markdown(rep, *res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
