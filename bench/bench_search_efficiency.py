"""Search efficiency: how much of the best verified speedup a search reaches, per evaluation spent.

For a few matmul kernels of the example models (extracted with
`mlirforge.llm_rewrite.kernels.extract_kernels` from the lowered model, weights
bound as parameters as in the model), it measures:

  sweep       every candidate the heuristic proposer's generators enumerate for the
              kernel (its pass pipelines and its tile configurations; `HeuristicProposer`
              `_pipelines` + `_tilings`), evaluated one by one with `KernelEvaluator`
              (build -> numerics -> interleaved A/B timing against the unmodified kernel).
              If the space is larger than `--sweep-cap`, the pipelines plus an evenly
              spaced subsample of the tile list (which is sorted by the heuristic's own
              score) are swept, so the sweep covers the whole ranking, not its head.
              The reference optimum is the best VERIFIED speedup found by the sweep
              (accepted verdicts only: equivalent, and the CI's lower bound clears
              1 + min_gain); timing is noisy, so it is a measured optimum, not a true one.
  heuristic   the search as `Search` runs it: rounds of
              `proposer.propose(kernel, history, per_round)`, each candidate evaluated
              afresh (its own A/B timing), the history fed back (so the proposer climbs
              around accepted tiles), for `--search-evals` evaluations. The point where
              `Search`'s patience rule (2 rounds without a better rewrite) would have
              stopped it is recorded.
  random      the expected curve of drawing candidates at random, without replacement,
              from the sweep's own verdicts (Monte Carlo over 2000 orders; no extra
              evaluations): what the heuristic's ordering is worth over chance.
  llm-replay  with `--transcript`: the replayed LLM proposer (`get_proposer("replay",
              transcript=...)`) in the same loop, if the transcript has rounds for the
              kernel; "not available" with the reason otherwise.

Curves give, after each evaluation, the best verified speedup so far (1.0 while
none is verified) and the fraction of the optimum's gain reached,
(best - 1) / (optimum - 1). A search can pass 100%: it may evaluate tiles the
capped sweep skipped (the climb's neighbours), or measure the same tile a bit
faster.

    python bench/bench_search_efficiency.py                   # 4 kernels (~7 min on 2 cores)
    python bench/bench_search_efficiency.py --quick           # 1 kernel, tiny sweep and budget
    python bench/bench_search_efficiency.py --json out.json --markdown out.md

Modules: this one the command line; `efficiency_kernels.py` the kernels and
their candidate space, `efficiency_runs.py` the sweep, the searches and the
curves, `efficiency_report.py` the tables.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

from efficiency_kernels import DEFAULT_KERNELS, QUICK_KERNELS, KernelSpec  # noqa: E402
from efficiency_report import render_markdown, render_text, to_json  # noqa: E402
from efficiency_runs import run_kernel  # noqa: E402
from machine import machine_info  # noqa: E402
from output import emit, fmt_duration, step  # noqa: E402

SECONDS_PER_EVALUATION = 1.6  # mean over the default kernels on the reference machine (2 vCPUs)
LOWERING_SECONDS = 12  # per workload: export, outline, profile


def estimate_seconds(args: argparse.Namespace) -> float:
    workloads = {KernelSpec.parse(k).workload for k in args.kernels}
    per_kernel = args.sweep_cap + args.search_evals * (2 if args.transcript else 1)
    return (
        len(workloads) * LOWERING_SECONDS + len(args.kernels) * per_kernel * SECONDS_PER_EVALUATION
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--kernels", help=f"WORKLOAD:ROOT[:RANK],... (default: {','.join(DEFAULT_KERNELS)})"
    )
    p.add_argument(
        "--quick", action="store_true", help="1 kernel, sweep 4, search 4, 10 timing rounds"
    )
    p.add_argument(
        "--sweep-cap", type=int, help="most candidates swept per kernel, 0 = all (default 48)"
    )
    p.add_argument("--search-evals", type=int, help="evaluations per search (default 16)")
    p.add_argument(
        "--per-round",
        type=int,
        default=4,
        help="candidates per proposal round (default 4, as Search)",
    )
    p.add_argument(
        "--patience",
        type=int,
        default=2,
        help="Search's patience, for the recorded stop (default 2)",
    )
    p.add_argument(
        "--timing-rounds", type=int, help="A/B rounds per evaluation (default 30, as the search)"
    )
    p.add_argument(
        "--transcript", type=Path, help="LLM transcript: adds the replayed LLM proposer's curve"
    )
    p.add_argument("--json", type=Path)
    p.add_argument("--markdown", type=Path)
    args = p.parse_args(argv)
    kernels = (
        args.kernels.split(",")
        if args.kernels
        else list(QUICK_KERNELS if args.quick else DEFAULT_KERNELS)
    )
    try:
        args.specs = [KernelSpec.parse(k.strip()) for k in kernels if k.strip()]
    except ValueError as exc:
        p.error(str(exc))
    args.kernels = [s.label for s in args.specs]
    if args.sweep_cap is None:
        args.sweep_cap = 4 if args.quick else 48
    if args.search_evals is None:
        args.search_evals = 4 if args.quick else 16
    if args.timing_rounds is None:
        args.timing_rounds = 10 if args.quick else 30
    if args.timing_rounds < 5 or args.search_evals < 1 or args.sweep_cap < 0:
        p.error("--timing-rounds >= 5, --search-evals >= 1, --sweep-cap >= 0")
    if args.transcript and not args.transcript.is_file():
        p.error(f"--transcript: no such file {args.transcript}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    estimate = estimate_seconds(args)
    print(
        f"search efficiency: {len(args.specs)} kernels, sweep cap {args.sweep_cap}, {args.search_evals} "
        f"evaluations per search; estimated {fmt_duration(estimate)} (m:ss)",
        file=sys.stderr,
        flush=True,
    )
    started = time.perf_counter()
    results = []
    with tempfile.TemporaryDirectory(prefix="mlirforge-search-eff-") as tmp:
        os.environ["MLIRFORGE_CACHE_DIR"] = tmp  # cold: nothing reused from earlier runs
        kernels_by_workload: dict = {}
        for i, spec in enumerate(args.specs, 1):
            step(i, len(args.specs), spec.label, started)
            results.append(run_kernel(spec, args, kernels_by_workload))
    report = {
        "machine": machine_info(),
        "settings": {
            "kernels": args.kernels,
            "sweep_cap": args.sweep_cap,
            "search_evals": args.search_evals,
            "per_round": args.per_round,
            "patience": args.patience,
            "timing_rounds": args.timing_rounds,
            "transcript": str(args.transcript) if args.transcript else None,
            "quick": args.quick,
            "description": (
                f"kernels {', '.join(args.kernels)}; sweep of up to {args.sweep_cap or 'all'} candidates "
                f"from the heuristic's generators; searches of {args.search_evals} evaluations, "
                f"{args.per_round} per round; each evaluation {args.timing_rounds} interleaved A/B "
                "rounds x 5 calls after numerics on 6 input distributions"
            ),
        },
        "total_seconds": round(time.perf_counter() - started, 1),
        "estimated_seconds": round(estimate),
    }
    emit(report, results, args, render_text, to_json, render_markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
