"""Thread scaling: one core against every core, for eager, TorchInductor and IREE's two drivers.

    python bench/bench_threads.py [--workloads transformer,cnn] [--rounds 20] [--markdown docs/threads.md]

PyTorch's thread count cannot change between calls without tearing down and
respawning its OpenMP pool (measured here: softmax 241 µs on one thread, over
4 ms when every call switched), so each thread count gets its own worker
process, built once per workload, and the parent interleaves them round by
round: a round is every system of the one-core worker, then every system of
the all-core worker (one process runs at a time). Per round and system one
sample of `inner` calls; ratios are medians of per-round ratios, so both sides
of a ratio saw the same moment. A second pass repeats it all with a busy
neighbour: another process spinning on one core (a shared runner, a second job).

- one-core worker (`torch.set_num_threads(1)`): `eager x1`, `inductor x1`
  (Inductor bakes the thread count into its kernels), `iree local-sync`
  (IREE on the caller's thread);
- all-core worker: `eager xN`, `inductor xN`, `iree local-task` (IREE's thread
  pool, one worker per core) and `iree auto` (mlirforge's default driver: both
  timed on the first calls, the faster kept).

mlirforge systems run with `eager_if_faster=False`, so the IREE module is what is timed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import cpu_text, machine_info, versions_text  # noqa: E402
from output import emit, markdown_table, text_table  # noqa: E402

DEFAULT_WORKLOADS = ("mlp", "transformer", "cnn", "matmul_256x1024x1024", "conv2d", "softmax", "layernorm")
CORES = os.cpu_count() or 1
ONE_CORE = ("eager x1", "inductor x1", "iree local-sync")
ALL_CORES = (f"eager x{CORES}", f"inductor x{CORES}", "iree local-task", "iree auto")
SYSTEMS = (*ONE_CORE, *ALL_CORES)
SCALING = ((f"eager x{CORES}", "eager x1"), (f"inductor x{CORES}", "inductor x1"),
           ("iree local-task", "iree local-sync"), ("iree auto", "iree local-sync"))


def worker(name: str, threads: int) -> None:
    """One thread count's systems for one workload; answers `time INNER` lines with JSON seconds per call."""
    import torch

    import workloads
    from mlirforge.benchmarking import calls_per_sample, per_call_s
    from mlirforge.numerics import check_against_eager

    torch.set_num_threads(threads)
    model, inputs = workloads.get(name).build()
    problems, compiled = [], [torch.compile(model)]
    for d in ("local-sync",) if threads == 1 else ("local-task", "auto"):
        torch._dynamo.reset()
        compiled.append(torch.compile(model, backend="mlirforge", options={"driver": d, "eager_if_faster": False}))
    calls = [lambda: model(*inputs)] + [lambda fn=fn: fn(*inputs) for fn in compiled]
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for fn in compiled:
            check = check_against_eager(fn, model, inputs)
            if not check.ok:
                problems.append(check.message)
        for call in calls:
            for _ in range(10):  # compiled, settled (the auto driver's trials), warm
                call()
        inner = calls_per_sample(per_call_s(calls[0], statistic=min), 3e-3)
    print(json.dumps({"ready": True, "inner": inner, "problems": problems}), flush=True)
    for line in sys.stdin:
        n = int(line.split()[1])
        out = []
        with torch.no_grad():
            for fn in calls:
                start = time.perf_counter()
                for _ in range(n):
                    fn()
                out.append((time.perf_counter() - start) / n)
        print(json.dumps(out), flush=True)


NEIGHBOUR = "import time\nend = time.time() + 3600\nwhile time.time() < end:\n    pass\n"


