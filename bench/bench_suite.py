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
              lanes x 2 (see `machine.cpu_peak`; `--fma-units`, `--clock-mhz` override).

Run from the repository root:

    python bench/bench_suite.py                              # everything (~20 min on 2 cores)
    python bench/bench_suite.py --quick                      # 2 workloads, 3 rounds, tiny budget
    python bench/bench_suite.py --workloads mlp,softmax --json out.json --markdown out.md
    python bench/bench_suite.py --transcript run.jsonl      # adds the replayed-LLM search

A table goes to stdout, progress to stderr; `--json` writes every raw number
(samples included), `--markdown` tables ready for docs.

Modules: this one the command line; `suite_runner.py` the parent (one process
per workload), `suite_worker.py` one workload's measurements, `suite_results.py`
the systems and records, `suite_report.py` the tables.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

import workloads as W  # noqa: E402
from output import emit  # noqa: E402
from suite_report import render_markdown, render_text, to_json  # noqa: E402
from suite_runner import run_all  # noqa: E402


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
        from mlirforge.llm_rewrite.types import json_safe
        from suite_worker import run_workload

        result = run_workload(args.worker, args)
        args.worker_out.write_text(json.dumps(json_safe(dataclasses.asdict(result))))
        return 0
    report, results = run_all(args)
    emit(report, results, args, render_text, to_json, render_markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
