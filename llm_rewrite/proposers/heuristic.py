"""The offline default proposer: IREE flags, tile sizes from shapes and the CPU, pass orderings.

No LLM, no network. For a matmul-rooted kernel it proposes IREE tile
configurations (`tiling` candidates) whose inner vector tile is a multiple of
the CPU's vector width and whose distribution tile keeps one operand panel of
each input within the L2 cache; after a win it climbs around the winner
(halving/doubling one tile size at a time). It also proposes our pass
orderings where they apply (fold transposes into matmuls, generalize, go
channels-last for NCHW convolutions), Triton kernels from templates where a GPU
or Triton's interpreter is there (`triton_templates`), and module-wide IREE
flags and the runtime driver.
"""

from __future__ import annotations

import itertools

from mlirforge.llm_rewrite import candidates
from mlirforge.llm_rewrite.candidates.triton import device as triton_device
from mlirforge.llm_rewrite.proposers import History, Proposer, triton_templates
from mlirforge.llm_rewrite.types import Candidate, Kernel
from mlirforge.lowering.target import host_cpu

_MATMUL_ROOTS = {"linalg.matmul": 0, "linalg.batch_matmul": 1}


def _divisors_up_to(n: int, limit: int) -> list[int]:
    return [d for d in (1, 2, 4, 8, 16, 32, 64, 128, 256, 512) if d <= min(n, limit) and n % d == 0]


