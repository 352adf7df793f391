"""What passes share about kernels: attributes, op classes, the content hash.

A kernel is a private `func.func` carrying `mlirforge.kernel_hash` (SHA-256
prefix of its printed body with the symbol name and our attributes removed, so
it does not change with SSA names, locations or where it was outlined from)
and `mlirforge.kernel_root` (the name of its root op).
"""

from __future__ import annotations

import hashlib

from mlirforge.lowering.ir import ir

KERNEL_HASH = "mlirforge.kernel_hash"
KERNEL_ROOT = "mlirforge.kernel_root"
OUR_ATTRS = (KERNEL_HASH, KERNEL_ROOT, "mlirforge.substituted")

# Named linalg ops that anchor a kernel: contractions, convolutions, pooling
# and reductions, the ops IREE makes the root of a dispatch.
_ROOT_NAMES = {
    "linalg.matmul",
    "linalg.batch_matmul",
    "linalg.batch_reduce_matmul",
    "linalg.matvec",
    "linalg.vecmat",
    "linalg.batch_matvec",
    "linalg.dot",
    "linalg.contract",
    "linalg.reduce",
    "linalg.softmax",
}
_ROOT_PREFIXES = ("linalg.conv_", "linalg.depthwise_conv_", "linalg.pooling_")
# Ops IREE fuses with a root as producers or consumers when they are elementwise.
_FUSIBLE_NAMED = {"linalg.fill", "linalg.transpose", "linalg.broadcast", "linalg.map", "linalg.copy", "linalg.elementwise"}


def op_name(op) -> str:
    return op.operation.name


def attr_str(op, name: str) -> str | None:
    attrs = op.operation.attributes
    return str(attrs[name]) if name in attrs else None


def string_attr(op, name: str) -> str | None:
    attrs = op.operation.attributes
    return ir.StringAttr(attrs[name]).value if name in attrs else None


def is_root(op) -> bool:
    name = op_name(op)
    if name in _ROOT_NAMES or name.startswith(_ROOT_PREFIXES):
        return True
    return name == "linalg.generic" and "reduction" in (attr_str(op, "iterator_types") or "")


def is_fusible_elementwise(op) -> bool:
    name = op_name(op)
    if name in _FUSIBLE_NAMED:
        return True
    return name == "linalg.generic" and "reduction" not in (attr_str(op, "iterator_types") or "reduction")


def is_clonable_constant(op) -> bool:
    """Ops cheaper to duplicate into a kernel than to pass as arguments.

    Scalar and splat constants, `tensor.empty`, and a `linalg.fill` of such a
    constant into such an empty (the zeroed accumulator torch-mlir shares
    between matmuls of one shape).
    """
    name = op_name(op)
    if name == "tensor.empty":
        return True
    if name == "linalg.fill":
        producers = [owner_op(v) for v in op.operation.operands]
        return all(p is not None and op_name(p) != "linalg.fill" and is_clonable_constant(p) for p in producers)
    if name == "arith.constant":
        value = attr_str(op, "value") or ""
        return not isinstance(op.operation.results[0].type, ir.RankedTensorType) or value.startswith("dense<") and "," not in value
    return False


def func_ops(module) -> list:
    return [op for op in module.body.operations if op_name(op) == "func.func"]


def sym_name(op) -> str:
    return ir.StringAttr(op.operation.attributes["sym_name"]).value


def is_kernel(func_op) -> bool:
    return KERNEL_HASH in func_op.operation.attributes


def kernels(module) -> list:
    return [f for f in func_ops(module) if is_kernel(f)]


def kernel_hash_of(func_op) -> str:
    """The content hash of a function, independent of its name and our attributes."""
    clone = func_op.operation.clone(ip=False)
    try:
        clone.attributes["sym_name"] = ir.StringAttr.get("kernel")
        for attr in OUR_ATTRS:
            if attr in clone.attributes:
                del clone.attributes[attr]
        text = clone.get_asm(enable_debug_info=False)
    finally:
        clone.erase()
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def function_type(func_op) -> "ir.FunctionType":
    return ir.FunctionType(ir.TypeAttr(func_op.operation.attributes["function_type"]).value)


def entry_block(func_op):
    return func_op.operation.regions[0].blocks[0]


def walk_nested(op, fn) -> None:
    """Call fn on op and every op nested in it (pre-order)."""

    def visit(o):
        fn(o)
        return ir.WalkResult.ADVANCE

    op.operation.walk(visit, ir.WalkOrder.PRE_ORDER)


def owner_op(value):
    """The op defining a value, or None for block arguments."""
    owner = value.owner
    return owner if isinstance(owner, ir.Operation | ir.OpView) else None


KERNEL_TAG_PREFIX = "kernel:"
"""Name locations `kernel:<hash>` on a kernel's ops say, after inlining and IREE's dispatch formation,
which kernel an op came from (`lowering.dispatch_profile.dispatch_sources` reads them back)."""


def tag_kernel_locations(module) -> None:
    """Wrap the location of every op of every kernel in a name location `kernel:<its hash>`."""
    for kernel in kernels(module):
        tag = KERNEL_TAG_PREFIX + string_attr(kernel, KERNEL_HASH)

        def wrap(op, tag=tag):
            if op is not kernel.operation:
                op.location = ir.Location.name(tag, childLoc=op.location)

        walk_nested(kernel, wrap)