def time_pass(name: str, rounds: int, busy: bool) -> tuple[list[list[float]], list[str], float | None]:
    """Interleaved samples per system (SYSTEMS order); with `busy`, while a neighbour spins on one core."""
    from mlirforge.benchmarking import OtherCpu

    procs = [subprocess.Popen([sys.executable, __file__, "--worker", name, str(t)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True) for t in (1, CORES)]
    neighbour = None
    try:
        hello = [json.loads(p.stdout.readline()) for p in procs]
        inner = min(h["inner"] for h in hello)
        problems = [m for h in hello for m in h["problems"]]
        if busy:
            neighbour = subprocess.Popen([sys.executable, "-c", NEIGHBOUR])
            time.sleep(0.5)
        samples: list[list[float]] = [[] for _ in SYSTEMS]
        with OtherCpu() as other:
            for _ in range(rounds):
                row = []
                for p in procs:
                    p.stdin.write(f"time {inner}\n")
                    p.stdin.flush()
                    row += json.loads(p.stdout.readline())
                for i, v in enumerate(row):
                    samples[i].append(v)
    finally:
        if neighbour is not None:
            neighbour.kill()
            neighbour.wait()
        for p in procs:
            p.kill()
            p.wait()
    # OtherCpu counts the workers as other processes: subtract the one core they keep busy.
    return samples, problems, None if other.cores is None else max(0.0, other.cores - 1.0)


def summarize(samples: list[list[float]]) -> dict:
    med = {s: statistics.median(x) * 1e6 for s, x in zip(SYSTEMS, samples)}
    by = dict(zip(SYSTEMS, samples))
    scaling = {f"{a} / {b}": statistics.median(y / x for x, y in zip(by[a], by[b])) for a, b in SCALING}
    return {"median_us": med, "scaling": scaling}


def run(names: list[str], rounds: int) -> dict:
    rows = {}
    for name in names:
        quiet, problems, quiet_other = time_pass(name, rounds, busy=False)
        busy, _, busy_other = time_pass(name, rounds, busy=True)
        rows[name] = {"quiet": summarize(quiet), "busy": summarize(busy), "problems": problems,
                      "other_cores": {"quiet": quiet_other, "busy": busy_other}}
        for state in ("quiet", "busy"):
            cells = " ".join(f"{s}={v:.0f}" for s, v in rows[name][state]["median_us"].items())
            print(f"{name if state == 'quiet' else '':22s} {state:5s} {cells}", flush=True)
    return {"workloads": rows, "rounds": rounds, "cores": CORES, "machine": machine_info()}


def tables(report: dict) -> tuple[list[str], list[list[str]], list[str], list[list[str]]]:
    headers = ["workload", "machine", *SYSTEMS]
    rows = []
    for name, r in report["workloads"].items():
        for state in ("quiet", "busy"):
            rows.append([name, state, *(f"{r[state]['median_us'][s]:.0f}" for s in SYSTEMS)])
    sheaders = ["workload", "machine", *(f"{a} vs {b}" for a, b in SCALING)]
    srows = []
    for name, r in report["workloads"].items():
        for state in ("quiet", "busy"):
            srows.append([name, state, *(f"{r[state]['scaling'][f'{a} / {b}']:.2f}x" for a, b in SCALING)])
    return headers, rows, sheaders, srows


def markdown(report: dict, _=None) -> str:
    headers, rows, sheaders, srows = tables(report)
    m = report["machine"]
    problems = [f"- {n}: {p}" for n, r in report["workloads"].items() for p in r["problems"]]
    busy = [f"{n} {r['other_cores']['busy']:.2f}" for n, r in report["workloads"].items()
            if r["other_cores"]["busy"] is not None]
    return "\n".join([
        "# Thread scaling: one core against every core", "",
        f"From `python bench/bench_threads.py --rounds {report['rounds']}` on {cpu_text(m)}; "
        f"{versions_text(m['versions'])}. One worker process per thread count, interleaved round by "
        "round (a round: every system of the one-core worker, then every system of the all-core one, in the "
        "column order); "
        "`busy`: the same pass while another process spins on one core "
        f"(other processes' average busy cores during it: {', '.join(busy) or 'not measured'}).", "",
        "## Median µs per call", "", markdown_table(headers, rows, left=2), "",
        f"## Speedup of all {report['cores']} cores over one (median of per-round ratios)", "",
        markdown_table(sheaders, srows, left=2), "",
        *(["## Check failures", "", *problems, ""] if problems else []),
    ])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--worker"]:
        worker(argv[1], int(argv[2]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workloads", default=",".join(DEFAULT_WORKLOADS))
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args(argv)
    started = time.perf_counter()
    report = run(args.workloads.split(","), args.rounds)
    report["total_seconds"] = time.perf_counter() - started

    def text(r, _):
        headers, rows, sheaders, srows = tables(r)
        return text_table(headers, rows, left=2) + "\n\n" + text_table(sheaders, srows, left=2) + "\n"

    emit(report, None, args, text, lambda r, _: json.dumps(r, indent=2) + "\n", markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
