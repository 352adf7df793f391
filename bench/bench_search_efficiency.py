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
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
if str(BENCH_DIR) not in sys.path:
    sys.path.insert(0, str(BENCH_DIR))

import bench_suite as S
import numpy as np
import workloads as W


@dataclasses.dataclass(frozen=True)
class KernelSpec:
    """The `rank`-th biggest (by flops) kernel whose root op is `root`, in workload `workload`."""

    workload: str
    root: str
    rank: int = 0

    @property
    def label(self) -> str:
        return f"{self.workload}:{self.root.removeprefix('linalg.')}:{self.rank}"

    @classmethod
    def parse(cls, text: str) -> KernelSpec:
        parts = text.split(":")
        if len(parts) not in (2, 3) or parts[0] not in W.BY_NAME:
            raise ValueError(
                f"kernel spec '{text}': expected WORKLOAD:ROOT[:RANK] with a workload from "
                f"{', '.join(W.BY_NAME)}"
            )
        root = parts[1] if parts[1].startswith("linalg.") else f"linalg.{parts[1]}"
        return cls(parts[0], root, int(parts[2]) if len(parts) == 3 else 0)


DEFAULT_KERNELS = (
    "mlp:matmul:0",
    "transformer:matmul:0",
    "transformer:batch_matmul:0",
    "transformer:batch_matmul:1",
)
QUICK_KERNELS = ("mlp:matmul:0",)


@dataclasses.dataclass
class Evaluation:
    index: int  # 1-based, in the order evaluated
    candidate: str  # Candidate.describe()
    candidate_id: str
    kind: str
    stage: str
    accepted: bool
    speedup: float | None
    ci_low: float | None
    ci_high: float | None
    reason: str
    seconds: float


@dataclasses.dataclass
class Curve:
    name: str  # heuristic | random | llm-replay
    status: str = "ok"  # ok | not available | error
    error: str | None = None
    evaluations: list[Evaluation] = dataclasses.field(default_factory=list)
    best: list[float] = dataclasses.field(
        default_factory=list
    )  # best verified speedup after e evaluations
    fraction: list[float | None] = dataclasses.field(default_factory=list)  # of the optimum's gain
    patience_stop: int | None = None  # evaluations after which Search's patience rule stops
    exhausted: bool = False  # the proposer had nothing more to propose before the budget
    seconds: float | None = None


@dataclasses.dataclass
class KernelResult:
    spec: str
    name: str | None = None
    hash: str | None = None
    root: str | None = None
    shapes: list[list[int]] = dataclasses.field(default_factory=list)
    baseline_us: float | None = None
    space_size: int | None = None  # candidates the generators enumerate
    swept: int | None = None
    sweep: list[Evaluation] = dataclasses.field(default_factory=list)
    optimum: float | None = None  # best verified speedup of the sweep
    optimum_candidate: str | None = None
    curves: list[Curve] = dataclasses.field(default_factory=list)
    error: str | None = None
    seconds: float | None = None


# --------------------------------------------------------------------------- kernels


def lowered_kernels(workload: str):
    """The profiled kernels of a workload's lowered model, hottest first."""
    from mlirforge.llm_rewrite.evaluate import EvalSettings
    from mlirforge.llm_rewrite.kernels import extract_kernels
    from mlirforge.llm_rewrite.profiling import profile_kernels
    from mlirforge.lowering.options import LoweringOptions
    from mlirforge.lowering.torch_export import export_model

    model, inputs = W.get(workload).build()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.export's own deprecations
        exported = export_model(model, inputs, LoweringOptions())
    _, kernels = extract_kernels(exported.lowered.mlir)
    return profile_kernels(kernels, list(EvalSettings().base_flags))


def kernel_flops(kernel) -> int:
    out = kernel.outputs[0].shape if kernel.outputs else ()
    n = 1
    for d in out:
        n *= d
    return 2 * n * kernel.reduction_depth


def pick(kernels, spec: KernelSpec):
    """Kernels with the root op, biggest (flops) first: a stable order, unlike measured times."""
    same = sorted(
        (k for k in kernels if k.root == spec.root), key=lambda k: (-kernel_flops(k), k.hash)
    )
    if spec.rank >= len(same):
        roots = sorted({k.root for k in kernels})
        raise ValueError(
            f"{spec.workload} has {len(same)} kernel(s) rooted at {spec.root} (roots: {', '.join(roots)})"
        )
    return same[spec.rank]


def sweep_space(proposer, kernel, cap: int) -> tuple[list, int]:
    """(candidates to sweep, size of the whole space): pipelines + an even subsample of the tiles."""
    pipelines, tilings = proposer._pipelines(kernel), proposer._tilings(kernel)
    total = len(pipelines) + len(tilings)
    room = max(0, cap - len(pipelines)) if cap else len(tilings)
    if room < len(tilings):
        picks = (
            sorted({round(i * (len(tilings) - 1) / max(1, room - 1)) for i in range(room)})
            if room
            else []
        )
        tilings = [tilings[i] for i in picks]
    return pipelines + tilings, total


