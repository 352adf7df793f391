"""mlirforge-outline-kernels: outline hot-op clusters into kernel functions.

A cluster is what IREE would fuse into one dispatch: a root (matmul, conv,
pooling, a reduction, softmax), the elementwise producers whose results only
the cluster uses (fill of the accumulator, transposes, broadcasts), and the
chain of elementwise consumers that each use the previous result once (bias,
activation). Each cluster becomes a private `func.func @kernel_<hash>` tagged
with `mlirforge.kernel_hash` and `mlirforge.kernel_root`; the caller calls it.
Scalar constants and `tensor.empty` are copied in, everything else is an
argument. Clusters with identical contents share one kernel.

Why: the search proposes, checks and times kernels one at a time, keyed by a
hash that does not change with SSA names, locations or where the cluster was.
"""

from __future__ import annotations

import dataclasses

from mlirforge.lowering.ir import ir
from mlirforge.passes._kernels import (
    KERNEL_HASH,
    KERNEL_ROOT,
    entry_block,
    func_ops,
    is_clonable_constant,
    is_fusible_elementwise,
    is_kernel,
    is_root,
    kernel_hash_of,
    kernels,
    op_name,
    owner_op,
    string_attr,
    sym_name,
    walk_nested,
)
from mlirforge.passes._base import ForgePass

MAX_PRODUCER_DEPTH = 4


def top_level(op, func_op):
    """The op of the function body that `op` is (or is nested in)."""
    while op.parent is not None and op.parent != func_op:
        op = op.parent
    return op


def contains(ops: list, op, func_op) -> bool:
    """Whether `op` belongs to (or is nested in) one of the body ops `ops`."""
    t = top_level(op, func_op)
    return any(t == c for c in ops)


@dataclasses.dataclass(frozen=True)
class OutlineKernelsOptions:
    producers: bool = True
    """Pull elementwise producers used only by the cluster into the kernel."""
    consumers: bool = True
    """Pull the chain of single-use elementwise consumers into the kernel."""


