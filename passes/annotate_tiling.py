"""mlirforge-annotate-tiling: attach IREE tile sizes to kernels' root ops.

Sets `compilation_info` on the root op of the selected kernels:

    #iree_codegen.compilation_info<
      lowering_config = #iree_cpu.lowering_config<distribution = [..],
          vector_common_parallel = [..], vector_reduction = [..]>,
      translation_info = #iree_codegen.translation_info<pipeline = #iree_cpu.pipeline<P>>>

IREE's llvm-cpu codegen then uses these tiles instead of its own heuristics
(a 256x1024x1024 matmul went from 58 to 84 GFLOP/s with hand-picked tiles).
Each list needs one entry per loop of the root op (matmul: m, n, k). IREE
honours the attribute on ops it does not rewrite first: with
`--iree-opt-data-tiling` a matmul becomes an mmt4d and the annotation is
dropped, so tiling candidates are compiled without data tiling.
"""

from __future__ import annotations

import dataclasses

from mlirforge.lowering.ir import ir
from mlirforge.passes._kernels import KERNEL_ROOT, attr_str, kernels, op_name, string_attr, walk_nested
from mlirforge.passes._base import ForgePass, PassFailure

PIPELINES = ("DoubleTilingExpert", "Default", "ConvTileAndDecomposeExpert", "Mmt4dTilingExpert")

# Loop counts of named roots (their iteration spaces have no attribute to read).
_LOOPS = {
    "linalg.matmul": 3,
    "linalg.batch_matmul": 4,
    "linalg.matvec": 2,
    "linalg.vecmat": 2,
    "linalg.batch_matvec": 3,
    "linalg.dot": 1,
    "linalg.conv_2d_nchw_fchw": 7,
    "linalg.conv_2d_nhwc_hwcf": 7,
    "linalg.conv_2d_nhwc_fhwc": 7,
    "linalg.depthwise_conv_2d_nhwc_hwc": 6,
    "linalg.depthwise_conv_2d_nchw_chw": 6,
}


def loop_count(op) -> int | None:
    name = op_name(op)
    if name in _LOOPS:
        return _LOOPS[name]
    iterators = attr_str(op, "iterator_types")
    if iterators is not None:
        return iterators.count("#linalg.iterator_type") or iterators.count('"')
    return None


@dataclasses.dataclass(frozen=True)
class AnnotateTilingOptions:
    kernel: str = ""
    """Hash (or hash prefix) of the kernel to annotate; empty: every kernel."""
    distribution: tuple[int, ...] = ()
    vector_common_parallel: tuple[int, ...] = ()
    vector_reduction: tuple[int, ...] = ()
    pipeline: str = "DoubleTilingExpert"

    def __post_init__(self) -> None:
        if self.pipeline not in PIPELINES:
            raise ValueError(f"pipeline must be one of {', '.join(PIPELINES)}, got '{self.pipeline}'")
        for name in ("distribution", "vector_common_parallel", "vector_reduction"):
            if any(v < 0 for v in getattr(self, name)):
                raise ValueError(f"{name.replace('_', '-')}: tile sizes must be >= 0")


def compilation_info_text(distribution, vector_common_parallel, vector_reduction,
                          pipeline: str = "DoubleTilingExpert") -> str:
    """IREE's `#iree_codegen.compilation_info` for llvm-cpu: the three tile lists and a pipeline."""
    def lst(values) -> str:
        return "[" + ", ".join(str(v) for v in values) + "]"

    return (
        "#iree_codegen.compilation_info<lowering_config = #iree_cpu.lowering_config<"
        f"distribution = {lst(distribution)}, "
        f"vector_common_parallel = {lst(vector_common_parallel)}, "
        f"vector_reduction = {lst(vector_reduction)}>, "
        "translation_info = #iree_codegen.translation_info<pipeline = "
        f"#iree_cpu.pipeline<{pipeline}>>>"
    )


def compilation_info(options: AnnotateTilingOptions) -> str:
    return compilation_info_text(options.distribution, options.vector_common_parallel,
                                 options.vector_reduction, options.pipeline)


class AnnotateTilingPass(ForgePass):
    name = "mlirforge-annotate-tiling"
    summary = "Attach IREE compilation_info (tile sizes, pipeline) to kernels' root ops"
    Options = AnnotateTilingOptions

    def run(self, module) -> None:
        opts = self.options
        lists = {
            "distribution": opts.distribution,
            "vector-common-parallel": opts.vector_common_parallel,
            "vector-reduction": opts.vector_reduction,
        }
        if not any(lists.values()):
            raise PassFailure("no tile sizes given (distribution=..., vector-common-parallel=..., vector-reduction=...)")
        selected = [k for k in kernels(module) if (string_attr(k, "mlirforge.kernel_hash") or "").startswith(opts.kernel)]
        if opts.kernel and not selected:
            raise PassFailure(f"no kernel with hash '{opts.kernel}' in the module")
        attr = ir.Attribute.parse(compilation_info(opts))
        for kernel in selected:
            root_name = string_attr(kernel, KERNEL_ROOT)
            roots = []
            walk_nested(kernel, lambda o: roots.append(o) if op_name(o) == root_name else None)
            if not roots:
                raise PassFailure(f"kernel has no {root_name} root op", kernel.location)
            root = roots[0]
            loops = loop_count(root)
            for name, values in lists.items():
                if values and loops is not None and len(values) != loops:
                    raise PassFailure(
                        f"{name} has {len(values)} tile sizes, {root_name} has {loops} loops", root.location
                    )
            root.attributes["compilation_info"] = attr

    def schedule_space(self, module) -> dict[str, list]:
        # The values worth trying depend on shapes and the CPU; the heuristic
        # proposer derives them. Here: only which kernels can be annotated.
        return {"kernel": [string_attr(k, "mlirforge.kernel_hash") for k in kernels(module)]}
