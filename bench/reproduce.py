"""Reproduce docs/benchmarks.md: the suite, the search-efficiency bench and the plots, in one command.

    python bench/reproduce.py                  # writes docs/bench_suite.json, docs/search_efficiency.json,
                                               # docs/img/*.png and docs/benchmarks.md (~20 min on 2 cores)
    python bench/reproduce.py --quick          # smoke test (~3 min): 2 workloads, 1 kernel, tiny budgets,
                                               # into a fresh temporary directory unless --out-dir is given
    python bench/reproduce.py --transcript t.jsonl   # adds the replayed LLM search (budget 20 s, ~28 min)

Steps (each prints progress to stderr):
  1. bench/bench_suite.py --json OUT/bench_suite.json
  2. bench/bench_search_efficiency.py --json OUT/search_efficiency.json
  3. bench/plots.py -> OUT/img/suite_speedup.png, OUT/img/search_efficiency.png
  4. OUT/benchmarks.md: machine, versions, method, command, date, tables, plots

Run it on an otherwise idle machine: every timing is interleaved, so a busy
neighbour slows all systems of a workload alike, but OpenMP-parallel systems
(eager PyTorch, Inductor) suffer most; the suite records the share of CPU
other processes took during each workload.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

import bench_search_efficiency as E  # noqa: E402
import bench_suite as S  # noqa: E402
from machine import versions_text  # noqa: E402
from output import fmt_duration  # noqa: E402
from suite_runner import estimate_seconds  # noqa: E402

LIMIT_S = 30 * 60


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--quick", action="store_true", help="smoke test: smallest settings, temp output directory"
    )
    p.add_argument(
        "--out-dir",
        type=Path,
        help="where the JSON, img/ and benchmarks.md go (default docs/; a temp dir with --quick)",
    )
    p.add_argument(
        "--transcript",
        type=Path,
        help="LLM transcript: adds the replayed LLM search to both benches",
    )
    p.add_argument(
        "--budget-s", type=float, help="suite search budget per workload (bench_suite's default)"
    )
    p.add_argument("--rounds", type=int, help="suite timing rounds (bench_suite's default)")
    p.add_argument(
        "--fma-units", type=int, help="vector FMA units per core for the fp32 peak (default 2)"
    )
    args = p.parse_args(argv)
    if args.out_dir is None:
        args.out_dir = (
            Path(tempfile.mkdtemp(prefix="mlirforge-bench-quick-")) if args.quick else REPO / "docs"
        )
    if args.transcript and not args.transcript.is_file():
        p.error(f"--transcript: no such file {args.transcript}")
    return args


def _bench_argv(script: str, args: argparse.Namespace, json_path: Path, md_path: Path) -> list[str]:
    argv = [sys.executable, str(BENCH_DIR / script), "--json", str(json_path), "--markdown", str(md_path)]
    return argv + ["--quick"] if args.quick else argv


def suite_argv(args: argparse.Namespace, json_path: Path, md_path: Path) -> list[str]:
    argv = _bench_argv("bench_suite.py", args, json_path, md_path)
    for flag, value in (
        ("--transcript", args.transcript),
        ("--budget-s", args.budget_s),
        ("--rounds", args.rounds),
        ("--fma-units", args.fma_units),
    ):
        if value is not None:
            argv += [flag, str(value)]
    return argv


def efficiency_argv(args: argparse.Namespace, json_path: Path, md_path: Path) -> list[str]:
    argv = _bench_argv("bench_search_efficiency.py", args, json_path, md_path)
    if args.transcript:
        # Two searches per kernel: a smaller sweep keeps the whole run within 30 minutes.
        argv += ["--transcript", str(args.transcript)]
        if not args.quick:
            argv += ["--sweep-cap", "32"]
    return argv


def estimates(args: argparse.Namespace) -> tuple[float, float]:
    suite = S.parse_args(suite_argv(args, Path("x"), Path("y"))[2:])
    eff = E.parse_args(efficiency_argv(args, Path("x"), Path("y"))[2:])
    return (
        estimate_seconds(suite.workloads, suite.budget_s, suite.transcript, suite.quick),
        E.estimate_seconds(eff),
    )


def run_step(label: str, argv: list[str], log: Path) -> tuple[int, float]:
    """Run one bench; its tables (stdout) go to `log` and the console, progress passes through."""
    print(f"== {label}: {shlex.join(argv[1:])}", file=sys.stderr, flush=True)
    start = time.perf_counter()
    with log.open("w") as out:
        proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, text=True)
        for line in proc.stdout:
            out.write(line)
            sys.stdout.write(line)
        rc = proc.wait()
    seconds = time.perf_counter() - start
    print(
        f"== {label}: exit {rc} after {fmt_duration(seconds)}; table in {log}",
        file=sys.stderr,
        flush=True,
    )
    return rc, seconds


def machine_section(suite: dict) -> list[str]:
    m = suite["machine"]
    c, v = m["cpu"], m["versions"]
    zen = c.get("cpu_family") in ("25", "26") and c["isa"] == "avx512f"
    lines = [
        "## Machine and versions",
        "",
        (
            f"- CPU: {c['model_name']} (x86 family {c['cpu_family']}, model {c['cpu_model']}), "
            f"{c['cores']} cores / {c['logical_cpus']} logical CPUs, clock {c['clock_mhz']:.0f} MHz "
            f"(from {c['clock_source']})"
        ),
        f"- ISA features: {', '.join(c['features'])}",
        f"- Memory: {m['memory_gib']:.1f} GiB; torch threads: {m['torch_threads']}; {m['platform']}",
        (
            f"- fp32 peak: {c['formula']}. Cores are distinct (physical id, core id) pairs in /proc/cpuinfo; "
            f"lanes are 512/32 = 16 with avx512f (8 with avx2); FMA units per core: {c['fma_source']} "
            "(`--fma-units` overrides)."
        ),
    ]
    if zen and c["fma_units"] == 2:
        lines.append(
            "  Caveat: AMD Zen 4 cores (family 25 with AVX-512) have two 256-bit FMA pipes and run a 512-bit FMA as "
            "two halves, i.e. 32 fp32 flops per cycle per core, half of what the 2 x 16-lane assumption "
            'gives; on the other hand, under KVM "cpu MHz" is the nominal clock and boost clocks are '
            "higher. The peak above is therefore an upper bound at the nominal clock, and '% fp32 peak' "
            "is conservative (`--fma-units 1` gives the other bound)."
        )
    best = best_matmul(suite)
    if best:
        gflops, system, workload = best
        lines.append(
            f"  Sanity check: the fastest fp32 matmul measured in this run, {system} on {workload}, "
            f"ran at {gflops:.1f} GFLOP/s, {100 * gflops / c['peak_gflops']:.0f}% of this peak."
        )
    lines.append(f"- Versions: {versions_text(v)}")
    return lines


def best_matmul(suite: dict) -> tuple[float, str, str] | None:
    rates = [
        (r["timing"]["gflops"], r["name"], w["name"])
        for w in suite["workloads"]
        if w.get("is_matmul")
        for r in w["systems"]
        if r.get("timing") and isinstance(r["timing"].get("gflops"), int | float)
    ]
    return max(rates, default=None)


METHOD = """\
## Method