# --------------------------------------------------------------------------- evaluating


def evaluation(index: int, cand, verdict, seconds: float) -> Evaluation:
    t = verdict.timing or {}
    return Evaluation(
        index,
        cand.describe(),
        cand.id,
        cand.kind,
        verdict.stage,
        bool(verdict.accepted),
        t.get("speedup"),
        t.get("ci_low"),
        t.get("ci_high"),
        verdict.reason[:300],
        round(seconds, 2),
    )


def evaluate(evaluator, cand, index: int):
    start = time.perf_counter()
    verdict = evaluator.evaluate(cand)
    return evaluation(index, cand, verdict, time.perf_counter() - start), verdict


def verified(e: Evaluation) -> float:
    return e.speedup if e.accepted and e.speedup else 1.0


def run_sweep(kernel, candidates, settings, workdir, cache, log_prefix: str) -> list[Evaluation]:
    from mlirforge.llm_rewrite.evaluate import KernelEvaluator

    evaluator = KernelEvaluator(kernel, settings, workdir, cache)
    out = []
    for i, cand in enumerate(candidates, 1):
        e, _ = evaluate(evaluator, cand, i)
        out.append(e)
        S.progress(
            f"{log_prefix} sweep {i}/{len(candidates)}: {e.candidate}: "
            + (f"{e.speedup:.3f}x{' accepted' if e.accepted else ''}" if e.speedup else e.stage)
        )
    return out


def _drain(proposer, kernel) -> list[str]:
    """The proposer's reasons for unusable answers since the last call (none for the heuristic)."""
    drain = getattr(proposer, "drain_rejections", None)
    if drain is None:
        return []
    try:
        return list(drain(kernel.hash))
    except TypeError:  # the older signature, without the kernel
        return list(drain())


def run_search(
    name: str,
    proposer,
    kernel,
    settings,
    workdir,
    cache,
    evals: int,
    per_round: int,
    patience: int,
    log_prefix: str,
) -> Curve:
    """Search's per-kernel loop with an evaluation budget instead of a time budget."""
    from mlirforge.llm_rewrite.evaluate import KernelEvaluator
    from mlirforge.llm_rewrite.proposers import ProposerStopped

    curve = Curve(name)
    evaluator = KernelEvaluator(kernel, settings, workdir, cache)
    history, best_ci, stale, failed_rounds = [], None, 0, 0
    start = time.perf_counter()
    if hasattr(proposer, "prepare"):
        proposer.prepare([kernel], per_round)
    try:
        while len(curve.evaluations) < evals:
            cands = proposer.propose(kernel, history, per_round)
            rejections = _drain(proposer, kernel)
            if not cands:
                if rejections and failed_rounds < 20:
                    failed_rounds += 1
                    stale += 1
                    continue
                curve.exhausted = True
                break
            improved = False
            for cand in cands:
                if len(curve.evaluations) >= evals:
                    break
                e, verdict = evaluate(evaluator, cand, len(curve.evaluations) + 1)
                curve.evaluations.append(e)
                history.append((cand, verdict))
                S.progress(
                    f"{log_prefix} {name} {e.index}/{evals}: {e.candidate}: "
                    + (
                        f"{e.speedup:.3f}x{' accepted' if e.accepted else ''}"
                        if e.speedup
                        else e.stage
                    )
                )
                if verdict.accepted and (best_ci is None or verdict.timing["ci_low"] > best_ci):
                    best_ci, improved = verdict.timing["ci_low"], True
            stale = 0 if improved else stale + 1
            if stale >= patience and curve.patience_stop is None:
                curve.patience_stop = len(curve.evaluations)
    except ProposerStopped as exc:
        curve.error = f"the proposer stopped: {exc}"
    finally:
        if hasattr(proposer, "close"):
            proposer.close()
    curve.seconds = round(time.perf_counter() - start, 1)
    return curve


def fill_curve(curve: Curve, optimum: float | None) -> None:
    best = 1.0
    curve.best, curve.fraction = [], []
    for e in curve.evaluations:
        best = max(best, verified(e))
        curve.best.append(best)
        curve.fraction.append(gain_fraction(best, optimum))


def gain_fraction(best: float, optimum: float | None) -> float | None:
    if optimum is None or optimum <= 1.0:
        return None
    return (best - 1.0) / (optimum - 1.0)


