"""mlirforge-tile-reductions: several vector accumulators for min/max reductions.

IREE's llvm-cpu codegen tiles an innermost reduction by one vector
(`vector_reduction = [0, .., lanes]`): one accumulator, so every step waits
for the one before. For an addition the wait hides behind memory, but a
NaN-propagating maximum is four dependent instructions per step (vmaxps,
vcmpunordps, vpternlogd, a masked move). Measured with `iree-benchmark-module`
on one core (AMD Zen 5, AVX-512, 2026-12-02): `amax` over 256x4096 fp32 took
150 us with IREE's tiles and 55 us with four vectors, as fast as a `sum` of
the same tensor (51 us, bound by reading it); a values-only `max.dim`, two
such reductions, went from 383 to 154 us.

This pass sets `compilation_info` on each `linalg.generic` that IREE would
make the root of a reduction dispatch and whose combiner is a minimum or a
maximum (every result that is read is a min/max of its own accumulator; a
running index that is read, or a max inside a sum, does not qualify): all
loops parallel but the innermost, a reduction over a static
extent that `ACCUMULATORS` vectors divide, at most three parallel loops
(IREE distributes three). The parallel tiles follow IREE's own choice for
such reductions (eight rows per vector tile, about eight workgroups), so only
the reduction tile changes. Ops that already carry `compilation_info` or a
`lowering_config` (kernel candidates) are left alone. Sums and means are not
touched: with IREE's tiles they already run at the speed of reading their input.
"""

from __future__ import annotations

import dataclasses

from mlirforge.lowering.ir import ir
from mlirforge.passes._base import ForgePass
from mlirforge.passes.annotate_tiling import compilation_info_text
from mlirforge.passes._kernels import attr_str, op_name, walk_nested

# Vectors in flight along the reduction: enough to cover the 4-instruction chain.
ACCUMULATORS = 4
# IREE's tiles for the parallel loop of a row reduction (read from its configured dispatches).
ROWS_PER_VECTOR_TILE = 8
WORKGROUPS = 8
MAX_PARALLEL_LOOPS = 3

_MIN_MAX_OPS = frozenset({
    "arith.maximumf", "arith.minimumf", "arith.maxnumf", "arith.minnumf",
    "arith.maxsi", "arith.minsi", "arith.maxui", "arith.minui",
})


@dataclasses.dataclass(frozen=True)
class TileReductionsOptions:
    vector_bits: int = 0
    """Width of the target's vector registers in bits (64-2048, a power of two); 0: the host CPU's
    (`lowering.target.host_cpu`), which the default compile stage uses whatever `--iree-llvmcpu-target-cpu`
    says: the tiles then fit the host, and a narrower target only gets longer vector tiles."""

    def __post_init__(self) -> None:
        bits = self.vector_bits
        if bits != 0 and (bits < 64 or bits > 2048 or bits & (bits - 1)):
            raise ValueError(f"vector-bits must be 0 (the host's) or a power of two from 64 to 2048, got {bits}")


@dataclasses.dataclass(frozen=True)
class ReductionShape:
    parallel: tuple[int, ...]
    reduction: int
    element_bits: int


def _static_shape(value) -> tuple[list[int], int] | None:
    """Shape and element width of a ranked tensor value with static dims and an int/float element."""
    ty = value.type
    if not isinstance(ty, ir.RankedTensorType) or not ty.has_static_shape:
        return None
    element = ty.element_type
    if isinstance(element, ir.IntegerType | ir.FloatType):
        bits = element.width
    else:
        return None
    return list(ty.shape), bits


