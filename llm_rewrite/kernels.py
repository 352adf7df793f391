"""Kernels of a lowered model: outline them and make each runnable on its own.

`extract_kernels` runs mlirforge-outline-kernels on a model's MLIR and returns
the outlined module plus one `Kernel` per kernel function, whose `module` is a
standalone MLIR module with the kernel as public `@main` (so it compiles and
runs alone for profiling and for checking candidates).
"""

from __future__ import annotations

import math

from mlirforge.llm_rewrite.types import Kernel, TensorSpec
from mlirforge.lowering.ir import ir
from mlirforge.passes import (
    KERNEL_HASH,
    KERNEL_ROOT,
    func_ops,
    function_type,
    is_kernel,
    kernels,
    op_name,
    string_attr,
    sym_name,
    walk_nested,
)
from mlirforge.passes import parse_pipeline, run_pipeline


def tensor_spec(t) -> TensorSpec:
    """A kernel argument as IREE's ABI sees it: f64 is demoted to f32 at the
    module boundary (`--iree-input-demote-f64-to-f32`, on by default)."""
    rt = ir.RankedTensorType(t)
    dtype = str(rt.element_type)
    return TensorSpec(tuple(rt.shape), "f32" if dtype == "f64" else dtype)


def standalone_module(func_op) -> str:
    """The function alone in a module, renamed to public @main (kernel attributes kept)."""
    module = ir.Module.create(loc=func_op.location)
    clone = func_op.operation.clone(ip=ir.InsertionPoint(module.body))
    clone.attributes["sym_name"] = ir.StringAttr.get("main")
    for attr in ("sym_visibility", "mlirforge.substituted"):
        if attr in clone.attributes:
            del clone.attributes[attr]
    return module.operation.get_asm(enable_debug_info=False)


def _shape(value) -> list[int]:
    try:
        return list(ir.ShapedType(value.type).shape)
    except ValueError:
        return []


def reduction_depth(op) -> int:
    """How many terms each output element of a root op sums (1 if it reduces nothing)."""
    name = op_name(op)
    ins = list(op.operands)
    if name in ("linalg.matmul", "linalg.batch_matmul", "linalg.matvec", "linalg.batch_matvec", "linalg.dot"):
        return max(1, _shape(ins[0])[-1] if _shape(ins[0]) else 1)
    if name == "linalg.vecmat":
        return max(1, _shape(ins[0])[-1])
    if name.startswith("linalg.conv_2d_nchw") or name.startswith("linalg.conv_2d_ngchw"):
        return math.prod(_shape(ins[1])[1:])
    if name.startswith("linalg.conv_2d_nhwc_hwcf"):
        return math.prod(_shape(ins[1])[:3])
    if name.startswith("linalg.conv") or name.startswith("linalg.depthwise") or name.startswith("linalg.pooling"):
        return math.prod(_shape(ins[1])) if len(ins) > 1 else 1
    if name == "linalg.generic" and "indexing_maps" in op.attributes:
        iterators = str(op.attributes["iterator_types"])
        kinds = [tok for tok in iterators.replace('"', " ").replace("<", " ").replace(">", " ").split() if tok in ("parallel", "reduction")]
        maps = [ir.AffineMapAttr(a).value for a in ir.ArrayAttr(op.attributes["indexing_maps"])]
        sizes: dict[int, int] = {}
        for value, amap in zip(ins, maps):
            shape = _shape(value)
            for j, expr in enumerate(amap.results):
                expr = expr.maybe_downcast()
                if isinstance(expr, ir.AffineDimExpr) and j < len(shape):
                    sizes.setdefault(expr.position, shape[j])
        return max(1, math.prod(sizes.get(d, 1) for d, k in enumerate(kinds) if k == "reduction"))
    if name == "linalg.softmax":
        dim = ir.IntegerAttr(op.attributes["dimension"]).value
        return max(1, _shape(ins[0])[dim])
    return 1


def _calls(module) -> dict[str, int]:
    counts: dict[str, int] = {}

    def visit(o):
        if op_name(o) == "func.call":
            callee = ir.FlatSymbolRefAttr(o.attributes["callee"]).value
            counts[callee] = counts.get(callee, 0) + 1

    for f in func_ops(module):
        if not is_kernel(f):
            walk_nested(f, visit)
    return counts


