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
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import json
import os
import platform
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

import mlirforge
from mlirforge.backend import FallbackWarning
from mlirforge.llm_rewrite.types import json_safe
from mlirforge.kernelbench import load_model_file
from mlirforge.lowering.target import host_cpu
from mlirforge.lowering.versions import tool_versions
from mlirforge.numerics import changed_inputs, clone_tree, compare_outputs
from mlirforge.timing import interleaved_times, spread_us

EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"
DEFAULT_EXAMPLES = ("mlp", "cnn", "transformer_block", "unsupported_op")


@dataclasses.dataclass(frozen=True)
class SystemSpec:
    """One way of running a model: eager, or a torch.compile backend with options."""

    name: str
    backend: str | None  # None: eager
    options: dict[str, Any] | None = None

    @property
    def is_mlirforge(self) -> bool:
        return self.backend == "mlirforge"


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
class Timing:
    """Seconds-per-call samples of one system, summarised in microseconds."""

    samples_us: list[float]
    median_us: float
    p10_us: float
    p90_us: float
    speedup_vs_eager: float | None = None


@dataclasses.dataclass
class SystemResult:
    name: str
    options: dict[str, Any] | None
    compile_s: float | None = None
    ok: bool | None = None
    max_abs_error: float | None = None
    check_message: str | None = None
    error: str | None = None  # the first call raised: no timing
    timing: Timing | None = None
    stats_delta: dict[str, float] | None = None  # mlirforge.stats() change over the first call
    iree_calls_per_call: int | None = None
    fallback_warnings: list[str] = dataclasses.field(default_factory=list)
    compiler_errors: list[str] = dataclasses.field(default_factory=list)  # from reproducers
    ran_as: str | None = None  # eager | inductor | IREE | IREE+eager | eager (fallback)


@dataclasses.dataclass
class ExampleResult:
    name: str
    path: str
    input_shapes: list[list[int]]
    systems: list[SystemResult]


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


def fresh_mlirforge_cache(root: Path, label: str) -> Path:
    """Give the next mlirforge compilation an empty cache directory; returns it."""
    safe = "".join(c if c.isalnum() else "-" for c in label)
    path = Path(tempfile.mkdtemp(prefix=f"{safe}-", dir=root))
    os.environ["MLIRFORGE_CACHE_DIR"] = str(path)
    return path


def machine_info() -> dict[str, Any]:
    cpu = host_cpu().describe()
    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": cpu["model_name"],
        "arch": cpu["arch"],
        "cores": cpu["cores"],
        "vector_bits": cpu["vector_bits"],
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": tool_versions(),
    }


# --------------------------------------------------------------------------- measuring


def build_callable(spec: SystemSpec, model: torch.nn.Module) -> Callable:
    """The model itself, or a fresh torch.compile wrapper of it for `spec`."""
    if spec.backend is None:
        return model
    if spec.backend == "inductor":
        return torch.compile(model)
    return torch.compile(model, backend=spec.backend, options=spec.options or None)


def stats_snapshot() -> dict[str, float]:
    return dataclasses.asdict(mlirforge.stats())


