"""One MLIR kernel (linalg on tensors, elementwise) as z3 formulas: each output element over input elements.

What is translated, and why the input variables are one per (argument, index expression),
is the package docstring's; the scalar ops' semantics are `scalar_ops`.
"""

from __future__ import annotations

import z3

from mlirforge.llm_rewrite.formal.result import NotApplicable
from mlirforge.llm_rewrite.formal.scalar_ops import _EXACT, _ROUNDED, _rounded, _scalar_const
from mlirforge.llm_rewrite.formal.sorts import _fp, _sort
from mlirforge.lowering.ir import ir

MAX_SCALAR_OPS = 400
"""Scalar operations per kernel (after following chains) beyond which the check is not attempted."""
_GENERALIZE = "builtin.module(func.func(convert-elementwise-to-linalg, linalg-generalize-named-ops))"
_ELEMENTWISE_LINALG = {"linalg.generic", "linalg.fill", "linalg.copy", "linalg.transpose", "linalg.broadcast",
                       "linalg.map", "linalg.elementwise", "linalg.yield"}


def _element_type(t) -> str:
    """`f32` for tensor<4xf32> and for f32."""
    return str(ir.RankedTensorType(t).element_type) if _is_tensor(t) else str(t)


def _is_tensor(t) -> bool:
    try:
        ir.RankedTensorType(t)
        return True
    except ValueError:
        return False


def _main_function(module):
    funcs = [op for op in module.body.operations if op.operation.name == "func.func"]
    public = [f for f in funcs if "sym_visibility" not in f.operation.attributes]
    if len(public) != 1:
        raise NotApplicable(f"expected one public func.func, found {len(public)}")
    return public[0]


class _Inputs:
    """The element variables both kernels read: one per (argument, index expression)."""

    def __init__(self, dtypes: list[str], ctx: z3.Context):
        self.dtypes, self.ctx = dtypes, ctx
        self.vars: dict[tuple[int, tuple], z3.ExprRef] = {}

    def get(self, arg: int, idx: tuple) -> z3.ExprRef:
        key = (arg, idx)
        if key not in self.vars:
            self.vars[key] = z3.Const(f"arg{arg}[{','.join(map(str, idx))}]", _sort(self.dtypes[arg], self.ctx))
        return self.vars[key]

    def by_argument(self) -> dict[int, list[z3.ExprRef]]:
        out: dict[int, list[z3.ExprRef]] = {}
        for (arg, _), v in sorted(self.vars.items(), key=lambda kv: (kv[0][0], str(kv[0][1]))):
            out.setdefault(arg, []).append(v)
        return out

    def constant_tensors(self) -> list[z3.BoolRef]:
        """Every element of an argument equal: the inputs a counter-example may use."""
        return [v == vs[0] for vs in self.by_argument().values() for v in vs[1:]]


