"""Which kernels the search-efficiency bench measures, and the candidate space it sweeps for each.

A kernel is named `WORKLOAD:ROOT[:RANK]`: the RANK-th biggest (by flops) kernel
rooted at ROOT in the lowered model of a suite workload (`bench/workloads.py`).
"""

from __future__ import annotations

import dataclasses
import warnings

import workloads as W


@dataclasses.dataclass(frozen=True)
class KernelSpec:
    """The `rank`-th biggest (by flops) kernel whose root op is `root`, in workload `workload`."""

    workload: str
    root: str
    rank: int = 0

    @property
    def label(self) -> str:
        return f"{self.workload}:{self.root.removeprefix('linalg.')}:{self.rank}"

    @classmethod
    def parse(cls, text: str) -> KernelSpec:
        parts = text.split(":")
        if len(parts) not in (2, 3) or parts[0] not in W.BY_NAME:
            raise ValueError(
                f"kernel spec '{text}': expected WORKLOAD:ROOT[:RANK] with a workload from "
                f"{', '.join(W.BY_NAME)}"
            )
        root = parts[1] if parts[1].startswith("linalg.") else f"linalg.{parts[1]}"
        return cls(parts[0], root, int(parts[2]) if len(parts) == 3 else 0)


DEFAULT_KERNELS = (
    "mlp:matmul:0",
    "transformer:matmul:0",
    "transformer:batch_matmul:0",
    "transformer:batch_matmul:1",
)
QUICK_KERNELS = ("mlp:matmul:0",)


def lowered_kernels(workload: str):
    """The profiled kernels of a workload's lowered model, hottest first."""
    from mlirforge.llm_rewrite.evaluate import EvalSettings
    from mlirforge.llm_rewrite.kernels import extract_kernels
    from mlirforge.llm_rewrite.profiling import profile_kernels
    from mlirforge.lowering.options import LoweringOptions
    from mlirforge.lowering.torch_export import export_model

    model, inputs = W.get(workload).build()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.export's own deprecations
        exported = export_model(model, inputs, LoweringOptions())
    _, kernels = extract_kernels(exported.lowered.mlir)
    return profile_kernels(kernels, list(EvalSettings().base_flags))


def kernel_flops(kernel) -> int:
    out = kernel.outputs[0].shape if kernel.outputs else ()
    n = 1
    for d in out:
        n *= d
    return 2 * n * kernel.reduction_depth


def pick(kernels, spec: KernelSpec):
    """Kernels with the root op, biggest (flops) first: a stable order, unlike measured times."""
    same = sorted(
        (k for k in kernels if k.root == spec.root), key=lambda k: (-kernel_flops(k), k.hash)
    )
    if spec.rank >= len(same):
        roots = sorted({k.root for k in kernels})
        raise ValueError(
            f"{spec.workload} has {len(same)} kernel(s) rooted at {spec.root} (roots: {', '.join(roots)})"
        )
    return same[spec.rank]


def sweep_space(proposer, kernel, cap: int) -> tuple[list, int]:
    """(candidates to sweep, size of the whole space): pipelines + an even subsample of the tiles."""
    pipelines, tilings = proposer._pipelines(kernel), proposer._tilings(kernel)
    total = len(pipelines) + len(tilings)
    room = max(0, cap - len(pipelines)) if cap else len(tilings)
    if room < len(tilings):
        picks = (
            sorted({round(i * (len(tilings) - 1) / max(1, room - 1)) for i in range(room)})
            if room
            else []
        )
        tilings = [tilings[i] for i in picks]
    return pipelines + tilings, total
