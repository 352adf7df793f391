"""The Python API behind the driver: compile a model or an MLIR file."""

from __future__ import annotations

import dataclasses
import logging
import time
from pathlib import Path

import torch

from mlirforge.artifact import atomic_write_bytes, load, tensor_spec, write_artifact
from mlirforge.config import CompileConfig
from mlirforge.kernelbench import load_model_file
from mlirforge.lowering.errors import UserError
from mlirforge.lowering.iree_compile import ModuleCache, compile_mlir
from mlirforge.lowering.target import host_cpu
from mlirforge.lowering.torch_export import export_model
from mlirforge.lowering.versions import tool_versions
from mlirforge.numerics import compare_outputs
from mlirforge.timing import interleaved_times, median_us

log = logging.getLogger("mlirforge")


@dataclasses.dataclass
class CompileSummary:
    artifact: Path
    compile_seconds: float
    module_cached: bool
    parameters: int
    parameter_bytes: int
    max_abs_error: float | None = None
    matches_eager: bool | None = None
    eager_us: float | None = None
    compiled_us: float | None = None

    def lines(self) -> list[str]:
        out = [
            f"artifact      {self.artifact}",
            f"compile       {self.compile_seconds:.2f} s"
            + (" (module cache hit)" if self.module_cached else ""),
            f"parameters    {self.parameters} tensors, {self.parameter_bytes / 1e6:.2f} MB",
        ]
        if self.matches_eager is not None:
            verdict = "matches eager" if self.matches_eager else "DOES NOT match eager"
            out.append(f"check         {verdict} (max abs error {self.max_abs_error:.3g})")
        if self.eager_us is not None and self.compiled_us is not None:
            out.append(
                f"time/call     eager {self.eager_us:.1f} us, mlirforge {self.compiled_us:.1f} us "
                f"({self.eager_us / self.compiled_us:.2f}x eager)"
            )
        return out


def compile_model(
    model: torch.nn.Module,
    inputs: list,
    out_dir: str | Path,
    config: CompileConfig = CompileConfig(),
    source: str | None = None,
    verify: bool = True,
    time_it: bool = True,
) -> CompileSummary:
    """Compile `model(*inputs)` into an artifact directory.

    With `verify`, the written artifact is loaded and compared with eager
    PyTorch; with `time_it`, both are timed side by side. Raises UserError /
    LoweringError (the latter naming ops that cannot be lowered).
    """
    start = time.perf_counter()
    opts = config.lowering
    exported = export_model(model, inputs, opts)
    low = exported.lowered
    cache = ModuleCache() if opts.use_cache else None
    result = compile_mlir(low.mlir, opts.form, opts.iree_flags, cache)
    user_index = {pos: i for i, pos in enumerate(exported.user_positions)}
    out_plan = []
    for kind, value in low.out_plan:
        if kind == "input":
            if value not in user_index:
                raise UserError("the model returns one of its weights unchanged; artifacts cannot")
            value = user_index[value]
        out_plan.append([kind, value])
    import torch.utils._pytree as pytree

    manifest = {
        "entry": "main",
        "driver": opts.driver,
        "source": source,
        "inputs": [tensor_spec(t) for t in inputs],
        "module_inputs": [user_index[p] for p in low.input_positions],
        "out_plan": out_plan,
        "out_spec": pytree.treespec_dumps(low.out_spec),
        "parameter_names": exported.parameter_names,
        "compile": {
            "form": opts.form,
            "iree_flags": list(opts.iree_flags),
            "module_key": result.key,
            "seconds": round(result.seconds, 3),
        },
        "tool_versions": tool_versions(),
        "target": host_cpu().describe(),
        "rewrites": [],
    }
    out = write_artifact(Path(out_dir), result.vmfb, exported.parameters, manifest, {"module.mlir": low.mlir})
    summary = CompileSummary(
        artifact=out,
        compile_seconds=time.perf_counter() - start,
        module_cached=result.cached,
        parameters=len(exported.parameters),
        parameter_bytes=sum(p.numel() * p.element_size() for p in exported.parameters),
    )
    if verify or time_it:
        artifact = load(out)
        with torch.no_grad():
            expected = model(*inputs)
            actual = artifact(*inputs)
            if verify:
                ok, err, _ = compare_outputs(actual, expected)
                summary.matches_eager, summary.max_abs_error = ok, err
            if time_it:
                eager_t, ours_t = interleaved_times([lambda: model(*inputs), lambda: artifact(*inputs)])
                summary.eager_us, summary.compiled_us = median_us(eager_t), median_us(ours_t)
    return summary


def compile_model_file(path: str | Path, out_dir: str | Path, config: CompileConfig = CompileConfig(), **kw) -> CompileSummary:
    """`mlirforge compile model.py -o out/`: a KernelBench-format file to an artifact."""
    problem = load_model_file(path)
    return compile_model(problem.model, problem.inputs, out_dir, config, source=str(path), **kw)


def compile_mlir_file(path: str | Path, out_path: str | Path, config: CompileConfig = CompileConfig()) -> float:
    """`mlirforge compile in.mlir -o out.vmfb`; returns seconds spent.

    Diagnostics name `path` (`file:line:col: error: ...`); nothing is written
    unless compilation succeeds.
    """
    path, out_path = Path(path), Path(out_path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"{path}: cannot read: {exc}") from None
    opts = config.lowering
    cache = ModuleCache() if opts.use_cache else None
    result = compile_mlir(text, "auto", opts.iree_flags, cache, source_name=str(path))
    atomic_write_bytes(out_path, result.vmfb)
    return result.seconds