class _Kernel:
    """One kernel's outputs as z3 formulas over the shared input variables."""

    def __init__(self, func, inputs: _Inputs, side: str):
        self.inputs, self.side, self.ctx = inputs, side, inputs.ctx
        self.rounded: list[tuple[str, z3.ExprRef, tuple]] = []  # (op, result, operands) of every rounded op
        self.choices: list[tuple[z3.BoolRef, z3.BoolRef]] = []  # (free tie choice, the maximumf-like choice)
        self.count = 0
        self._memo: dict = {}
        self._bodies: dict = {}
        block = func.operation.regions[0].blocks[0]
        for op in block.operations:
            name = op.operation.name
            if name not in ("arith.constant", "tensor.empty", "linalg.generic", "func.return"):
                raise NotApplicable(f"{name} is not an elementwise op")
        ret = list(block.operations)[-1]
        if not len(ret.operation.operands):
            raise NotApplicable("the function returns nothing")
        self.outputs: list[tuple[z3.ExprRef, str]] = []
        for value in ret.operation.operands:
            shape = list(ir.RankedTensorType(value.type).shape)
            idx = tuple(0 if s == 1 else f"d{k}" for k, s in enumerate(shape))
            self.outputs.append((self.at(value, idx), _element_type(value.type)))

    # tensors

    def at(self, value, idx: tuple) -> z3.ExprRef:
        """The element of tensor `value` at index expressions `idx`."""
        key = (value, idx)
        if key not in self._memo:
            self._memo[key] = self._at(value, idx)
        return self._memo[key]

    def _at(self, value, idx: tuple) -> z3.ExprRef:
        owner = value.owner
        if isinstance(owner, ir.Block):
            return self.inputs.get(ir.BlockArgument(value).arg_number, idx)
        name = owner.operation.name
        if name == "arith.constant":
            return self.constant(owner)
        if name == "linalg.generic":
            return self.generic(owner.operation, ir.OpResult(value).result_number, idx)
        if name == "tensor.empty":
            raise NotApplicable("a tensor.empty is read: its contents are undefined")
        raise NotApplicable(f"{name} is not supported")

    def generic(self, op, r: int, idx: tuple) -> z3.ExprRef:
        attrs = op.attributes
        if any("parallel" not in str(a) for a in ir.ArrayAttr(attrs["iterator_types"])):
            raise NotApplicable("a linalg.generic with reduction iterators: not elementwise")
        maps = [ir.AffineMapAttr(a).value for a in ir.ArrayAttr(attrs["indexing_maps"])]
        n_in = list(ir.DenseI32ArrayAttr(attrs["operandSegmentSizes"]))[0]
        out_map = maps[n_in + r]
        dims: list = [None] * out_map.n_dims
        for j, e in enumerate(out_map.results):
            e = e.maybe_downcast()
            if not isinstance(e, ir.AffineDimExpr):
                raise NotApplicable(f"a linalg.generic writes its output through {out_map}: not elementwise")
            dims[e.position] = idx[j]
        if any(d is None for d in dims):
            raise NotApplicable(f"a linalg.generic's loops are not all in its output map {out_map}")
        key = (op, tuple(dims))
        if key not in self._bodies:
            self._bodies[key] = self.body(op, maps, dims)
        return self._bodies[key][r]

    def body(self, op, maps, dims: list) -> list[z3.ExprRef]:
        """The yielded values of one generic's region at one point of its iteration space."""
        operands = list(op.operands)
        block = op.regions[0].blocks[0]
        args = {arg: k for k, arg in enumerate(block.arguments)}
        env: dict = {}

        def read(k: int) -> z3.ExprRef:
            operand = operands[k]
            if not _is_tensor(operand.type):
                return self.outside(operand)
            shape = list(ir.RankedTensorType(operand.type).shape)
            idx = []
            for j, e in enumerate(maps[k].results):
                e = e.maybe_downcast()
                if isinstance(e, ir.AffineDimExpr):
                    idx.append(dims[e.position])
                elif isinstance(e, ir.AffineConstantExpr):
                    idx.append(e.value)
                else:
                    raise NotApplicable(f"an input is read at {maps[k]}: not elementwise")
                if shape[j] == 1:
                    idx[-1] = 0
            return self.at(operand, tuple(idx))

        def value(v) -> z3.ExprRef:
            if v not in env:
                env[v] = read(args[v]) if v in args else self.outside(v)
            return env[v]

        for inner in block.operations:
            name = inner.operation.name
            if name == "linalg.yield":
                return [value(v) for v in inner.operation.operands]
            results = list(inner.operation.results)
            if len(results) != 1:
                raise NotApplicable(f"{name} is not supported in a linalg.generic")
            env[results[0]] = self.scalar(inner.operation, [value(v) for v in inner.operation.operands])
        raise NotApplicable("a linalg.generic without linalg.yield")

    def outside(self, v) -> z3.ExprRef:
        """A scalar a region uses but does not define: only constants are translated."""
        owner = v.owner
        if not isinstance(owner, ir.Block) and owner.operation.name == "arith.constant":
            return self.constant(owner)
        raise NotApplicable("a linalg.generic uses a scalar from outside it that is not a constant")

    def constant(self, op) -> z3.ExprRef:
        attr = op.operation.attributes["value"]
        dtype = _element_type(op.operation.results[0].type)
        if isinstance(attr, ir.DenseElementsAttr):
            dense = ir.DenseElementsAttr(attr)
            if not dense.is_splat:
                raise NotApplicable("a constant tensor that is not a splat")
            attr = dense.get_splat_value()
        return _scalar_const(attr, dtype, self.ctx)

    # scalars

    def scalar(self, op, a: list[z3.ExprRef]) -> z3.ExprRef:
        self.count += 1
        if self.count > MAX_SCALAR_OPS:
            raise NotApplicable(f"more than {MAX_SCALAR_OPS} scalar operations")
        name = op.name
        attrs = op.attributes
        if "fastmath" in attrs and str(attrs["fastmath"]) != "#arith.fastmath<none>":
            raise NotApplicable(f"{name} carries {attrs['fastmath']}: fast-math flags license other results")
        if "overflowFlags" in attrs and str(attrs["overflowFlags"]) != "#arith.overflow<none>":
            raise NotApplicable(f"{name} carries {attrs['overflowFlags']}: an overflow would be poison")
        dtype = _element_type(op.results[0].type)
        if name == "arith.constant":
            return self.constant(op)
        if name in _ROUNDED:
            result = _rounded(name, op, a, dtype, self.ctx)
            self.rounded.append((name, result, tuple(a)))
            return result
        if name in ("arith.maxnumf", "arith.minnumf"):
            return self.num_extremum(name == "arith.maxnumf", a[0], a[1])
        if name in _EXACT:
            return _EXACT[name](op, a, dtype)
        if name.startswith("math."):
            raise NotApplicable(f"{name} has no exact SMT form (its rounding is a library's)")
        raise NotApplicable(f"{name} is not supported")

    def num_extremum(self, is_max: bool, a: z3.FPRef, b: z3.FPRef) -> z3.FPRef:
        """maxnumf/minnumf: the other operand if one is NaN; on -0 and +0 either (a free choice)."""
        choice = z3.Bool(f"{self.side}.tie{len(self.choices)}", self.ctx)
        # Alike on both sides in a counter-example: as maximumf/minimumf order -0 < +0.
        self.choices.append((choice, z3.Not(_fp.IsNegative(a)) if is_max else _fp.IsNegative(a)))
        tie = z3.And(_fp.IsZero(a), _fp.IsZero(b))
        order = z3.If(_fp.GT(a, b) if is_max else _fp.LT(a, b), a, b)
        ordered = z3.If(tie, z3.If(choice, a, b), order)
        return z3.If(_fp.IsNaN(a), b, z3.If(_fp.IsNaN(b), a, ordered))