- **One process per workload** (`bench/bench_suite.py` starts a fresh Python for each), all systems
  built from the same seeded model and inputs, then timed **interleaved** with
  `mlirforge.timing.interleaved_times`: after warm-up calls, rounds of A,B,C,... (the order rotating each
  round, so no system always runs right after the same one) with the same number
  of calls per sample for every system (chosen so one eager sample lasts ~5 ms, capped so that no
  system's sample lasts more than ~10x that). Reported: median, p10-p90 of the per-call samples.
- **x eager** = eager median / system median. The **95% CI** is a paired bootstrap over rounds
  (2000 resamples of round indices; round *i* of eager and of the system were measured back to back,
  so they are resampled together), the same scheme the search uses to accept a rewrite.
- **Compile s** = wall time of the first call (tracing, lowering, compiling; for the optimize
  systems also the whole verified search, which may overshoot its budget by the evaluation under
  way plus composition and the end-to-end A/B). Caches are cold: a fresh `MLIRFORGE_CACHE_DIR` per
  mlirforge system, a fresh `TORCHINDUCTOR_CACHE_DIR` per workload; iree-turbine keeps none.
- **Peak MiB (proc+children)**: the rise of the process's peak RSS over compile + first call, exact:
  `VmHWM` is reset through `/proc/self/clear_refs` right before the call and read right after;
  plus the peak summed RSS of the child processes started meanwhile (iree-compile, the search's
  sandboxed workers, Inductor's compile-worker pool), sampled every 10 ms; children alive before
  (the pool an earlier Inductor compile left) are not counted. Every backend's modules are imported before any
  measurement, so import costs are charged to nobody; memory the allocator freed earlier in the
  process can be reused without raising the peak, so later systems may read a little low.
- **Check**: the first call's output against eager (`mlirforge.numerics.compare_outputs`, dtype
  tolerances scaled by the output's magnitude), and the inputs bitwise unchanged by the call.
- **GFLOP/s** for workloads with a defined flop count (2 x multiply-adds); for matmuls also the
  fraction of the fp32 peak derived above.
- **Systems**: `eager` (`torch.no_grad()`), `inductor` (`torch.compile(m)`), `turbine_cpu`
  (`torch.compile(m, backend="turbine_cpu")`: iree-turbine registers it as a `torch_dynamo_backends`
  entry point; it compiles with IREE's llvm-cpu target and runs on IREE's multi-threaded
  `local-task` driver), `mlirforge` (the defaults: driver `auto`, which keeps local-sync or local-task per graph after timing both on the first calls, and `eager_if_faster`, which then keeps a graph eager where it measures faster than compiled), `mlirforge[iree-only]` (`options={"eager_if_faster": False}`: every graph on IREE),
  `mlirforge[heuristic]` (`options={"optimize": True, "budget_s": B}`),
  `mlirforge[llm-replay]` (the search with a recorded LLM transcript replayed; only with
  `--transcript`).
- **Noise**: the suite records the share of the machine's CPU time that *other* processes used
  during each workload (/proc/stat minus the workload's own process tree); above 10% it warns.
  OpenMP-parallel code (eager PyTorch, Inductor) is hit hardest by a busy neighbour: a parallel
  region waits for its slowest thread.
"""


def write_doc(
    args: argparse.Namespace,
    out: Path,
    suite_md: Path,
    eff_md: Path,
    steps: dict[str, float],
    command: str,
) -> Path:
    suite = json.loads((out / "bench_suite.json").read_text())
    doc = out / "benchmarks.md"
    img = "img"
    lines = [
        "# Benchmarks",
        "",
        (
            f"Generated by `{command}` on {suite['machine']['date']} "
            f"(suite {fmt_duration(steps.get('suite', 0))}, search efficiency "
            f"{fmt_duration(steps.get('efficiency', 0))}, total {fmt_duration(sum(steps.values()))}, m:ss). "
            "Raw data, every timing sample included: [bench_suite.json](bench_suite.json), "
            "[search_efficiency.json](search_efficiency.json)."
        ),
        "",
        (
            "Other benches, not part of this command: `bench/bench_examples.py` (mlirforge's driver and "
            "flag variants on the examples) and `bench/bench_passes.py` ([passes-bench.md](passes-bench.md))."
        ),
        "",
    ]
    if args.quick:
        lines += ["**Quick (smoke-test) settings: not results.**", ""]
    lines += machine_section(suite) + ["", METHOD]
    lines += [
        "## Plots",
        "",
        f"![speedup over eager per workload and system]({img}/suite_speedup.png)",
        "",
        f"![search efficiency: % of the sweep optimum reached vs evaluations]({img}/search_efficiency.png)",
        "",
    ]
    lines.append(
        suite_md.read_text()
        if suite_md.is_file()
        else "## Suite\n\n(the suite failed: see its log)\n"
    )
    lines.append(
        eff_md.read_text()
        if eff_md.is_file()
        else "## Search efficiency\n\n(the search-efficiency bench failed: see its log)\n"
    )
    doc.write_text("\n".join(lines).rstrip() + "\n")
    return doc


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    out = args.out_dir.resolve()
    (out / "img").mkdir(parents=True, exist_ok=True)
    command = shlex.join(
        ["python", "bench/reproduce.py", *(sys.argv[1:] if argv is None else argv)]
    )
    suite_est, eff_est = estimates(args)
    total_est = suite_est + eff_est + 15
    print(
        f"reproduce: estimated {fmt_duration(total_est)} (m:ss): suite {fmt_duration(suite_est)}, "
        f"search efficiency {fmt_duration(eff_est)}; output in {out}",
        file=sys.stderr,
        flush=True,
    )
    if total_est > LIMIT_S:
        print(
            f"reproduce: warning: the estimate exceeds {LIMIT_S // 60} minutes; lower --budget-s",
            file=sys.stderr,
        )
    logs = Path(tempfile.mkdtemp(prefix="mlirforge-reproduce-"))
    suite_md, eff_md = logs / "suite.md", logs / "efficiency.md"
    steps: dict[str, float] = {}
    started = time.perf_counter()
    rc_suite, steps["suite"] = run_step(
        "suite", suite_argv(args, out / "bench_suite.json", suite_md), logs / "suite.txt"
    )
    print(
        f"reproduce: elapsed {fmt_duration(time.perf_counter() - started)}, about "
        f"{fmt_duration(eff_est)} to go",
        file=sys.stderr,
        flush=True,
    )
    rc_eff, steps["efficiency"] = run_step(
        "search efficiency",
        efficiency_argv(args, out / "search_efficiency.json", eff_md),
        logs / "efficiency.txt",
    )
    import plots

    if (out / "bench_suite.json").is_file():
        print(
            f"wrote {plots.plot_suite(json.loads((out / 'bench_suite.json').read_text()), out / 'img')}",
            file=sys.stderr,
        )
    if (out / "search_efficiency.json").is_file():
        print(
            f"wrote {plots.plot_efficiency(json.loads((out / 'search_efficiency.json').read_text()), out / 'img')}",
            file=sys.stderr,
        )
    if (out / "bench_suite.json").is_file():
        doc = write_doc(args, out, suite_md, eff_md, steps, command)
        print(f"wrote {doc}", file=sys.stderr)
    total = time.perf_counter() - started
    print(
        f"reproduce: done in {fmt_duration(total)} (estimated {fmt_duration(total_est)}); "
        f"console tables in {logs}",
        file=sys.stderr,
    )
    return 0 if rc_suite == 0 and rc_eff == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
