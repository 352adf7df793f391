"""Convolutions per class (1-D/2-D/3-D, strided, dilated, 1x1, depthwise, grouped, transposed) against eager.

    python bench/bench_convs.py [--classes c2d_3x3,c1d] [--rounds 12] [--markdown docs/convolutions.md]

Each class is one `torch.nn` convolution at a CPU-sized shape. For each,
eager PyTorch (oneDNN), TorchInductor and mlirforge's default lowering with
every graph on IREE (`eager_if_faster=False`, so the figure is the lowering's,
not the choice of eager) are timed interleaved in one process
(`mlirforge.timing.interleaved_times`, rotating order). Reported per system:
median µs, GFLOP/s (2 x multiply-adds per call) and % of the CPU's fp32 peak
(derived from the CPU at run time, `bench/machine.py`), and x eager with a
95% paired-bootstrap CI over rounds. The machine's load is sampled; a busy
machine is said so.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import statistics
import sys
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import cpu_text, machine_info, versions_text  # noqa: E402
from mlirforge.benchmarking import OtherCpu, calls_per_sample, paired_bootstrap, per_call_s  # noqa: E402
from mlirforge.numerics import check_against_eager  # noqa: E402
from mlirforge.timing import interleaved_times  # noqa: E402


@dataclasses.dataclass(frozen=True)
class ConvClass:
    name: str
    describe: str
    make: Callable[[], nn.Module]
    shape: tuple[int, ...]

    def flops(self, model: nn.Module, out: torch.Tensor) -> float:
        """2 x multiply-adds: every output element sums (C_in / groups) x kernel taps products.

        A transposed convolution is counted by its input: every input element
        scatters into C_out / groups x kernel taps outputs.
        """
        conv = model
        taps = math.prod(conv.kernel_size)
        if isinstance(conv, nn.ConvTranspose2d):
            return 2.0 * math.prod(self.shape) * conv.out_channels // conv.groups * taps
        return 2.0 * out.numel() * conv.in_channels // conv.groups * taps


CLASSES = (
    ConvClass("c2d_3x3", "Conv2d 32->64, 3x3, padding 1; 8x32x32x32", lambda: nn.Conv2d(32, 64, 3, padding=1),
              (8, 32, 32, 32)),
    ConvClass("c2d_3x3_64", "Conv2d 64->64, 3x3, padding 1; 4x64x28x28", lambda: nn.Conv2d(64, 64, 3, padding=1),
              (4, 64, 28, 28)),
    ConvClass("c2d_1x1", "Conv2d 64->128, 1x1; 8x64x32x32", lambda: nn.Conv2d(64, 128, 1), (8, 64, 32, 32)),
    ConvClass("c2d_strided", "Conv2d 32->64, 3x3, stride 2, padding 1; 8x32x64x64",
              lambda: nn.Conv2d(32, 64, 3, stride=2, padding=1), (8, 32, 64, 64)),
    ConvClass("c2d_dilated", "Conv2d 32->64, 3x3, dilation 2, padding 2; 8x32x32x32",
              lambda: nn.Conv2d(32, 64, 3, padding=2, dilation=2), (8, 32, 32, 32)),
    ConvClass("depthwise", "Conv2d 64->64, 3x3, groups 64, padding 1; 8x64x32x32",
              lambda: nn.Conv2d(64, 64, 3, padding=1, groups=64), (8, 64, 32, 32)),
    ConvClass("grouped", "Conv2d 64->64, 3x3, groups 4, padding 1; 8x64x32x32",
              lambda: nn.Conv2d(64, 64, 3, padding=1, groups=4), (8, 64, 32, 32)),
    ConvClass("c1d", "Conv1d 64->64, k 3, padding 1; 16x64x512", lambda: nn.Conv1d(64, 64, 3, padding=1),
              (16, 64, 512)),
    ConvClass("c3d", "Conv3d 16->32, 3x3x3, padding 1; 2x16x16x16x16", lambda: nn.Conv3d(16, 32, 3, padding=1),
              (2, 16, 16, 16, 16)),
    ConvClass("transposed", "ConvTranspose2d 32->16, 4x4, stride 2, padding 1; 8x32x16x16",
              lambda: nn.ConvTranspose2d(32, 16, 4, stride=2, padding=1), (8, 32, 16, 16)),
)
SYSTEMS = ("eager", "inductor", "mlirforge[iree-only]")


def measure(cls: ConvClass, rounds: int) -> dict:
    torch.manual_seed(0)
    model = cls.make().eval()
    x = torch.randn(*cls.shape)
    fns: list[Callable] = [model]
    checks = {"eager": "ok"}
    for system in SYSTEMS[1:]:
        torch._dynamo.reset()
        if system == "inductor":
            compiled = torch.compile(model)
        else:
            compiled = torch.compile(model, backend="mlirforge", options={"eager_if_faster": False})
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            check = check_against_eager(compiled, model, [x])
        checks[system] = "ok" if check.ok else f"mismatch: {check.message}"
        fns.append(compiled)
    with torch.no_grad():
        out = model(x)
        calls = calls_per_sample(per_call_s(lambda: model(x), statistic=min), 3e-3)
        samples = interleaved_times([lambda f=f: f(x) for f in fns], rounds=rounds, inner=calls, warmup=2)
    flops = cls.flops(model, out)
    row = {"flops": flops, "systems": {}}
    for system, s in zip(SYSTEMS, samples):
        median = statistics.median(s)
        low, high = paired_bootstrap(samples[0], s)
        row["systems"][system] = {"median_us": median * 1e6, "gflops": flops / median / 1e9,
                                  "x_eager": statistics.median(samples[0]) / median, "ci": (low, high),
                                  "check": checks[system]}
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", default=",".join(c.name for c in CLASSES))
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args(argv)
    known = {c.name: c for c in CLASSES}
    names = args.classes.split(",")
    unknown = [n for n in names if n not in known]
    if unknown:
        parser.error(f"unknown class(es) {unknown}; known: {', '.join(known)}")
    machine = machine_info()
    peak = machine["cpu"]["peak_gflops"]
    rows = {}
    with OtherCpu() as other_cpu:
        for n in names:
            rows[n] = r = measure(known[n], args.rounds)
            cells = "  ".join(f"{s} {v['median_us']:.0f}us {v['x_eager']:.2f}x {v['gflops']:.0f}GF/s"
                              for s, v in r["systems"].items())
            print(f"{n:12s} {cells}", flush=True)
    busy_note = None
    if other_cpu.cores is not None and other_cpu.cores > 0.25:
        busy_note = f"the machine was busy: other processes used {other_cpu.cores:.2f} cores on average"
        print(f"warning: {busy_note}", file=sys.stderr)
    if args.markdown:
        lines = [
            "# Convolutions per class",
            "",
            f"From `python bench/bench_convs.py --rounds {args.rounds}` on {cpu_text(machine)}; "
            f"{versions_text(machine['versions'])}; {machine['date']}.",
            "",
            f"fp32 peak: {machine['cpu']['formula']} (all cores; one core is 1/{machine['cpu']['cores']} of it).",
            "",
        ]
        if busy_note:
            lines += [f"**Warning:** {busy_note}; ratios against eager are unreliable.", ""]
        lines += ["| class | shape | " + " | ".join(f"{s} µs | {s} GFLOP/s (% peak)" for s in SYSTEMS)
                  + " | mlirforge x eager (95% CI) | inductor x eager |",
                  "|---|---|" + "---:|---:|" * len(SYSTEMS) + "---:|---:|"]
        for n in names:
            r = rows[n]
            cells = []
            for s in SYSTEMS:
                v = r["systems"][s]
                bad = "" if v["check"] == "ok" else " (mismatch)"
                cells += [f"{v['median_us']:.0f}{bad}", f"{v['gflops']:.0f} ({100 * v['gflops'] / peak:.0f}%)"]
            m, i = r["systems"]["mlirforge[iree-only]"], r["systems"]["inductor"]
            cells += [f"{m['x_eager']:.2f} ({m['ci'][0]:.2f}-{m['ci'][1]:.2f})", f"{i['x_eager']:.2f}"]
            lines.append(f"| {n} | {known[n].describe} | " + " | ".join(cells) + " |")
        args.markdown.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