class HeuristicProposer(Proposer):
    name = "heuristic"

    def __init__(self, cpu=None):
        self.cpu = cpu or host_cpu()

    # -- module-wide --------------------------------------------------------

    def propose_module(self, kernels: list[Kernel], history: History, n: int) -> list[Candidate]:
        roots = {k.root for k in kernels}
        options: list[tuple[dict, str]] = [
            ({"iree_flags": ["--iree-opt-data-tiling=false"]}, "data tiling off: small matmuls may not pay for packing"),
            ({"iree_flags": ["--iree-llvmcpu-enable-ukernels=all"]}, "microkernels for mmt4d/pack ops"),
            ({"iree_flags": [], "driver": "local-task"}, "IREE's thread pool: pays off when dispatches are large"),
            ({"iree_flags": ["--iree-opt-level=O3"]}, "higher global optimisation level"),
            ({"iree_flags": ["--iree-dispatch-creation-enable-aggressive-fusion=true"]}, "fuse more into each dispatch"),
        ]
        if any(r.startswith("linalg.conv") for r in roots):
            options.insert(0, ({"iree_flags": ["--iree-global-opt-use-im2col-for-convs=true"]}, "convolutions as im2col + matmul"))
        if any("reduction" in r or r == "linalg.generic" for r in roots):
            options.append(({"iree_flags": ["--iree-dispatch-creation-enable-split-reduction=true"]}, "split long reductions"))
        tried = {c.id for c, _ in history}
        out = []
        for payload, why in options:
            cand = Candidate("flags", payload, None, proposer=self.name, rationale=why)
            if cand.id not in tried:
                out.append(cand)
            if len(out) == n:
                break
        return out

    # -- per kernel ---------------------------------------------------------

    def propose(self, kernel: Kernel, history: History, n: int) -> list[Candidate]:
        tried = {c.id for c, _ in history}
        ordered = self._climb(kernel, history) + self._pipelines(kernel) + self._tilings(kernel)
        triton = self._triton(kernel)
        # On a GPU the Triton templates are the candidates that can win; under the CPU's
        # interpreter they are only checked, so they come after everything else.
        ordered = triton + ordered if triton and triton_device() == "cuda" else ordered + triton
        out, seen = [], set()
        for cand in ordered:
            if cand.id in tried or cand.id in seen:
                continue
            seen.add(cand.id)
            out.append(cand)
            if len(out) == n:
                break
        return out

    def _triton(self, kernel: Kernel) -> list[Candidate]:
        """Triton templates (`triton_templates`) where a Triton kernel can run here."""
        if not candidates.get("triton").available():
            return []
        return [Candidate("triton", payload, kernel.hash, proposer=self.name, rationale=why)
                for payload, why in triton_templates.payloads(kernel)]

    def _pipelines(self, kernel: Kernel) -> list[Candidate]:
        text = kernel.module
        pipelines = []
        if "linalg.transpose" in text and ("linalg.matmul" in text or "linalg.batch_matmul" in text):
            pipelines.append(("mlirforge-fold-transpose-into-matmul", "read the weight through a transposed map"))
        if "linalg.conv_2d_nchw_fchw" in text:
            pipelines.append(("mlirforge-conv-to-channels-last", "NHWC is IREE's preferred conv layout on CPU"))
        pipelines.append(("mlirforge-generalize-named-ops", "generic contraction path instead of the named op's"))
        return [
            Candidate("pipeline", {"pipeline": p}, kernel.hash, proposer=self.name, rationale=why) for p, why in pipelines
        ]

    def _shape(self, kernel: Kernel) -> tuple[int, int, int, int] | None:
        """(batch, M, N, K) of a matmul-rooted kernel, from its output and depth."""
        if kernel.root not in _MATMUL_ROOTS or not kernel.outputs:
            return None
        out = kernel.outputs[0].shape
        if len(out) < 2:
            return None
        batch = out[0] if kernel.root == "linalg.batch_matmul" and len(out) == 3 else 1
        return batch, out[-2], out[-1], kernel.reduction_depth

    def _payload(self, kernel: Kernel, dist, vec, red) -> dict:
        if kernel.root == "linalg.batch_matmul":
            dist, vec, red = [1, *dist], [1, *vec], [0, *red]
        return {
            "distribution": list(dist),
            "vector_common_parallel": list(vec),
            "vector_reduction": list(red),
            "pipeline": "DoubleTilingExpert",
        }

    def _tilings(self, kernel: Kernel) -> list[Candidate]:
        shape = self._shape(kernel)
        if shape is None:
            return []
        _, m, n, k = shape
        lanes = max(4, self.cpu.vector_bits // 32)
        l2 = (self.cpu.l2_bytes or 1 << 20) // 4  # floats
        scored = []
        for mv, nv in [(8, lanes), (16, lanes), (4, 2 * lanes), (8, 2 * lanes), (16, 2 * lanes), (1, 4 * lanes)]:
            if m % mv or n % nv:
                continue
            for md, nd in itertools.product(_divisors_up_to(m, 512), _divisors_up_to(n, 1024)):
                if md % mv or nd % nv:
                    continue
                panel = (md + nd) * k  # one panel of A and one of B
                if panel > l2:
                    continue
                # Prefer big tiles that still fit: fewer, fuller dispatches on 2 cores.
                score = panel / l2 + (md * nd) / (m * n)
                for kv in (1, 16) if k % 16 == 0 else (1,):
                    scored.append((score, (md, nd, 0), (mv, nv, 0), (0, 0, kv)))
        scored.sort(key=lambda s: -s[0])
        return [
            Candidate("tiling", self._payload(kernel, d, v, r), kernel.hash, proposer=self.name,
                      rationale=f"vector tile {v[0]}x{v[1]} ({lanes} lanes), distribution {d[0]}x{d[1]} fits L2")
            for _, d, v, r in scored
        ]

    def _climb(self, kernel: Kernel, history: History) -> list[Candidate]:
        """Neighbours of the best accepted tiling so far: halve or double one size."""
        best = max(
            ((c, v) for c, v in history if c.kind == "tiling" and v.accepted),
            key=lambda cv: cv[1].timing.get("ci_low", 0),
            default=None,
        )
        if best is None:
            return []
        p = best[0].payload
        off = 1 if kernel.root == "linalg.batch_matmul" else 0
        dist, vec, red = p["distribution"][off:], p["vector_common_parallel"][off:], p["vector_reduction"][off:]
        shape = self._shape(kernel)
        out = []
        for which, idx in ((dist, 0), (dist, 1), (vec, 0), (vec, 1)):
            for factor in (2, 0.5):
                new = list(which)
                new[idx] = int(new[idx] * factor)
                d2 = new if which is dist else dist
                v2 = new if which is vec else vec
                if shape and (d2[0] < 1 or d2[1] < 1 or v2[0] < 1 or v2[1] < 1 or shape[1] % d2[0] or shape[2] % d2[1]
                              or d2[0] % v2[0] or d2[1] % v2[1]):
                    continue
                out.append(Candidate("tiling", self._payload(kernel, d2, v2, red), kernel.hash, proposer=self.name,
                                     parent=best[0].id, rationale="neighbour of the best tiling so far"))
        return out
