"""Per-call overhead of each torch.compile backend on `x + 1` (4 floats), interleaved in one process.

    python bench/bench_overhead.py [--rounds 30] [--inner 200]

A call this small measures only the call path: dynamo's guards and frame,
the backend's wrapper, and for mlirforge the IREE invoke with its DLPack
crossings. Prints the median µs per call of eager, dynamo with the `eager`
and `aot_eager` backends, Inductor and mlirforge, each under `torch.no_grad`.
"""

from __future__ import annotations

import argparse
import sys

import torch
from mlirforge.benchmarking import settle_calls
from mlirforge.timing import interleaved_times, median_us
from workloads import AddOne


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--inner", type=int, default=200)
    args = parser.parse_args(argv)
    x = torch.randn(4)
    systems = {"eager (no dynamo)": AddOne()}
    for backend in ("eager", "aot_eager", "inductor", "mlirforge"):
        torch._dynamo.reset()
        systems[f"dynamo + {backend}"] = torch.compile(AddOne(), backend=backend)
    torch._dynamo.reset()  # the IREE call path itself, without the choice of eager for this tiny graph
    systems["dynamo + mlirforge[iree-only]"] = torch.compile(AddOne(), backend="mlirforge",
                                                           options={"eager_if_faster": False})
    with torch.no_grad():
        for fn in systems.values():
            for _ in range(settle_calls()):  # compile, and let mlirforge's per-graph choices settle
                fn(x)
        samples = interleaved_times([lambda fn=fn: fn(x) for fn in systems.values()],
                                    rounds=args.rounds, inner=args.inner)
    for name, s in zip(systems, samples):
        print(f"{name:22s} {median_us(s):7.2f} µs per call")
    return 0


if __name__ == "__main__":
    sys.exit(main())
