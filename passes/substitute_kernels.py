"""mlirforge-substitute-kernels: replace kernel bodies by accepted candidates.

`file` holds one or more `func.func` candidates, each tagged with the
`mlirforge.kernel_hash` of the kernel it replaces. A candidate must have the
kernel's exact signature and be self-contained (no calls); it takes the
kernel's name, keeps the kernel's hash (so callers and caches still find it)
and records its own content hash in `mlirforge.substituted`. Candidates come
from the search's verified winners (or a user's hand-written kernel).
"""

from __future__ import annotations

import dataclasses

from mlirforge.lowering.ir import ir
from mlirforge.passes._kernels import (
    KERNEL_HASH,
    KERNEL_ROOT,
    function_type,
    kernel_hash_of,
    kernels,
    op_name,
    string_attr,
    sym_name,
    walk_nested,
)
from mlirforge.passes._base import ForgePass, PassFailure


@dataclasses.dataclass(frozen=True)
class SubstituteKernelsOptions:
    file: str = ""
    """MLIR file with the candidate functions."""
    strict: bool = True
    """Fail when a candidate's hash matches no kernel in the module."""


class SubstituteKernelsPass(ForgePass):
    name = "mlirforge-substitute-kernels"
    summary = "Replace kernel functions by candidates with identical signatures"
    Options = SubstituteKernelsOptions

    def run(self, module) -> None:
        if not self.options.file:
            raise PassFailure("option 'file' is required (the candidates' MLIR file)")
        try:
            text = open(self.options.file).read()
        except OSError as exc:
            raise PassFailure(f"cannot read candidates file '{self.options.file}': {exc.strerror}") from None
        try:
            candidates = ir.Module.parse(text)
        except ir.MLIRError as exc:
            first = exc.error_diagnostics[0] if exc.error_diagnostics else None
            where = str(first.location) if first else ""
            msg = first.message if first else str(exc)
            raise PassFailure(f"candidates file '{self.options.file}' does not parse: {where}: {msg}") from None
        substitute(module, candidates, strict=self.options.strict)


def substitute(module, candidates, strict: bool = True) -> list[str]:
    """Substitute every candidate function of `candidates` into `module`.

    Returns the hashes of the kernels replaced. Raises PassFailure naming the
    candidate and what is wrong (unknown hash, other signature, calls).
    """
    targets = {string_attr(k, KERNEL_HASH): k for k in kernels(module)}
    done = []
    for cand in [op for op in candidates.body.operations if op_name(op) == "func.func"]:
        digest = string_attr(cand, KERNEL_HASH)
        if digest is None:
            raise PassFailure(f"candidate @{sym_name(cand)} has no {KERNEL_HASH} attribute", cand.location)
        target = targets.get(digest)
        if target is None:
            if strict:
                raise PassFailure(f"candidate @{sym_name(cand)} names kernel {digest}, not in the module", cand.location)
            continue
        want, got = str(function_type(target)), str(function_type(cand))
        if want != got:
            raise PassFailure(
                f"candidate @{sym_name(cand)} has signature {got}, kernel {digest} has {want}", target.location
            )
        calls = []
        walk_nested(cand, lambda o: calls.append(o) if op_name(o) == "func.call" else None)
        if calls:
            raise PassFailure(f"candidate @{sym_name(cand)} calls other functions; kernels must be self-contained", calls[0].location)
        new = cand.operation.clone(ip=ir.InsertionPoint(target))
        new.attributes["sym_name"] = ir.StringAttr.get(sym_name(target))
        new.attributes["sym_visibility"] = ir.StringAttr.get("private")
        new.attributes[KERNEL_HASH] = ir.StringAttr.get(digest)
        root = string_attr(target, KERNEL_ROOT)
        if root is not None:
            new.attributes[KERNEL_ROOT] = ir.StringAttr.get(root)
        new.attributes["mlirforge.substituted"] = ir.StringAttr.get(kernel_hash_of(new))
        target.operation.erase()
        targets[digest] = new.opview
        done.append(digest)
    return done
