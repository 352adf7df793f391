"""mlirforge-inline-kernels: inline calls to kernel functions, then drop the kernels.

The inverse of mlirforge-outline-kernels, run after accepted kernels were
substituted: IREE forms dispatches from the whole function, so the caller
gets the kernel bodies back. Only functions tagged as kernels are inlined;
other calls are left alone.
"""

from __future__ import annotations

import dataclasses

from mlirforge.lowering.ir import ir
from mlirforge.passes._kernels import entry_block, func_ops, is_kernel, op_name, sym_name, walk_nested
from mlirforge.passes._base import ForgePass, PassFailure


@dataclasses.dataclass(frozen=True)
class InlineKernelsOptions:
    keep_kernels: bool = False
    """Keep the kernel functions after inlining (for inspection)."""


class InlineKernelsPass(ForgePass):
    name = "mlirforge-inline-kernels"
    summary = "Inline calls to mlirforge kernel functions and erase the kernels"
    Options = InlineKernelsOptions

    def run(self, module) -> None:
        kernels = {sym_name(f): f for f in func_ops(module) if is_kernel(f)}
        if not kernels:
            return
        calls = []

        def find(op):
            if op_name(op) == "func.call":
                callee = ir.FlatSymbolRefAttr(op.attributes["callee"]).value
                if callee in kernels:
                    calls.append((op, kernels[callee]))

        for f in func_ops(module):
            if not is_kernel(f):
                walk_nested(f, find)
        for call, kernel in calls:
            self._inline(call, kernel)
        if not self.options.keep_kernels:
            for kernel in kernels.values():
                kernel.operation.erase()

    @staticmethod
    def _inline(call, kernel) -> None:
        block = entry_block(kernel)
        if len(kernel.operation.regions[0].blocks) != 1:
            raise PassFailure(f"kernel @{sym_name(kernel)} has several blocks; cannot inline", call.location)
        mapping = list(zip(block.arguments, call.operands))
        terminator = None
        with ir.InsertionPoint(call):
            for op in block.operations:
                if op_name(op) == "func.return":
                    terminator = op
                    break
                copy = op.operation.clone()
                walk_nested(copy, lambda o: _remap(o, mapping))
                mapping.extend(zip(op.operation.results, copy.results))
        if terminator is None:
            raise PassFailure(f"kernel @{sym_name(kernel)} has no func.return", kernel.location)
        returned = [_lookup(v, mapping) for v in terminator.operation.operands]
        for old, new in zip(call.results, returned):
            old.replace_all_uses_with(new)
        call.erase()


def _lookup(value, mapping):
    for old, new in mapping:
        if value == old:
            return new
    return value


def _remap(op, mapping) -> None:
    for value in list(op.operands):
        new = _lookup(value, mapping)
        if new is not value and not (new == value):
            op.replace_uses_of_with(value, new)
