"""Time an optimised artifact against eager PyTorch and its unoptimised build.

Run in a fresh process (`python -m mlirforge.measure MODEL.py ARTIFACT/`) by
`mlirforge optimize`: the process that exported and searched has torch-mlir's
and MLIR's worker threads and PyTorch's OpenMP state around, which slowed
IREE's thread-pool driver by up to 2x in measurements and would misstate
what the artifact does in a user's process. Prints one JSON object.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def measure(model_file: str, artifact_dir: str, rounds: int = 20, inner: int = 10) -> dict:
    import torch

    from mlirforge.artifact import load
    from mlirforge.kernelbench import load_model_file
    from mlirforge.lowering.iree_compile import ModuleCache, compile_mlir
    from mlirforge.lowering.runtime import load_module
    from mlirforge.numerics import check_against_eager
    from mlirforge.timing import interleaved_times, median_us

    from mlirforge.lowering.errors import UserError

    problem = load_model_file(model_file)
    artifact = load(artifact_dir)
    if artifact.manifest.optimization is None:
        raise UserError(f"{artifact_dir}: not an optimised artifact (no baseline to time it against)")
    base = artifact.manifest.optimization.baseline
    baseline = compile_mlir((Path(artifact_dir) / base.mlir).read_text(), "auto", base.iree_flags, ModuleCache())
    params = artifact.manifest.parameters
    unopt = load_module(baseline.vmfb, driver=base.driver, parameters=None if params else (),
                       archive=Path(artifact_dir) / params if params else None, copy_inputs=baseline.copy_inputs())
    model, inputs = problem.model, problem.inputs
    order = artifact.manifest.module_inputs
    from mlirforge.benchmarking import OtherCpu, paired_ratio

    with torch.no_grad():
        check = check_against_eager(artifact, model, inputs)
        ok, err, msg = check.ok, check.max_abs_error, check.message
        with OtherCpu() as other:  # a neighbour on the cores skews eager (all cores) far more than IREE
            samples = interleaved_times(
                [lambda: model(*inputs), lambda: unopt(*[inputs[i] for i in order]), lambda: artifact(*inputs)],
                rounds=rounds, inner=inner,
            )

    eager, unoptimized, optimized = (median_us(s) for s in samples)

    return {"matches_eager": ok, "max_abs_error": err, "message": msg, "eager_us": eager,
            "unoptimized_us": unoptimized, "optimized_us": optimized,
            "vs_unoptimized": list(paired_ratio(samples[1], samples[2])),
            "vs_eager": list(paired_ratio(samples[0], samples[2])),
            "other_cpu_share": other.share}


def measure_in_subprocess(model_file: str | Path, artifact_dir: str | Path, timeout_s: float = 300) -> dict:
    """Run `measure` in a fresh process; raises UserError (one line, naming the artifact) if it fails."""
    from mlirforge.lowering.errors import UserError

    try:
        proc = subprocess.run([sys.executable, "-m", "mlirforge.measure", str(model_file), str(artifact_dir)],
                              capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        raise UserError(f"{artifact_dir}: timing the artifact took longer than {timeout_s:.0f} s") from None
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
        raise UserError(f"{artifact_dir}: timing the artifact in a fresh process failed: {last}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    import warnings

    warnings.filterwarnings("ignore")
    print(json.dumps(measure(sys.argv[1], sys.argv[2])))
