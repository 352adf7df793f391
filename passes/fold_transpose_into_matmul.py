"""mlirforge-fold-transpose-into-matmul: read transposed matmul operands through indexing maps.

torch-mlir lowers `nn.Linear` to `linalg.transpose(W) permutation = [1, 0]`
feeding `linalg.matmul`, and `x @ y.transpose(-1, -2)` to a transpose feeding
`linalg.batch_matmul`. When an input of `linalg.matmul` / `linalg.batch_matmul`
comes from a `linalg.transpose` that swaps its last two dims, the contraction
reads the untransposed tensor instead, through the transposed indexing map
(`linalg.matmul indexing_maps = [...]`, a matmul with transposed B). The op
keeps its body, element types and `cast`, so integer and mixed-precision
matmuls fold like float ones. A transpose left without users is erased, and
so is its `tensor.empty` init when nothing else uses it.

Why: the transpose otherwise materialises a full copy of the operand (for
`nn.Linear`, of the weight, on every call when the weights are arguments),
and IREE's CPU codegen and data tiling pack a transposed operand directly.
`operands` restricts the fold to one side: which of A or B is better read
transposed depends on the shapes, so the search can weigh it.
"""

from __future__ import annotations

import dataclasses

from mlirforge.lowering.ir import ir
from mlirforge.passes._kernels import op_name, owner_op, walk_nested
from mlirforge.passes._base import ForgePass

_CONTRACTIONS = ("linalg.matmul", "linalg.batch_matmul")
_SIDES = {"both": (0, 1), "lhs": (0,), "rhs": (1,)}


@dataclasses.dataclass(frozen=True)
class FoldTransposeIntoMatmulOptions:
    operands: str = "both"
    """Which inputs to fold a transpose into: `both`, `lhs` (A) or `rhs` (B)."""

    def __post_init__(self) -> None:
        if self.operands not in _SIDES:
            raise ValueError(f"operands must be one of {', '.join(_SIDES)} (got '{self.operands}')")


def swaps_last_two(permutation: list[int]) -> bool:
    """True for [1, 0], [0, 2, 1], [0, 1, 3, 2], ...: identity but for the last two dims."""
    n = len(permutation)
    return n >= 2 and permutation == [*range(n - 2), n - 1, n - 2]


def _permutation(transpose) -> list[int]:
    return list(ir.DenseI64ArrayAttr(transpose.operation.attributes["permutation"]))


def _maps(matmul) -> list:
    attr = ir.ArrayAttr(matmul.operation.attributes["indexing_maps"])
    return [ir.AffineMapAttr(a).value for a in attr]


def _foldable(matmul, index: int):
    """The `linalg.transpose` feeding input `index` of `matmul` if it can be folded, else None.

    A broadcast operand (`batch_matmul` reading a 2-D A or B) is skipped: the
    ops accept a broadcast map or a transposed one, not both at once.
    """
    producer = owner_op(matmul.operation.operands[index])
    if producer is None or op_name(producer) != "linalg.transpose":
        return None
    maps = _maps(matmul)
    if len(maps[index].results) != len(maps[-1].results):
        return None
    return producer if swaps_last_two(_permutation(producer)) else None


def _through_transpose(operand_map: "ir.AffineMap", permutation: list[int]) -> "ir.AffineMap":
    """The map reading the transpose's input where `operand_map` read its result.

    Dim i of a `linalg.transpose` result is dim permutation[i] of its input,
    so the input's dim permutation[i] takes the index expression of result dim i.
    """
    results = list(operand_map.results)
    composed = [None] * len(results)
    for i, p in enumerate(permutation):
        composed[p] = results[i]
    return ir.AffineMap.get(operand_map.n_dims, operand_map.n_symbols, composed)


class FoldTransposeIntoMatmulPass(ForgePass):
    name = "mlirforge-fold-transpose-into-matmul"
    summary = "Fold last-two-dims transposes of matmul/batch_matmul inputs into their indexing maps"
    Options = FoldTransposeIntoMatmulOptions

    def run(self, module) -> None:
        for matmul in self._matmuls(module):
            for index in _SIDES[self.options.operands]:
                transpose = _foldable(matmul, index)
                if transpose is not None:
                    self._fold(matmul, index, transpose)

    def schedule_space(self, module) -> dict[str, list]:
        sides = {i for m in self._matmuls(module) for i in (0, 1) if _foldable(m, i) is not None}
        return {"operands": ["both", "lhs", "rhs"]} if sides == {0, 1} else {}

    @staticmethod
    def _matmuls(module) -> list:
        found: list = []
        walk_nested(module, lambda o: found.append(o) if op_name(o) in _CONTRACTIONS else None)
        return found

    @staticmethod
    def _fold(matmul, index: int, transpose) -> None:
        # The named op's body does not depend on its maps, so the rewrite is
        # in place: new operand and new map, same op, location and attributes.
        op = matmul.operation
        maps = _maps(matmul)
        maps[index] = _through_transpose(maps[index], _permutation(transpose))
        op.attributes["indexing_maps"] = ir.ArrayAttr.get([ir.AffineMapAttr.get(m) for m in maps])
        op.operands[index] = transpose.operation.operands[0]
        _erase_if_dead(transpose.operation)


def _unused(op) -> bool:
    return not any(True for r in op.results for _ in r.uses)


def _erase_if_dead(transpose) -> None:
    """Erase a transpose nothing uses any more, and its `tensor.empty` init if that is dead too."""
    if not _unused(transpose):
        return
    init = owner_op(transpose.operands[1])
    transpose.erase()
    if init is not None and op_name(init) == "tensor.empty" and _unused(init.operation):
        init.operation.erase()