class OutlineKernelsPass(ForgePass):
    name = "mlirforge-outline-kernels"
    summary = "Outline root ops with their fusible producers/consumers into hashed kernel functions"
    Options = OutlineKernelsOptions

    def run(self, module) -> None:
        existing = {string_attr(k, KERNEL_HASH): sym_name(k) for k in kernels(module)}
        for func in func_ops(module):
            if is_kernel(func) or not func.operation.regions[0].blocks:
                continue
            block = entry_block(func)
            taken: list = []
            for root in [op for op in block.operations if is_root(op)]:
                if any(root.operation == t for t in taken):
                    continue
                cluster = self._cluster(func, root, taken)
                if self._outline(module, func, block, cluster, root, existing):
                    taken.extend(cluster)

    def schedule_space(self, module) -> dict[str, list]:
        return {"producers": [True, False], "consumers": [True, False]}

    # -- cluster formation -------------------------------------------------

    def _cluster(self, func, root, taken) -> list:
        cluster = [root.operation]
        func_op = func.operation

        def top(op):
            return top_level(op, func_op)

        def in_cluster(op) -> bool:
            return contains(cluster, op, func_op)

        def free(op) -> bool:
            return not any(op == t for t in taken) and not in_cluster(op)

        if self.options.producers:
            frontier = [root.operation]
            for _ in range(MAX_PRODUCER_DEPTH):
                nxt = []
                for op in frontier:
                    for value in op.operands:
                        d = owner_op(value)
                        if d is None or d.operation.parent != func_op or not free(d.operation):
                            continue
                        if is_root(d) or not is_fusible_elementwise(d) or is_clonable_constant(d):
                            continue
                        if all(in_cluster(u.owner.operation) or u.owner.operation == op for r in d.results for u in r.uses):
                            cluster.append(d.operation)
                            nxt.append(d.operation)
                frontier = nxt
        if self.options.consumers:
            cur = root.operation
            while len(cur.results) == 1:
                users = {top(u.owner.operation) for u in cur.results[0].uses}
                if len(users) != 1:
                    break
                user = users.pop()
                if user.parent != func_op or not free(user) or is_root(user) or not is_fusible_elementwise(user):
                    break
                cluster.append(user)
                cur = user
        return cluster

    # -- outlining -----------------------------------------------------------

    def _outline(self, module, func, block, cluster, root, existing) -> bool:
        from mlirforge.lowering.ir import func as func_d

        func_op = func.operation
        ordered = [op.operation for op in block.operations if any(op.operation == c for c in cluster)]

        def top(op):
            return top_level(op, func_op)

        def inside(op) -> bool:
            return contains(ordered, op, func_op)

        inputs, clones = [], []

        def add_clone(c) -> None:
            # A clonable op's own clonable operands (the fill's constant and
            # empty) are copied first, so the copies can be remapped in order.
            for value in c.operands:
                d = owner_op(value)
                if d is not None and is_clonable_constant(d):
                    add_clone(d.operation)
            if not any(c == x for x in clones):
                clones.append(c)

        for op in ordered:
            def collect(o):
                for value in o.operands:
                    d = owner_op(value)
                    if d is not None:
                        if inside(d.operation):
                            continue
                        if is_clonable_constant(d):
                            add_clone(d.operation)
                            continue
                    elif isinstance(value.owner, ir.Block):
                        parent = value.owner.owner
                        if parent is not None and parent != func_op and inside(parent):
                            continue
                    if not any(value == v for v in inputs):
                        inputs.append(value)

            walk_nested(op, collect)

        results = []
        last = ordered[-1]
        for op in ordered:
            for r in op.results:
                outside = [u.owner.operation for u in r.uses if not inside(u.owner.operation)]
                if outside:
                    if any(top(u).is_before_in_block(last) for u in outside):
                        return False  # an outside user sits between cluster ops: not convex
                    results.append(r)
        if not results:
            return False

        in_types = [v.type for v in inputs]
        res_types = [r.type for r in results]
        with ir.InsertionPoint(func_op):
            kernel = func_d.FuncOp(
                "__mlirforge_new_kernel", (in_types, res_types), visibility="private", loc=root.location
            )
        entry = kernel.add_entry_block()
        with ir.InsertionPoint(last):
            call = func_d.CallOp(res_types, "__mlirforge_new_kernel", inputs, loc=last.location)
        for r, new in zip(results, call.results):
            for use in list(r.uses):
                if not inside(use.owner.operation):
                    use.owner.operation.replace_uses_of_with(r, new)

        mapping = list(zip(inputs, entry.arguments))
        with ir.InsertionPoint(entry):
            for c in clones:
                copy = c.clone()
                mapping.extend(zip(c.results, copy.results))
        for op in ordered:
            entry.append(op)
        with ir.InsertionPoint(entry):
            func_d.ReturnOp(results, loc=last.location)

        def remap(o):
            for value in list(o.operands):
                for old, new in mapping:
                    if value == old:
                        o.replace_uses_of_with(old, new)
                        break

        for op in list(entry.operations):
            walk_nested(op, remap)
        for c in reversed(clones):  # originals only the cluster used are dead now
            if all(not list(r.uses) for r in c.results):
                c.erase()

        digest = kernel_hash_of(kernel)
        if digest in existing:
            kernel.operation.erase()
            name = existing[digest]
        else:
            name = f"kernel_{digest}"
            kernel.operation.attributes["sym_name"] = ir.StringAttr.get(name)
            kernel.operation.attributes[KERNEL_HASH] = ir.StringAttr.get(digest)
            kernel.operation.attributes[KERNEL_ROOT] = ir.StringAttr.get(op_name(root))
            existing[digest] = name
        call.operation.attributes["callee"] = ir.FlatSymbolRefAttr.get(name)
        return True
