"""Triton kernels the heuristic proposer offers, as templates with tunable block sizes.

A template applies to a kernel whose whole body is one op family it knows:
- `matmul`: C = A @ B (`linalg.fill` of zero then `linalg.matmul` on the two
  arguments), f32 or f16, a tiled kernel with grouped program order (programs
  that share a row panel of A run together, the usual L2 reuse order);
- `elementwise`: one `linalg.generic` over same-shaped operands whose body is a
  single `arith` op Triton has (add, sub, mul, div, max, min), a 1-D blocked kernel.

Block sizes come from the shape: powers of two up to the dimension, with the
candidates ordered from the configurations that keep all SMs busy on mid-size
problems (64x64) to the large tiles (128x128) that pay for big ones.
"""

from __future__ import annotations

import math
import re

from mlirforge.llm_rewrite.types import Kernel

MATMUL = '''import triton
import triton.language as tl


@triton.jit
def kernel(a_ptr, b_ptr, c_ptr, M: tl.constexpr, N: tl.constexpr, K: tl.constexpr,
           BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr, GROUP_M: tl.constexpr):
    pid = tl.program_id(0)
    programs_m = tl.cdiv(M, BLOCK_M)
    programs_n = tl.cdiv(N, BLOCK_N)
    # Programs sharing a panel of A run next to each other (L2 reuse).
    in_group = GROUP_M * programs_n
    first_m = (pid // in_group) * GROUP_M
    rows_here = tl.minimum(programs_m - first_m, GROUP_M)
    pid_m = first_m + (pid % in_group) % rows_here
    pid_n = (pid % in_group) // rows_here
    rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    rk = tl.arange(0, BLOCK_K)
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
    for k in range(0, K, BLOCK_K):
        a = tl.load(a_ptr + rm[:, None] * K + (k + rk)[None, :],
                    mask=(rm[:, None] < M) & ((k + rk)[None, :] < K), other=0.0)
        b = tl.load(b_ptr + (k + rk)[:, None] * N + rn[None, :],
                    mask=((k + rk)[:, None] < K) & (rn[None, :] < N), other=0.0)
        acc += tl.dot(a, b, input_precision="ieee")
    tl.store(c_ptr + rm[:, None] * N + rn[None, :], acc.to(c_ptr.dtype.element_ty),
             mask=(rm[:, None] < M) & (rn[None, :] < N))
'''

ELEMENTWISE = '''import triton
import triton.language as tl


@triton.jit
def kernel({args}, out_ptr, SIZE: tl.constexpr, BLOCK: tl.constexpr):
    offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    inside = offsets < SIZE
{loads}
    tl.store(out_ptr + offsets, {expr}, mask=inside)
'''

_ELEMENTWISE_OPS = {"arith.addf": "{0} + {1}", "arith.subf": "{0} - {1}", "arith.mulf": "{0} * {1}",
                    "arith.divf": "{0} / {1}", "arith.addi": "{0} + {1}", "arith.muli": "{0} * {1}",
                    "arith.subi": "{0} - {1}"}
"""Ops whose Triton form rounds as MLIR's does (IEEE, round to nearest); max/min differ on NaN, so none."""


def _ops(kernel: Kernel) -> list[tuple[str, object]]:
    """(name, op) of every op in the kernel's @main, in order, nested ones included."""
    from mlirforge.lowering.ir import ir
    from mlirforge.llm_rewrite.candidates.base import main_function
    from mlirforge.passes import op_name, walk_nested

    with ir.Context(), ir.Location.unknown():
        module = ir.Module.parse(kernel.module)  # kept alive while its ops are walked
        func = main_function(module)
        found: list[tuple[str, object]] = []
        walk_nested(func, lambda o: found.append((op_name(o), str(o))))
    return found[1:] if found and found[0][0] == "func.func" else found


def _blocks(size: int, choices: tuple[int, ...]) -> list[int]:
    """The block sizes from `choices` that a problem of `size` elements fills at least halfway."""
    return [c for c in choices if c <= max(choices[0], 2 * size)] or [choices[0]]