def random_curve(
    sweep: list[Evaluation], optimum: float | None, orders: int = 2000, seed: int = 0
) -> Curve:
    """Expected best-so-far of random orders of the sweep's own verdicts."""
    curve = Curve("random")
    values = np.array([verified(e) for e in sweep])
    if len(values) == 0:
        return curve
    rng = np.random.default_rng(seed)
    perms = np.argsort(rng.random((orders, len(values))), axis=1)
    running = np.maximum.accumulate(values[perms], axis=1)
    curve.best = [float(x) for x in running.mean(axis=0)]
    if optimum is not None and optimum > 1.0:
        curve.fraction = [float(x) for x in ((running - 1.0) / (optimum - 1.0)).mean(axis=0)]
    else:
        curve.fraction = [None] * len(values)
    return curve


def run_kernel(
    spec: KernelSpec, args: argparse.Namespace, kernels_by_workload: dict
) -> KernelResult:
    from mlirforge.llm_rewrite.evaluate import EvalSettings
    from mlirforge.llm_rewrite.proposers import get_proposer
    from mlirforge.lowering.iree_compile import ModuleCache

    result = KernelResult(spec.label)
    started = time.perf_counter()
    try:
        if spec.workload not in kernels_by_workload:
            S.progress(f"{spec.workload}: lowering and profiling kernels ...")
            kernels_by_workload[spec.workload] = lowered_kernels(spec.workload)
        kernel = pick(kernels_by_workload[spec.workload], spec)
    except Exception as exc:  # noqa: BLE001
        traceback.print_exc(file=sys.stderr)
        result.error = S.first_line(exc)
        return result
    result.name, result.hash, result.root = kernel.name, kernel.hash, kernel.root
    result.shapes = [list(s.shape) for s in kernel.inputs]
    result.baseline_us = kernel.baseline_us
    settings = EvalSettings(rounds=args.timing_rounds)
    # Inside the run's temporary cache directory, which is removed at the end.
    workdir = Path(tempfile.mkdtemp(prefix="eval-", dir=os.environ["MLIRFORGE_CACHE_DIR"]))
    cache = ModuleCache(Path(os.environ["MLIRFORGE_CACHE_DIR"]))
    heuristic = get_proposer("heuristic")
    candidates, result.space_size = sweep_space(heuristic, kernel, args.sweep_cap)
    result.swept = len(candidates)
    S.progress(
        f"{spec.label} ({kernel.root}, inputs {result.shapes}): sweeping {len(candidates)} of "
        f"{result.space_size} candidates ..."
    )
    result.sweep = run_sweep(kernel, candidates, settings, workdir, cache, spec.label)
    accepted = [e for e in result.sweep if e.accepted and e.speedup]
    if accepted:
        top = max(accepted, key=lambda e: e.speedup)
        result.optimum, result.optimum_candidate = top.speedup, top.candidate
    S.progress(
        f"{spec.label}: sweep optimum "
        + (
            f"{result.optimum:.3f}x ({result.optimum_candidate})"
            if result.optimum
            else "none verified"
        )
    )

    def search(name, proposer):
        return run_search(name, proposer, kernel, settings, workdir, cache, args.search_evals,
                          args.per_round, args.patience, spec.label)

    curves = [search("heuristic", get_proposer("heuristic"))]
    if args.transcript:
        try:
            curve = search("llm-replay", get_proposer("replay", transcript=str(args.transcript)))
            if not curve.evaluations:
                curve.status = "not available"
                curve.error = curve.error or "the transcript has no rounds for this kernel"
            curves.append(curve)
        except Exception as exc:  # noqa: BLE001
            traceback.print_exc(file=sys.stderr)
            curves.append(Curve("llm-replay", status="not available", error=S.first_line(exc)))
    else:
        curves.append(Curve("llm-replay", status="not run", error="no --transcript given"))
    curves.append(random_curve(result.sweep, result.optimum))
    for c in curves:
        if c.name != "random":
            fill_curve(c, result.optimum)
    result.curves = curves
    result.seconds = round(time.perf_counter() - started, 1)
    return result


# --------------------------------------------------------------------------- reporting


def at(values: Sequence[Any], n: int) -> Any:
    """The curve's value after n evaluations (its last value if it stopped earlier)."""
    if not values:
        return None
    return values[min(n, len(values)) - 1]


def pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.0f}%"


def checkpoints(total: int) -> list[int]:
    points = [p for p in (1, 2, 4, 8, 12, 16, 24, 32, 48, 64) if p < total]
    return [*points, total]


def kernel_summary_rows(results: Sequence[KernelResult]) -> list[list[str]]:
    rows = []
    for r in results:
        if r.error:
            rows.append([r.spec, "-", "-", "-", f"error: {r.error}", "-", "-"])
            continue
        accepted = sum(e.accepted for e in r.sweep)
        sweep_s = sum(e.seconds for e in r.sweep)
        rows.append(
            [
                r.spec,
                f"{r.root.removeprefix('linalg.')} {' '.join('x'.join(map(str, s)) for s in r.shapes)}",
                S.fmt(r.baseline_us, ".1f"),
                f"{r.swept}/{r.space_size} ({sweep_s:.0f} s)",
                f"{accepted}",
                f"{r.optimum:.3f}x" if r.optimum else "none verified",
                r.optimum_candidate or "-",
            ]
        )
    return rows