def stats_difference(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    return {k: round(after[k] - before[k], 3) for k in after}


def summarize(samples_s: Sequence[float]) -> Timing:
    """Median and p10/p90 of per-call seconds, in microseconds."""
    median, p10, p90 = spread_us(samples_s)
    return Timing(samples_us=[s * 1e6 for s in samples_s], median_us=median, p10_us=p10, p90_us=p90)


def first_call(
    spec: SystemSpec, fn: Callable, inputs: list, expected: Any, result: SystemResult
) -> bool:
    """Call `fn` once (compiling it), timing it and checking it against eager.

    Fills `result`; returns False if the call raised.
    """
    before = stats_snapshot()
    untouched = clone_tree(inputs)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        start = time.perf_counter()
        try:
            actual = fn(*inputs)
        except Exception as exc:  # a broken system must not stop the others
            result.error = f"{type(exc).__name__}: {exc}".splitlines()[0]
            traceback.print_exc(file=sys.stderr)
            return False
        finally:
            result.compile_s = time.perf_counter() - start
    result.ok, result.max_abs_error, result.check_message = compare_outputs(actual, expected)
    if changed_inputs(inputs, untouched):
        result.ok, result.check_message = False, f"modified input(s) {changed_inputs(inputs, untouched)}"
    if spec.is_mlirforge:
        result.stats_delta = stats_difference(before, stats_snapshot())
        result.fallback_warnings = [
            str(w.message) for w in caught if issubclass(w.category, FallbackWarning)
        ]
    return True


def ran_as(spec: SystemSpec, stats_delta: dict[str, float] | None) -> str:
    """Where a system's computation ran, judged from mlirforge's counters."""
    if spec.backend is None:
        return "eager"
    if not spec.is_mlirforge:
        return spec.backend
    if stats_delta is None:
        return "?"
    if stats_delta["graphs_compiled"] == 0:
        return "eager (fallback)"
    if stats_delta["partitions_compiled"] or stats_delta["eager_graphs"]:
        return "IREE+eager"
    return "IREE"


def compiler_errors(cache_dir: Path) -> list[str]:
    """The first `error:` line of each failure reproducer mlirforge left in `cache_dir`."""
    errors = []
    for diagnostics in sorted(cache_dir.glob("reproducers/*/diagnostics.txt")):
        lines = diagnostics.read_text(errors="replace").splitlines()
        first = next((line for line in lines if "error:" in line), lines[0] if lines else "")
        stage = "-".join(diagnostics.parent.name.split("-")[2:-1])  # <date>-<time>-<stage>-<random>
        errors.append(f"{stage}: {first.strip()}")
    return errors


def count_iree_calls(fn: Callable, inputs: list) -> int:
    """IREE invocations made by one call of an already-compiled model."""
    before = mlirforge.stats().iree_calls
    fn(*inputs)
    return mlirforge.stats().iree_calls - before


def time_systems(
    fns: Sequence[Callable], inputs: list, rounds: int, inner: int, warmup: int
) -> list[Timing]:
    """Interleaved timing of all callables on the same inputs."""
    calls = [lambda fn=fn: fn(*inputs) for fn in fns]
    samples = interleaved_times(calls, rounds=rounds, inner=inner, warmup=warmup)
    return [summarize(s) for s in samples]


def run_example(name: str, args: argparse.Namespace, cache_root: Path) -> ExampleResult:
    """Compile, check and time one example under every system."""
    path = EXAMPLES_DIR / f"{name}.py"
    problem = load_model_file(path)
    model, inputs = problem.model, problem.inputs
    torch._dynamo.reset()  # a clean slate per example; earlier examples are done
    results: list[SystemResult] = []
    runnable: list[tuple[SystemResult, Callable]] = []
    with torch.no_grad():
        expected = model(*inputs)
        for spec in SYSTEMS:
            print(f"  {name}: {spec.name} ...", file=sys.stderr, flush=True)
            result = SystemResult(spec.name, spec.options)
            results.append(result)
            cache_dir = None
            if spec.is_mlirforge:
                cache_dir = fresh_mlirforge_cache(cache_root, f"{name}-{spec.name}")
            fn = build_callable(spec, model)
            succeeded = first_call(spec, fn, inputs, expected, result)
            if cache_dir is not None:
                result.compiler_errors = compiler_errors(cache_dir)
            if not succeeded:
                continue
            result.ran_as = ran_as(spec, result.stats_delta)
            if spec.is_mlirforge:
                result.iree_calls_per_call = count_iree_calls(fn, inputs)
            runnable.append((result, fn))
        fns = [fn for _, fn in runnable]
        timings = time_systems(fns, inputs, args.rounds, args.inner, args.warmup)
    for (result, _), timing in zip(runnable, timings):
        result.timing = timing
    add_speedups(results)
    shapes = [list(t.shape) for t in inputs if isinstance(t, torch.Tensor)]
    return ExampleResult(name, str(path.relative_to(EXAMPLES_DIR.parent)), shapes, results)


def add_speedups(results: Sequence[SystemResult]) -> None:
    eager = next((r for r in results if r.name == EAGER.name and r.timing), None)
    if eager is None:
        return
    for r in results:
        if r.timing is not None:
            r.timing.speedup_vs_eager = eager.timing.median_us / r.timing.median_us


class AddOne(torch.nn.Module):
    """The tiny model of the overhead measurement."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 1


def measure_overhead(args: argparse.Namespace, cache_root: Path) -> OverheadResult:
    """Per-call time of eager vs mlirforge on `x + 1` over 4 floats."""
    torch._dynamo.reset()
    model, x = AddOne().eval(), torch.randn(4)
    fresh_mlirforge_cache(cache_root, "overhead")
    compiled = torch.compile(model, backend="mlirforge")
    with torch.no_grad():
        start = time.perf_counter()
        compiled(x)
        compile_s = time.perf_counter() - start
        eager_t, ours_t = time_systems(
            [model, compiled], [x], args.rounds, args.overhead_inner, args.warmup
        )
    eager_t.speedup_vs_eager = 1.0
    ours_t.speedup_vs_eager = eager_t.median_us / ours_t.median_us
    return OverheadResult("y = x + 1, x: float32[4]", eager_t, ours_t, compile_s)


# --------------------------------------------------------------------------- reporting

LEFT_COLUMNS = frozenset({0, 1})  # name-like columns; numbers are right-aligned
EXAMPLE_HEADERS = [
    "system", "ran as", "compile s", "check", "max abs err", "median us", "p10-p90 us", "x eager"
]
OVERHEAD_HEADERS = ["system", "compile s", "median us", "p10-p90 us"]


def fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def spread(t: Timing | None) -> str:
    return "-" if t is None else f"{t.p10_us:.1f}-{t.p90_us:.1f}"


def example_rows(example: ExampleResult) -> list[list[str]]:
    rows = []
    for r in example.systems:
        t = r.timing
        rows.append([
            r.name,
            r.ran_as or "-",
            fmt(r.compile_s, ".2f"),
            "ERROR" if r.error else ("ok" if r.ok else "FAIL"),
            fmt(r.max_abs_error, ".2e"),
            fmt(t and t.median_us, ".1f"),
            spread(t),
            fmt(t and t.speedup_vs_eager, ".2f"),
        ])
    return rows


def overhead_rows(o: OverheadResult) -> list[list[str]]:
    return [
        ["eager", "-", f"{o.eager.median_us:.1f}", spread(o.eager)],
        [
            "mlirforge",
            f"{o.mlirforge_compile_s:.2f}",
            f"{o.mlirforge.median_us:.1f}",
            spread(o.mlirforge),
        ],
    ]


def fallback_lines(example: ExampleResult) -> list[str]:
    """Per mlirforge system, what ran where; indented lines under it give the messages."""
    lines = []
    for r in example.systems:
        if r.error:
            lines.append(f"{r.name}: the first call raised {r.error}")
        elif r.stats_delta is not None:
            d = r.stats_delta
            lines.append(
                f"{r.name}: graphs compiled {d['graphs_compiled']:g}, "
                f"partitions {d['partitions_compiled']:g}, eager graphs {d['eager_graphs']:g}, "
                f"module cache hits {d['module_cache_hits']:g}, "
                f"IREE calls per call {r.iree_calls_per_call}"
            )
        lines.extend(f"    warning: {m}" for m in r.fallback_warnings)
        lines.extend(f"    reproducer from stage {e}" for e in r.compiler_errors)
    return lines


def text_table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], left: frozenset[int] = LEFT_COLUMNS
) -> str:
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        padded = zip(cells, widths)
        return "  ".join(c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(padded))

    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)])


def markdown_table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], left: frozenset[int] = LEFT_COLUMNS
) -> str:
    aligns = ["---" if i in left else "---:" for i in range(len(headers))]
    out = ["| " + " | ".join(headers) + " |", "|" + "|".join(aligns) + "|"]
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(out)


def code_span(text: str) -> str:
    """`text` as Markdown code, so compiler messages (`<{...}>`, `*`) show verbatim."""
    fence = "``" if "`" in text else "`"
    return f"{fence} {text} {fence}" if fence == "``" else f"`{text}`"


def cpu_text(machine: dict[str, Any]) -> str:
    return (
        f"{machine['cpu']} ({machine['arch']}, {machine['cores']} cores, "
        f"{machine['vector_bits']}-bit vectors), torch threads {machine['torch_threads']}"
    )


def versions_text(machine: dict[str, Any]) -> str:
    v = machine["versions"]
    return (
        f"torch {v['torch']}, torch-mlir {v['torch-mlir']}, "
        f"iree-base-compiler {v['iree-base-compiler']}, "
        f"iree-base-runtime {v['iree-base-runtime']}, "
        f"mlirforge {v['mlirforge']}, Python {machine['python']}"
    )


def timing_text(settings: dict[str, Any]) -> str:
    return (
        f"{settings['rounds']} interleaved rounds x {settings['inner']} calls after "
        f"{settings['warmup']} warm-up calls; compile = first call, cold on-disk caches; "
        "x eager = eager median / system median"
    )


def example_title(ex: ExampleResult) -> str:
    shapes = ", ".join("x".join(map(str, s)) for s in ex.input_shapes)
    return f"{ex.name} ({ex.path}, inputs {shapes})"


def overhead_title(o: OverheadResult, settings: dict[str, Any]) -> str:
    return f"per-call overhead: {o.description}, {settings['overhead_inner']} calls per round"


def overhead_note(o: OverheadResult) -> str:
    return f"mlirforge - eager: {o.mlirforge.median_us - o.eager.median_us:.1f} us per call"


def render_text(
    report: dict[str, Any], examples: list[ExampleResult], overhead: OverheadResult
) -> str:
    machine, settings = report["machine"], report["settings"]
    parts = [
        "\n".join([
            f"date      {machine['date']}",
            f"cpu       {cpu_text(machine)}",
            f"versions  {versions_text(machine)}",
            f"timing    {timing_text(settings)}",
        ])
    ]
    for ex in examples:
        parts.append(f"== {example_title(ex)}\n" + text_table(EXAMPLE_HEADERS, example_rows(ex)))
        parts.append("\n".join(fallback_lines(ex)))
    table = text_table(OVERHEAD_HEADERS, overhead_rows(overhead), left=frozenset({0}))
    parts.append(f"== {overhead_title(overhead, settings)}\n{table}\n{overhead_note(overhead)}")
    return "\n\n".join(p for p in parts if p) + "\n"


def render_markdown(
    report: dict[str, Any], examples: list[ExampleResult], overhead: OverheadResult
) -> str:
    machine, settings = report["machine"], report["settings"]
    out = [
        "## Benchmark: examples/ under eager, TorchInductor and mlirforge",
        "",
        f"- Date: {machine['date']}",
        f"- CPU: {cpu_text(machine)}",
        f"- Versions: {versions_text(machine)}",
        f"- Timing: `mlirforge.timing.interleaved_times`, {timing_text(settings)}",
    ]
    for ex in examples:
        table = markdown_table(EXAMPLE_HEADERS, example_rows(ex))
        out += ["", f"### {example_title(ex)}", "", table]
        notes = fallback_lines(ex)
        if notes:
            out.append("")
            out += [f"  - {code_span(n.strip())}" if n.startswith(" ") else f"- {n}" for n in notes]
    out += [
        "",
        f"### {overhead_title(overhead, settings).capitalize()}",
        "",
        markdown_table(OVERHEAD_HEADERS, overhead_rows(overhead), left=frozenset({0})),
        "",
        overhead_note(overhead),
    ]
    return "\n".join(out) + "\n"


def write_outputs(
    args: argparse.Namespace,
    report: dict[str, Any],
    examples: list[ExampleResult],
    overhead: OverheadResult,
) -> None:
    """The --json and --markdown files, where asked for."""
    if args.json:
        args.json.write_text(json.dumps(json_safe(report), indent=2, allow_nan=False) + "\n")
        print(f"wrote {args.json}", file=sys.stderr)
    if args.markdown:
        args.markdown.write_text(render_markdown(report, examples, overhead))
        print(f"wrote {args.markdown}", file=sys.stderr)


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
    print(render_text(report, examples, overhead), end="")
    print(f"total {report['total_seconds']:.0f} s", file=sys.stderr)
    write_outputs(args, report, examples, overhead)
    return 0


if __name__ == "__main__":
    sys.exit(main())