def matmul_payloads(kernel: Kernel) -> list[tuple[dict, str]]:
    """`triton` payloads for a plain 2-D matmul kernel (C = A @ B), best first; [] for anything else."""
    if kernel.root != "linalg.matmul" or len(kernel.inputs) != 2 or len(kernel.outputs) != 1:
        return []
    a, b = kernel.inputs
    c = kernel.outputs[0]
    if len(a.shape) != 2 or len(b.shape) != 2 or a.dtype not in ("f32", "f16") or not a.dtype == b.dtype == c.dtype:
        return []
    m, k = a.shape
    if b.shape[0] != k or tuple(c.shape) != (m, b.shape[1]):
        return []
    ops = _ops(kernel)
    names = [n for n, _ in ops]
    if set(names) - {"tensor.empty", "arith.constant", "linalg.fill", "linalg.matmul", "linalg.yield",
                     "arith.mulf", "arith.addf", "func.return"} or names.count("linalg.matmul") != 1:
        return []
    constants = [t for n, t in ops if n == "arith.constant"]
    if names.count("linalg.fill") != 1 or len(constants) != 1 or not re.search(r"constant (0\.0+e\+00|0\.0)\b",
                                                                               constants[0]):
        return []  # the accumulator does not start at zero: not C = A @ B
    n = b.shape[1]
    out = []
    for bm, bn, bk, warps, stages in ((64, 64, 32, 4, 3), (128, 64, 32, 4, 3), (64, 128, 32, 4, 3),
                                      (128, 128, 32, 8, 3), (32, 32, 32, 4, 2)):
        if bm > max(16, m) * 2 or bn > max(16, n) * 2:
            continue
        bk = min(bk, max(16, 1 << math.ceil(math.log2(k))))
        grid = math.ceil(m / bm) * math.ceil(n / bn)
        out.append(({"source": MATMUL, "entry": "kernel", "grid": [grid], "num_warps": warps, "num_stages": stages,
                     "constexprs": {"M": m, "N": n, "K": k, "BLOCK_M": bm, "BLOCK_N": bn, "BLOCK_K": bk,
                                    "GROUP_M": 8}},
                    f"Triton tiled matmul {bm}x{bn}x{bk}, {warps} warps, {stages} stages, grouped order"))
    return out


def elementwise_payloads(kernel: Kernel) -> list[tuple[dict, str]]:
    """`triton` payloads for one elementwise binary op on same-shaped operands; [] for anything else."""
    if len(kernel.outputs) != 1 or len(kernel.inputs) != 2:
        return []
    out_spec = kernel.outputs[0]
    if any(tuple(s.shape) != tuple(out_spec.shape) or s.dtype != out_spec.dtype for s in kernel.inputs):
        return []
    ops = _ops(kernel)
    body = [n for n, _ in ops if n not in ("tensor.empty", "linalg.generic", "linalg.yield", "func.return")]
    generics = [t for n, t in ops if n == "linalg.generic"]
    if len(body) != 1 or body[0] not in _ELEMENTWISE_OPS or len(generics) != 1:
        return []
    maps = re.findall(r"affine_map<\(([^)]*)\)\s*->\s*\(([^)]*)\)>", generics[0])
    if len(maps) != 3 or any(dims != results for dims, results in maps):
        return []  # a transpose or broadcast: the operands do not share one offset
    size = math.prod(out_spec.shape)
    out = []
    for block in _blocks(size, (1024, 4096)):
        args = ", ".join(f"in{i}_ptr" for i in range(2))
        loads = "\n".join(f"    x{i} = tl.load(in{i}_ptr + offsets, mask=inside)" for i in range(2))
        source = ELEMENTWISE.format(args=args, loads=loads, expr=_ELEMENTWISE_OPS[body[0]].format("x0", "x1"))
        out.append(({"source": source, "entry": "kernel", "grid": [math.ceil(size / block)], "num_warps": 4,
                     "num_stages": 1, "constexprs": {"SIZE": size, "BLOCK": block}},
                    f"Triton 1-D elementwise {body[0]}, {block} elements per program"))
    return out


def payloads(kernel: Kernel) -> list[tuple[dict, str]]:
    """Every template's payloads for `kernel`, best first."""
    return matmul_payloads(kernel) + elementwise_payloads(kernel)
