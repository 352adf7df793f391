"""Lowering choices (input form, IREE flags, driver) per workload, against eager, in one run.

    python bench/bench_lowering.py [--workloads mlp,softmax] [--configs base,reassoc] [--rounds 12]
                                   [--markdown docs/lowering-choices.md]

For each workload of the suite (`bench/workloads.py`) every configuration is
compiled by the backend and timed interleaved with eager PyTorch in one
process; the table gives each configuration's speedup over eager (median of
per-round ratios) and the geometric mean. This is the evidence behind the
defaults in `lowering/options.py`. The machine's load is sampled during the
run and a busy machine is said so: eager PyTorch on all cores is hit far
harder by a neighbour than IREE on one.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import workloads  # noqa: E402
from machine import cpu_text, machine_info, versions_text  # noqa: E402
from mlirforge.benchmarking import OtherCpu, calls_per_sample, geomean, per_call_s  # noqa: E402
from mlirforge.numerics import check_against_eager  # noqa: E402
from mlirforge.timing import interleaved_times  # noqa: E402

DT = "--iree-opt-data-tiling"
REASSOC = "--iree-llvmcpu-reassociate-fp-reductions"
CONFIGS: dict[str, dict] = {
    "base": {"iree_flags": [DT], "driver": "local-sync"},  # the defaults before reassociation and `auto`
    "reassoc": {"iree_flags": [DT, REASSOC], "driver": "local-sync"},
    "reassoc+O3": {"iree_flags": [DT, REASSOC, "--iree-opt-level=O3"], "driver": "local-sync"},
    "reassoc+ukernels": {"iree_flags": [DT, REASSOC, "--iree-llvmcpu-enable-ukernels=all"], "driver": "local-sync"},
    "torch+reassoc": {"form": "torch", "iree_flags": [DT, REASSOC], "driver": "local-sync"},
    "reassoc+local-task": {"iree_flags": [DT, REASSOC], "driver": "local-task"},
    "default": {},  # what `torch.compile(model, backend="mlirforge")` does now
}


def ratios(eager: list[float], other: list[float]) -> float:
    """Median of per-round eager/other ratios: each round's pair saw the same machine state."""
    return statistics.median(e / o for e, o in zip(eager, other))


def measure(name: str, configs: list[str], rounds: int) -> dict[str, float | str]:
    model, inputs = workloads.get(name).build()
    fns = [model]
    out: dict[str, float | str] = {}
    for c in configs:
        torch._dynamo.reset()
        # The lowering compared as compiled (the default's choice of eager where faster is not a lowering).
        compiled = torch.compile(model, backend="mlirforge", options={"eager_if_faster": False, **CONFIGS[c]})
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            check = check_against_eager(compiled, model, inputs)
        if not check.ok:
            out[c] = f"mismatch: {check.message}"
        fns.append(compiled)
    with torch.no_grad():
        calls = calls_per_sample(per_call_s(lambda: model(*inputs), statistic=min), 2e-3)  # ~2 ms of eager
        samples = interleaved_times([lambda fn=fn: fn(*inputs) for fn in fns], rounds=rounds, inner=calls, warmup=0)
    out["eager_us"] = statistics.median(samples[0]) * 1e6
    for c, s in zip(configs, samples[1:]):
        out.setdefault(c, ratios(samples[0], s))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", default=",".join(w.name for w in workloads.WORKLOADS))
    parser.add_argument("--configs", default=",".join(CONFIGS))
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args(argv)
    names, configs = args.workloads.split(","), args.configs.split(",")
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown:
        parser.error(f"unknown configuration(s) {unknown}; known: {', '.join(CONFIGS)}")
    rows = {}
    with OtherCpu() as other_cpu:  # iree-compile runs as a child: its CPU time is ours
        for name in names:
            rows[name] = measure(name, configs, args.rounds)
            cells = " ".join(f"{c}={v:.2f}" if isinstance(v, float) else f"{c}=({v})"
                             for c, v in rows[name].items() if c != "eager_us")
            print(f"{name:22s} eager {rows[name]['eager_us']:9.1f} us  {cells}", flush=True)
    others = other_cpu.cores
    geo = {}
    for c in configs:
        g = geomean(rows[n][c] for n in names if isinstance(rows[n][c], float))
        geo[c] = float("nan") if g is None else g
    print("geomean  " + " ".join(f"{c}={g:.3f}" for c, g in geo.items()))
    busy_note = None
    if others is not None and others > 0.25:
        busy_note = f"the machine was busy: other processes used {others:.2f} cores on average during the run"
        print(f"warning: {busy_note}", file=sys.stderr)
    if args.markdown:
        machine = machine_info()
        lines = [
            "# Lowering choices vs eager",
            "",
            f"From `python bench/bench_lowering.py --rounds {args.rounds}` on {cpu_text(machine)}; "
            f"{versions_text(machine['versions'])}. "
            "Each cell: median over rounds of eager time / configuration time, all systems interleaved "
            "in one process (higher is better).",
            "",
        ]
        if busy_note:
            lines += [f"**Warning:** {busy_note}; ratios against eager are unreliable.", ""]
        lines += ["Configurations: " + "; ".join(f"`{c}` = {CONFIGS[c]}" for c in configs), ""]
        lines.append("| workload | eager µs | " + " | ".join(configs) + " |")
        lines.append("|---|---:|" + "---:|" * len(configs))
        for n in names:
            cells = [f"{rows[n][c]:.2f}x" if isinstance(rows[n][c], float) else "mismatch" for c in configs]
            lines.append(f"| {n} | {rows[n]['eager_us']:.1f} | " + " | ".join(cells) + " |")
        lines.append("| **geomean** | | " + " | ".join(f"**{geo[c]:.3f}x**" for c in configs) + " |")
        args.markdown.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
