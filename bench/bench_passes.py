"""Measure what each mlirforge pass does to the speed of the examples.

For each example model, one process lowers it once (torch.export -> torch-mlir
-> linalg with weights bound to parameters), then builds one IREE module per
pipeline below, checks each against eager PyTorch, and times all of them
side by side (interleaved rounds) with the IREE runtime directly, so the
numbers are the modules' own cost without torch.compile's wrappers:

  baseline           the lowered module as IREE gets it by default
  outline+inline     outline kernels and inline them back (must be neutral)
  fold-transpose     mlirforge-fold-transpose-into-matmul
  channels-last      mlirforge-conv-to-channels-last
  generalize         outline, mlirforge-generalize-named-ops, inline
  tiling             outline, mlirforge-annotate-tiling (matmul kernels), inline;
                     compiled without data tiling, which would drop the tiles
                     (compare with baseline-no-dt)
  baseline-no-dt     the baseline compiled without --iree-opt-data-tiling

Run from the repository root:

    python bench/bench_passes.py [--examples mlp,cnn] [--rounds 20] [--markdown docs/passes.md]
"""

from __future__ import annotations

import argparse
import datetime
import sys
import tempfile
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PIPELINES: dict[str, tuple[str, tuple[str, ...] | None]] = {
    # name: (pipeline, iree flags; None = defaults)
    "baseline": ("", None),
    "outline+inline": ("mlirforge-outline-kernels,mlirforge-inline-kernels", None),
    "fold-transpose": ("mlirforge-fold-transpose-into-matmul", None),
    "channels-last": ("mlirforge-conv-to-channels-last", None),
    "generalize": ("mlirforge-outline-kernels,mlirforge-generalize-named-ops,mlirforge-inline-kernels", None),
    "baseline-no-dt": ("", ()),
    "tiling": (
        "mlirforge-outline-kernels,mlirforge-annotate-tiling{kernel=@matmul distribution=32,64,0 "
        "vector-common-parallel=8,32,0 vector-reduction=0,0,16},mlirforge-inline-kernels",
        (),
    ),
}


def transform(mlir: str, pipeline: str) -> str:
    from mlirforge.lowering.ir import ir
    from mlirforge.passes import KERNEL_HASH, KERNEL_ROOT, kernels, string_attr
    from mlirforge.passes import parse_pipeline, run_pipeline

    if not pipeline:
        return mlir
    with ir.Context():
        module = ir.Module.parse(mlir)
        if "kernel=@matmul" in pipeline:
            # Annotate each matmul kernel in turn (other roots have other loop counts).
            first, rest = pipeline.split(",mlirforge-annotate-tiling", 1)
            annotate, inline = rest.rsplit(",", 1)
            run_pipeline(module, parse_pipeline(first))
            for k in kernels(module):
                if string_attr(k, KERNEL_ROOT) == "linalg.matmul":
                    spec = "mlirforge-annotate-tiling" + annotate.replace("@matmul", string_attr(k, KERNEL_HASH))
                    run_pipeline(module, parse_pipeline(spec))
            run_pipeline(module, parse_pipeline(inline))
        else:
            run_pipeline(module, parse_pipeline(pipeline))
        return module.operation.get_asm()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--examples", default="mlp,cnn,transformer_block")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--inner", type=int, default=5)
    parser.add_argument("--markdown", type=Path)
    args = parser.parse_args(argv)
    os.environ.setdefault("MLIRFORGE_CACHE_DIR", tempfile.mkdtemp(prefix="mlirforge-bench-passes-"))

    import torch

    from mlirforge.kernelbench import load_model_file
    from mlirforge.lowering.iree_compile import compile_mlir
    from mlirforge.lowering.options import DEFAULT_IREE_FLAGS, LoweringOptions
    from mlirforge.lowering.runtime import IreeModule
    from mlirforge.lowering.target import host_cpu
    from mlirforge.lowering.torch_export import export_model
    from mlirforge.lowering.versions import tool_versions
    from mlirforge.numerics import compare_outputs
    from mlirforge.timing import interleaved_times, median_us

    cpu = host_cpu()
    lines = [
        "## Pass effects on the examples",
        "",
        f"- Date: {datetime.datetime.now().isoformat(timespec='seconds')}",
        f"- CPU: {cpu.model_name} ({cpu.arch}, {cpu.cores} cores, {cpu.vector_bits}-bit vectors)",
        f"- Versions: {', '.join(f'{k} {v}' for k, v in tool_versions().items())}",
        f"- Timing: IREE module called directly (local-sync), {args.rounds} interleaved rounds x {args.inner} calls; "
        "x baseline = baseline median / pipeline median",
        "",
    ]
    for name in args.examples.split(","):
        problem = load_model_file(ROOT / "examples" / f"{name}.py")
        exported = export_model(problem.model, problem.inputs, LoweringOptions())
        with torch.no_grad():
            expected = problem.model(*problem.inputs)
        runners, rows = {}, {}
        for label, (pipeline, flags) in PIPELINES.items():
            try:
                text = transform(exported.lowered.mlir, pipeline)
                changed = text != exported.lowered.mlir
                vmfb = compile_mlir(text, extra_flags=DEFAULT_IREE_FLAGS if flags is None else flags).vmfb
                module = IreeModule(vmfb, parameters=exported.parameters)
                ok, err, _ = compare_outputs(module(*problem.inputs)[0], expected)
                runners[label] = module
                rows[label] = {"ok": ok, "err": err, "changed": changed}
            except Exception as exc:  # a pass or compile failure is a row, not a crash
                rows[label] = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"}
            print(f"  {name}: {label} {rows[label]}", file=sys.stderr)
        labels = list(runners)
        samples = interleaved_times([lambda m=runners[l]: m(*problem.inputs) for l in labels], args.rounds, args.inner)
        medians = {l: median_us(s) for l, s in zip(labels, samples)}
        lines += [f"### {name}", "", "| pipeline | IR changed | check | median µs | x baseline |", "|---|---|---|---:|---:|"]
        for label in PIPELINES:
            row = rows[label]
            if "error" in row:
                lines.append(f"| {label} | – | error: {row['error']} | – | – |")
                continue
            ref = medians["baseline-no-dt" if PIPELINES[label][1] == () else "baseline"]
            lines.append(
                f"| {label} | {'yes' if row['changed'] else 'no'} | {'ok' if row['ok'] else 'FAIL'} "
                f"({row['err']:.1e}) | {medians[label]:.1f} | {ref / medians[label]:.2f} |"
            )
        lines.append("")
    text = "\n".join(lines)
    print(text)
    if args.markdown:
        args.markdown.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
