"""mlirforge-generalize-named-ops: turn named linalg ops in kernels into linalg.generic.

Named ops (`linalg.matmul`, `linalg.conv_2d_*`, `linalg.transpose`, ...) reach
IREE's specialised lowerings (ukernels, data-tiling encodings, conv
decompositions); their `linalg.generic` form takes the generic contraction and
elementwise paths instead, and lets producers/consumers fuse into one generic.
Which one is faster depends on the op, its shapes and the CPU, so the search
weighs it per kernel. Only kernel functions are touched; `ops` restricts it to
some op names (by the named ops' short names, e.g. `matmul,transpose`).
"""

from __future__ import annotations

import dataclasses

from mlirforge.lowering.ir import ir, passmanager
from mlirforge.passes._kernels import kernels, op_name, string_attr, walk_nested
from mlirforge.passes._base import ForgePass, PassFailure

@dataclasses.dataclass(frozen=True)
class GeneralizeNamedOpsOptions:
    ops: tuple[str, ...] = ()
    """Short names of the ops to generalize (`matmul`, `conv_2d_nchw_fchw`, ...); empty: all named ops."""
    kernel: str = ""
    """Hash (or prefix) of the kernel to transform; empty: every kernel."""


class GeneralizeNamedOpsPass(ForgePass):
    name = "mlirforge-generalize-named-ops"
    summary = "Rewrite named linalg ops inside kernels as linalg.generic"
    Options = GeneralizeNamedOpsOptions

    def run(self, module) -> None:
        wanted = {f"linalg.{n}" for n in self.options.ops}
        selected = [
            k for k in kernels(module) if (string_attr(k, "mlirforge.kernel_hash") or "").startswith(self.options.kernel)
        ]
        if self.options.kernel and not selected:
            raise PassFailure(f"no kernel with hash '{self.options.kernel}' in the module")
        for kernel in selected:
            self._generalize(kernel, wanted)

    @staticmethod
    def _generalize(kernel, wanted: set[str]) -> None:
        # Upstream's rewrite does the op-by-op translation; we scope it to one
        # kernel, and with `ops` to one op at a time in a scratch function.
        if not wanted:
            passmanager.PassManager.parse("func.func(linalg-generalize-named-ops)").run(kernel.operation)
            return
        targets = []
        walk_nested(kernel, lambda o: targets.append(o) if op_name(o) in wanted else None)
        for op in targets:
            GeneralizeNamedOpsPass._generalize_one(op)

    @staticmethod
    def _generalize_one(op) -> None:
        from mlirforge.lowering.ir import func as func_d

        operands = list(op.operands)
        types = [v.type for v in operands]
        results = [r.type for r in op.results]
        scratch_module = ir.Module.create(loc=op.location)
        with ir.InsertionPoint(scratch_module.body):
            scratch = func_d.FuncOp("scratch", (types, results), loc=op.location)
        entry = scratch.add_entry_block()
        with ir.InsertionPoint(entry):
            copy = op.clone()
            for old, new in zip(operands, entry.arguments):
                copy.operation.replace_uses_of_with(old, new)
            func_d.ReturnOp(copy.results, loc=op.location)
        passmanager.PassManager.parse("builtin.module(func.func(linalg-generalize-named-ops))").run(
            scratch_module.operation
        )
        body = [o for o in entry.operations if op_name(o) != "func.return"]
        ret = list(entry.operations)[-1]
        mapping = list(zip(entry.arguments, operands))
        with ir.InsertionPoint(op):
            new_results = []
            for o in body:
                c = o.operation.clone()
                walk_nested(c, lambda n: [n.replace_uses_of_with(old, new) for old, new in mapping if any(v == old for v in n.operands)])
                mapping.extend(zip(o.operation.results, c.results))
            for v in ret.operation.operands:
                new_results.append(next(new for old, new in mapping if old == v))
        for old, new in zip(op.results, new_results):
            old.replace_all_uses_with(new)
        op.erase()
