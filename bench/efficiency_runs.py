"""The search-efficiency bench's measurements: the sweep, the searches and their curves, per kernel.

`run_kernel` sweeps the heuristic's candidate space for the reference
optimum, runs each search for a fixed number of evaluations, and turns
their verdicts into best-so-far curves (with the random-order expectation).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np
from efficiency_kernels import KernelSpec, lowered_kernels, pick, sweep_space
from mlirforge.benchmarking import one_line
from output import progress


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
        progress(
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
                progress(
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
            progress(f"{spec.workload}: lowering and profiling kernels ...")
            kernels_by_workload[spec.workload] = lowered_kernels(spec.workload)
        kernel = pick(kernels_by_workload[spec.workload], spec)
    except Exception as exc:  # noqa: BLE001
        traceback.print_exc(file=sys.stderr)
        result.error = one_line(exc)
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
    progress(
        f"{spec.label} ({kernel.root}, inputs {result.shapes}): sweeping {len(candidates)} of "
        f"{result.space_size} candidates ..."
    )
    result.sweep = run_sweep(kernel, candidates, settings, workdir, cache, spec.label)
    accepted = [e for e in result.sweep if e.accepted and e.speedup]
    if accepted:
        top = max(accepted, key=lambda e: e.speedup)
        result.optimum, result.optimum_candidate = top.speedup, top.candidate
    progress(
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
            curves.append(Curve("llm-replay", status="not available", error=one_line(exc)))
    else:
        curves.append(Curve("llm-replay", status="not run", error="no --transcript given"))
    curves.append(random_curve(result.sweep, result.optimum))
    for c in curves:
        if c.name != "random":
            fill_curve(c, result.optimum)
    result.curves = curves
    result.seconds = round(time.perf_counter() - started, 1)
    return result
