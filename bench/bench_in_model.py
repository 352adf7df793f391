"""Where a kernel win goes in the model: each kept or dropped rewrite alone, in the model, end to end.

    python bench/bench_in_model.py examples/transformer_block.py --transcript T.jsonl \\
        --markdown docs/in-model.md --json docs/in_model.json
    python bench/bench_in_model.py test/data/hot_and_cold.py --proposer heuristic

Runs `mlirforge.optimize` (the replayed transcript, or a proposer) on a
KernelBench-format model, then reads the artifact's evidence: for each kernel
win, its speedup alone (the cascade's A/B, kernel against kernel), in the
model (the model with it against the model without it, and its dispatches'
time in IREE's per-dispatch profile of both models), its share of the model's
time and what IREE fused into its dispatches; then the whole artifact against
its unoptimised build and eager, in a fresh process, interleaved, with 95% CIs.
Amdahl's prediction from the shares says how much of the kernels' gain
should have reached the model.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import cpu_text, machine_info, versions, versions_text  # noqa: E402
from output import emit, fmt, text_table  # noqa: E402


def run(model_file: Path, proposer: str, transcript: str | None, budget_s: float, out: Path) -> dict:
    import mlirforge
    from mlirforge.kernelbench import load_model_file

    problem = load_model_file(model_file)
    options = {"proposer": proposer, "budget_s": budget_s, "use_rewrite_cache": False}
    if transcript:
        options["transcript"] = transcript
    summary = mlirforge.optimize(problem.model, problem.inputs, out, options, source=str(model_file))
    manifest = json.loads((out / "manifest.json").read_text())
    e2e = manifest["optimization"]["end_to_end"] or {}
    model_us = (e2e.get("timing") or {}).get("baseline_us")
    rows, kept_time = [], 0.0
    # Every kernel's best verified candidate, kept or dropped: the diagnosis needs the losers too.
    for k in summary.kernels:
        w = k.get("winner")
        if w is None:
            continue
        alone, inside = w["alone"], w["in_model"] or {}
        dispatches = w["dispatches"] or {}
        before_us = (dispatches.get("before") or {}).get("us")
        share = before_us / model_us if before_us and model_us else None
        if w["kept"] and share and alone["speedup"]:
            kept_time += share * (1 - 1 / alone["speedup"])
        rows.append({"kernel": k["hash"], "root": k["root"], "candidate": w["candidate"], "share": share,
                     "alone_us": [alone["baseline_us"], alone["candidate_us"]],
                     "alone": [alone["speedup"], alone["ci_low"], alone["ci_high"]],
                     "in_model": [inside.get(x) for x in ("speedup", "ci_low", "ci_high")],
                     "dispatch_us": [before_us, (dispatches.get("after") or {}).get("us")],
                     "fused": (dispatches.get("before") or {}).get("fused", []),
                     "why": dispatches.get("why", ""), "kept": w["kept"], "dropped": w["dropped"]})
    kept_anything = summary.kept_anything
    return {
        "model": str(model_file), "proposer": proposer, "transcript": transcript,
        "kernels": [k["result"] for k in summary.kernels], "rewrites": rows,
        "end_to_end": {k: e2e.get("timing", {}).get(k) for k in ("speedup", "ci_low", "ci_high")}
        | {"accepted": e2e.get("accepted"), "reason": e2e.get("reason"), "model_us": model_us},
        "predicted": 1 / (1 - kept_time) if kept_time and kept_time < 1 else None,
        "kept_anything": kept_anything,
        # With nothing kept the artifact is the unoptimised program: a ratio between the two is noise.
        "fresh_process": {"vs_unoptimized": summary.vs_unoptimized if kept_anything else None,
                          "vs_eager": summary.vs_eager, "eager_us": summary.eager_us,
                          "unoptimized_us": summary.unoptimized_us, "optimized_us": summary.optimized_us},
        "machine": machine_info(), "versions": versions(),
    }


def _x(triple) -> str:
    if not triple or triple[0] is None:
        return "-"
    return f"{triple[0]:.2f}x ({triple[1]:.2f}-{triple[2]:.2f})"


def tables(result: dict) -> tuple[list[str], list[list[str]]]:
    headers = ["kernel", "root", "candidate", "share of model", "alone µs ref → cand", "alone (95% CI)",
               "its dispatches in the model, µs before → after", "in the model (95% CI)", "fused into it", "kept"]
    rows = [[r["kernel"][:12], r["root"], r["candidate"][:40], fmt(r["share"] and 100 * r["share"], ".0f") + "%",
             f"{fmt(r['alone_us'][0], '.0f')} → {fmt(r['alone_us'][1], '.0f')}", _x(r["alone"]),
             f"{fmt(r['dispatch_us'][0], '.0f')} → {fmt(r['dispatch_us'][1], '.0f')}", _x(r["in_model"]),
             ", ".join(f[:8] for f in r["fused"]) or "-", "yes" if r["kept"] else "no"] for r in result["rewrites"]]
    return headers, rows


def markdown(result: dict) -> str:
    from output import markdown_table

    headers, rows = tables(result)
    e, f = result["end_to_end"], result["fresh_process"]
    lines = [f"# A kernel win, alone and in the model: `{result['model']}`", "",
             f"Proposer `{result['proposer']}`" + (f", transcript `{result['transcript']}`" if result["transcript"]
                                                     else "") + ". Regenerate with `python bench/bench_in_model.py`.",
             "", markdown_table(headers, rows, left=2), ""]
    for r in result["rewrites"]:
        if r["why"]:
            lines.append(f"- `{r['kernel'][:12]}`: {r['why']}")
        if r["dropped"]:
            lines.append(f"- `{r['kernel'][:12]}` dropped: {r['dropped']}")
    lines += ["", f"- end to end (search worker, A/B): {_x([e.get('speedup'), e.get('ci_low'), e.get('ci_high')])}"
                  f" — {e.get('reason')}",
              f"- predicted from the kept kernels' shares and alone speedups (Amdahl): "
              f"{fmt(result['predicted'], '.2f')}x",
              (f"- the artifact in a fresh process, interleaved: {_x(f['vs_unoptimized'])} vs unoptimised, "
               f"{_x(f['vs_eager'])} vs eager" if result["kept_anything"] else
               f"- nothing kept: the artifact is the unoptimised program, {_x(f['vs_eager'])} vs eager "
               "in a fresh process"), ""]
    lines += [f"Per kernel: {k}" for k in result["kernels"]]
    lines += ["", f"Machine: {cpu_text(result['machine'])}", f"Versions: {versions_text(result['versions'])}", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path, help="a KernelBench-format model file")
    parser.add_argument("--transcript", help="replay this LLM transcript (proposer replay)")
    parser.add_argument("--proposer", default=None, help="heuristic, llm or replay (default: replay with "
                                                         "--transcript, else heuristic)")
    parser.add_argument("--budget-s", type=float, default=600.0)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args(argv)
    proposer = args.proposer or ("replay" if args.transcript else "heuristic")
    os.environ.setdefault("MLIRFORGE_CACHE_DIR", tempfile.mkdtemp(prefix="mlirforge-bench-in-model-"))
    out = Path(tempfile.mkdtemp(prefix="mlirforge-in-model-")) / "artifact"
    started = time.perf_counter()
    result = run(args.model, proposer, args.transcript, args.budget_s, out)
    result["total_seconds"] = time.perf_counter() - started

    def text(report, _):
        headers, rows = tables(report)
        return text_table(headers, rows, left=2) + "\n" + markdown(report).split("\n\n", 3)[-1] + "\n"

    emit(result, None, args, text, lambda report, _: json.dumps(report, indent=2) + "\n",
         lambda report, _: markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
