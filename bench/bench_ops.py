"""Scatter, sort and scan ops: mlirforge vs eager, interleaved in one process.

    python bench/bench_ops.py [--rounds 15] [--markdown docs/ops-bench.md]

These ops lower to torch-mlir's `tm_tensor` ops and IREE's `iree_linalg_ext`
ones. The figures decide `lowering.partition.EAGER_BY_CHOICE`: an op IREE runs
orders of magnitude slower than PyTorch stays eager. Each row is measured as
the backend compiles it by default and, for the ops kept eager by choice, also
forced through IREE ("forced"), so the reason stays checkable.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import torch
from machine import cpu_text, machine_info, versions_text
from mlirforge.benchmarking import time_against_eager
from mlirforge.lowering import partition
from mlirforge.numerics import check_against_eager


def cases() -> dict[str, tuple]:
    torch.manual_seed(0)
    return {
        "topk 64x1000, k=5": (lambda x: torch.topk(x, 5, dim=-1), [torch.randn(64, 1000)], "aten.topk"),
        "sort 64x1000": (lambda x: torch.sort(x, dim=-1), [torch.randn(64, 1000)], "aten.sort"),
        "cumsum 64x1000": (lambda x: torch.cumsum(x, -1), [torch.randn(64, 1000)], None),
        "index_add 1000x64 <- 500": (lambda x, i, s: x.index_add(0, i, s),
                                     [torch.randn(1000, 64), torch.randint(0, 1000, (500,)), torch.randn(500, 64)], None),
        "scatter_reduce amax 100x64 <- 500x64": (
            lambda d, i, s: d.scatter_reduce(0, i, s, "amax", include_self=False),
            [torch.randn(100, 64), torch.randint(0, 100, (500, 64)), torch.randn(500, 64)], None),
        "index_put 256x256, 1000 points": (
            lambda b, r, c, v: b.index_put((r, c), v),
            [torch.randn(256, 256), torch.randint(0, 256, (1000,)), torch.randint(0, 256, (1000,)), torch.randn(1000)],
            None),
    }


def measure(fn, inputs, rounds: int) -> tuple[float, float, bool]:
    torch._dynamo.reset()
    compiled = torch.compile(fn, backend="mlirforge", options={"eager_if_faster": False})  # IREE's op, not eager's
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ok = check_against_eager(compiled, fn, inputs).ok
        timing = time_against_eager(lambda: fn(*inputs), lambda: compiled(*inputs), rounds, inner=5)
    return timing.eager_us, timing.compiled_us, ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args(argv)
    rows = []
    kept = dict(partition.EAGER_BY_CHOICE)
    for name, (fn, inputs, op) in cases().items():
        modes = [("default", kept)] + ([("forced", {})] if op in kept else [])
        for mode, eager_ops in modes:
            partition.EAGER_BY_CHOICE.clear()
            partition.EAGER_BY_CHOICE.update(eager_ops)
            eager_us, ours_us, ok = measure(fn, inputs, args.rounds)
            rows.append((name, mode, eager_us, ours_us, ok))
            print(f"{name:40s} {mode:8s} eager {eager_us:10.1f} us  mlirforge {ours_us:10.1f} us  "
                  f"{eager_us / ours_us:7.3f}x eager  {'ok' if ok else 'MISMATCH'}", flush=True)
    partition.EAGER_BY_CHOICE.update(kept)
    if args.markdown:
        machine = machine_info()
        lines = [
            "# Scatter, sort and scan ops vs eager",
            "",
            f"From `python bench/bench_ops.py` on {cpu_text(machine)}; {versions_text(machine['versions'])}; "
            f"interleaved, {args.rounds} rounds of 5 calls, median per call. `default` is what the backend "
            "does; `forced` compiles an op kept eager by choice (`lowering.partition.EAGER_BY_CHOICE`) through IREE anyway.",
            "",
            "| op | mode | eager µs | mlirforge µs | x eager | matches eager, inputs unchanged |",
            "|---|---|---:|---:|---:|---|",
        ]
        for name, mode, eager_us, ours_us, ok in rows:
            lines.append(f"| {name} | {mode} | {eager_us:.1f} | {ours_us:.1f} | {eager_us / ours_us:.3f}x | "
                         f"{'yes' if ok else 'NO'} |")
        args.markdown.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