def _weight_args(module) -> dict[str, list[int]]:
    """Per kernel: argument positions fed by IREE parameter globals at every call site.

    @main loads the weights (`util.global.load`) and passes them to the graph
    function; the graph function passes its arguments on to the kernels.
    """
    weight_args_of: dict[str, set[int]] = {}
    for f in func_ops(module):
        if is_kernel(f):
            continue

        def from_globals(o):
            if op_name(o) != "func.call":
                return
            callee = ir.FlatSymbolRefAttr(o.attributes["callee"]).value
            loaded = {i for i, v in enumerate(o.operands) if (d := _owner(v)) is not None and op_name(d) == "util.global.load"}
            weight_args_of.setdefault(callee, set()).update(loaded)

        walk_nested(f, from_globals)
    result: dict[str, set[int]] = {}
    for f in func_ops(module):
        if is_kernel(f) or not f.operation.regions[0].blocks:
            continue
        weight_block_args = weight_args_of.get(sym_name(f), set())
        entry = f.operation.regions[0].blocks[0]

        def from_args(o):
            if op_name(o) != "func.call":
                return
            callee = ir.FlatSymbolRefAttr(o.attributes["callee"]).value
            fed = set()
            for i, v in enumerate(o.operands):
                if isinstance(v.owner, ir.Block) and v.owner == entry:
                    if ir.BlockArgument(v).arg_number in weight_block_args:
                        fed.add(i)
                elif (d := _owner(v)) is not None and op_name(d) == "util.global.load":
                    fed.add(i)
            result[callee] = fed if callee not in result else result[callee] & fed

        walk_nested(f, from_args)
    return {name: sorted(v) for name, v in result.items()}


def _owner(value):
    owner = value.owner
    return owner if isinstance(owner, ir.Operation | ir.OpView) else None


def kernels_of(module) -> list[Kernel]:
    """Kernel objects for every kernel function of an outlined module."""
    calls = _calls(module)
    weight_args = _weight_args(module)
    out = []
    for k in kernels(module):
        ftype = function_type(k)
        root_name = string_attr(k, KERNEL_ROOT)
        depth = 1
        roots = []
        walk_nested(k, lambda o: roots.append(o) if op_name(o) == root_name else None)
        for r in roots:
            depth = max(depth, reduction_depth(r))
        out.append(
            Kernel(
                hash=string_attr(k, KERNEL_HASH),
                name=sym_name(k),
                root=root_name,
                module=standalone_module(k),
                inputs=[tensor_spec(t) for t in ftype.inputs],
                outputs=[tensor_spec(t) for t in ftype.results],
                reduction_depth=depth,
                calls=calls.get(sym_name(k), 0),
                weight_inputs=weight_args.get(sym_name(k), []),
            )
        )
    return out


def runnable_module(kernel: Kernel, text: str) -> str:
    """A kernel (or candidate) module with its weight arguments bound as parameters."""
    from mlirforge.lowering.params import bind_parameters

    return bind_parameters(text, kernel.weight_inputs)


def extract_kernels(mlir: str) -> tuple[str, list[Kernel]]:
    """Outline the kernels of a model's MLIR; returns (outlined MLIR, kernels)."""
    with ir.Context():
        module = ir.Module.parse(mlir)
        run_pipeline(module, parse_pipeline("mlirforge-outline-kernels"))
        return module.operation.get_asm(), kernels_of(module)


def kernel_from_function_text(text: str, source_name: str = "<kernel>") -> Kernel:
    """A Kernel from a file holding one public func.func (for `mlirforge evaluate`).

    Raises UserError naming the file for malformed input.
    """
    from mlirforge.lowering.errors import UserError
    from mlirforge.passes import KERNEL_HASH as _H, is_root, kernel_hash_of

    with ir.Context():
        try:
            module = ir.Module.parse(text)
        except ir.MLIRError as exc:
            d = exc.error_diagnostics[0] if exc.error_diagnostics else None
            where = str(d.location).replace('loc("-"', f'loc("{source_name}"') if d else source_name
            raise UserError(f"{source_name}: does not parse: {where}: {d.message if d else exc}") from None
        funcs = [f for f in func_ops(module) if "sym_visibility" not in f.attributes]
        if len(funcs) != 1:
            raise UserError(f"{source_name}: expected exactly one public func.func, found {len(funcs)}")
        func = funcs[0]
        ftype = function_type(func)
        if not all(isinstance(t, ir.RankedTensorType) and ir.RankedTensorType(t).has_static_shape
                   for t in [*ftype.inputs, *ftype.results]):
            raise UserError(f"{source_name}: every argument and result must be a ranked tensor of static shape "
                            "(the check draws inputs of the exact shapes)")
        roots = []
        walk_nested(func, lambda o: roots.append(o) if is_root(o) else None)
        digest = kernel_hash_of(func)
        func.attributes[_H] = ir.StringAttr.get(digest)
        root_name = op_name(roots[0]) if roots else "none"
        func.attributes[KERNEL_ROOT] = ir.StringAttr.get(root_name)
        depth = max([reduction_depth(r) for r in roots] or [1])
        return Kernel(
            hash=digest, name=sym_name(func), root=root_name, module=standalone_module(func),
            inputs=[tensor_spec(t) for t in ftype.inputs], outputs=[tensor_spec(t) for t in ftype.results],
            reduction_depth=depth,
        )