KERNEL_HEADERS = [
    "kernel",
    "root, inputs",
    "baseline us",
    "swept (time)",
    "accepted",
    "optimum",
    "optimum candidate",
]


def curve_table(r: KernelResult) -> tuple[list[str], list[list[str]]]:
    searches = [c for c in r.curves if c.name != "random" and c.status == "ok" and c.best]
    longest = max([len(c.evaluations) for c in searches] + [1])
    points = checkpoints(longest)
    headers = ["search", *[f"{p} ev" for p in points], "patience stop"]
    rows = []
    for c in r.curves:
        if c.status != "ok" or not c.best:
            rows.append(
                [
                    c.name,
                    f"{c.status}: {c.error or 'no evaluations'}",
                    *[""] * (len(points) - 1),
                    "-",
                ]
            )
            continue
        cells = []
        for p in points:
            cell = f"{at(c.best, p):.3f}x ({pct(at(c.fraction, p))})"
            if p > len(c.best):
                cell += " exhausted" if c.exhausted else " stopped"
            cells.append(cell)
        rows.append([c.name, *cells, str(c.patience_stop) if c.patience_stop else "-"])
    return headers, rows


def render_text(report: dict[str, Any], results: Sequence[KernelResult]) -> str:
    parts = [
        f"search efficiency: {report['settings']['description']}",
        "== kernels\n" + S.text_table(KERNEL_HEADERS, kernel_summary_rows(results)),
    ]
    for r in results:
        if not r.error:
            parts.append(
                f"== {r.spec}: best verified speedup (% of the optimum's gain) after N evaluations\n"
                + S.text_table(*curve_table(r))
            )
    return "\n\n".join(parts) + "\n"


def render_markdown(
    report: dict[str, Any], results: Sequence[KernelResult], heading: str = "##"
) -> str:
    s = report["settings"]
    out = [
        f"{heading} Search efficiency: % of the sweep's optimum reached vs evaluations",
        "",
        f"- {s['description']}",
        (
            "- Optimum: the best *verified* speedup (equivalent, CI lower bound >= 1 + min_gain) that the sweep "
            "measured; timing is noisy, so it is a measured optimum, and a search may exceed it (100%+)."
        ),
        (
            "- Cells: best verified speedup after N evaluations (1.000x while none is verified), and in brackets "
            "the fraction of the optimum's gain, (best - 1) / (optimum - 1). `exhausted`: the proposer had "
            "nothing more to propose. *random*: expected curve of random orders of the sweep's own verdicts. "
            "*patience stop*: the evaluation after which `Search` would have stopped (2 rounds without a better "
            "verified rewrite); the curves go on to show what more evaluations would have bought."
        ),
        f"- Total: {report['total_seconds']:.0f} s",
        "",
        markdown_table_kernels(results),
    ]
    for r in results:
        if not r.error:
            out += ["", f"{heading}# {r.spec} (`{r.name}`)", "", S.markdown_table(*curve_table(r))]
    return "\n".join(out) + "\n"


def markdown_table_kernels(results: Sequence[KernelResult]) -> str:
    return S.markdown_table(KERNEL_HEADERS, kernel_summary_rows(results), left=2)


def to_json(report: dict[str, Any], results: Sequence[KernelResult]) -> str:
    from mlirforge.llm_rewrite.types import json_safe

    data = {**report, "kernels": [dataclasses.asdict(r) for r in results]}
    return json.dumps(json_safe(data), indent=1, allow_nan=False) + "\n"


# --------------------------------------------------------------------------- main

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
        f"evaluations per search; estimated {S.fmt_duration(estimate)} (m:ss)",
        file=sys.stderr,
        flush=True,
    )
    started = time.perf_counter()
    results = []
    with tempfile.TemporaryDirectory(prefix="mlirforge-search-eff-") as tmp:
        os.environ["MLIRFORGE_CACHE_DIR"] = tmp  # cold: nothing reused from earlier runs
        kernels_by_workload: dict = {}
        for i, spec in enumerate(args.specs, 1):
            print(
                f"[{i}/{len(args.specs)}] {spec.label} (elapsed {S.fmt_duration(time.perf_counter() - started)})",
                file=sys.stderr,
                flush=True,
            )
            results.append(run_kernel(spec, args, kernels_by_workload))
    report = {
        "machine": S.machine_info(argparse.Namespace(fma_units=None, clock_mhz=None)),
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
    S.emit(report, results, args, render_text, to_json, render_markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