def min_max_row_reduction(op) -> ReductionShape | None:
    """The loop extents of `op` if it is a min/max reduction over its innermost loop only, else None."""
    if op_name(op) != "linalg.generic":
        return None
    iterators = attr_str(op, "iterator_types") or ""
    kinds = ["reduction" if "reduction" in part else "parallel" for part in iterators.strip("[]").split(",")]
    if not kinds or kinds[-1] != "reduction" or "reduction" in kinds[:-1]:
        return None
    if len(kinds) - 1 > MAX_PARALLEL_LOOPS:
        return None
    generic = op.operation
    n_inputs = len(generic.operands) - len(generic.results)
    if n_inputs < 1:
        return None
    # The first input is read with the identity map, so its shape is the iteration space.
    maps = ir.ArrayAttr(generic.attributes["indexing_maps"])
    first_map = ir.AffineMapAttr(maps[0]).value
    if not (first_map.n_dims == len(kinds) and ir.AffineMap.get_identity(len(kinds)) == first_map):
        return None
    shape = _static_shape(generic.operands[0])
    if shape is None or len(shape[0]) != len(kinds):
        return None
    if not _combines_by_min_max(generic, n_inputs):
        return None
    dims, bits = shape
    return ReductionShape(tuple(dims[:-1]), dims[-1], bits)


def _combines_by_min_max(generic, n_inputs: int) -> bool:
    """Each result that is read is a minimum or maximum of its own accumulator and a value.

    A sum of relus (a max inside, an add as the combiner) is not one; nor is torch-mlir's
    index-tracking argmax when its index result is read (a select carries the index). The dead
    index result torch-mlir gives every `amax` does not count.
    """
    block = generic.regions[0].blocks[0]
    yields = list(block.operations)[-1].operands
    read = [i for i, result in enumerate(generic.results) if any(True for _ in result.uses)]
    if not read:
        return False
    for i in read:
        owner = yields[i].owner
        if not isinstance(owner, ir.Operation | ir.OpView) or owner.operation.name not in _MIN_MAX_OPS:
            return False
        accumulator = block.arguments[n_inputs + i]
        if not any(operand == accumulator for operand in owner.operation.operands):
            return False
    return True


def _tiles(shape: ReductionShape, vector_bits: int) -> tuple[list[int], list[int], list[int]] | None:
    lanes = max(1, vector_bits // shape.element_bits)
    chunk = lanes * ACCUMULATORS
    if shape.reduction % chunk:
        return None
    parallel = list(shape.parallel)
    vector = [1] * len(parallel)
    distribution = [1] * len(parallel)
    if parallel:
        rows = parallel[-1]
        per_tile = ROWS_PER_VECTOR_TILE if rows % ROWS_PER_VECTOR_TILE == 0 else 1
        vector[-1] = per_tile
        # About WORKGROUPS workgroups over the innermost parallel loop, a multiple of the vector tile.
        distribution[-1] = max(per_tile, (rows // WORKGROUPS) // per_tile * per_tile)
    return distribution + [0], vector + [0], [0] * len(parallel) + [chunk]


class TileReductionsPass(ForgePass):
    name = "mlirforge-tile-reductions"
    summary = "Give min/max row reductions several vector accumulators (IREE compilation_info)"
    Options = TileReductionsOptions

    def run(self, module) -> None:
        bits = self.options.vector_bits
        if bits <= 0:
            from mlirforge.lowering.target import host_cpu

            bits = host_cpu().vector_bits
        found: list = []

        def visit(op) -> None:
            attrs = op.operation.attributes
            if "compilation_info" in attrs or "lowering_config" in attrs:
                return
            shape = min_max_row_reduction(op)
            if shape is not None:
                found.append((op, shape))

        walk_nested(module.operation, visit)
        for op, shape in found:
            tiles = _tiles(shape, bits)
            if tiles is not None:
                op.operation.attributes["compilation_info"] = ir.Attribute.parse(compilation_info_text(*tiles))


def tile_reductions(mlir_text: str, debug_info: bool = False) -> str:
    """The compile stage `tile-reductions` (`lowering.stages`): the pass on MLIR text, text back.

    Raises `LoweringError` (stage `tile-reductions`, with a reproducer) when
    the text does not parse or the result does not verify.
    """
    from mlirforge.passes._base import run_as_compile_stage

    return run_as_compile_stage("tile-reductions", TileReductionsPass(), mlir_text, debug_info, triggers=_MIN_MAX_OPS)
