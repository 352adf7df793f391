"""`tiling` candidates: IREE lowering configs (tile sizes, codegen pipeline) for a kernel's root op.

Payload: {"distribution": [...], "vector_common_parallel": [...],
"vector_reduction": [...], "pipeline": "DoubleTilingExpert"}, one size per
loop of the root op (matmul: m, n, k). Applied by our
`mlirforge-annotate-tiling` pass, which attaches `#iree_codegen.lowering_config`
and the translation info; the kernel is then compiled without data tiling.
"""

from __future__ import annotations

from typing import Any

from mlirforge.llm_rewrite.candidates.base import Built, CandidateKind, CandidateRejected
from mlirforge.llm_rewrite.candidates.pipeline import apply_pipeline
from mlirforge.llm_rewrite.settings import EvalSettings
from mlirforge.llm_rewrite.types import Kernel, Stage

TILE_KEYS = ("distribution", "vector_common_parallel", "vector_reduction")
DEFAULT_PIPELINE = "DoubleTilingExpert"
CODEGEN_PIPELINES = ("DoubleTilingExpert", "Default", "Mmt4dTilingExpert", "ConvTileAndDecomposeExpert")
MAX_VECTOR_TILE_ELEMENTS = 8192
"""Product of a tiling's non-zero vector sizes: larger tiles unroll into code that
takes IREE minutes to compile and never runs fast on a CPU's register file."""


def loop_bounds(kernel: Kernel) -> list[int] | None:
    """The root op's loop sizes where the shapes tell them (matmul: m, n, k), else None."""
    out = kernel.outputs[0].shape if kernel.outputs else ()
    if kernel.root == "linalg.matmul" and len(out) == 2:
        return [*out, kernel.reduction_depth]
    if kernel.root == "linalg.batch_matmul" and len(out) == 3:
        return [*out, kernel.reduction_depth]
    return None


def _int_list(values: Any) -> bool:
    return isinstance(values, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in values)


def check_tile_sizes(kernel: Kernel, payload: dict) -> None:
    """Legal tile sizes: within the loop bounds, vector tiles within distribution tiles, bounded unrolling."""
    lists = {k: payload.get(k, []) for k in TILE_KEYS}
    for key, values in lists.items():
        if not _int_list(values):
            raise CandidateRejected(Stage.PARSE, f"tiling '{key}' must be a list of integers")
    bounds = loop_bounds(kernel)
    for key, values in lists.items():
        if bounds is not None and values and len(values) != len(bounds):
            raise CandidateRejected(Stage.PARSE, f"tiling '{key}' has {len(values)} sizes; {kernel.root} has "
                                                 f"{len(bounds)} loops {bounds}")
        for i, v in enumerate(values):
            if v < 0 or (bounds is not None and v > bounds[i]):
                raise CandidateRejected(Stage.PARSE, f"tiling '{key}'[{i}] = {v} is outside "
                                                     f"0..{bounds[i] if bounds else 'inf'}")
    dist, vec = lists["distribution"], lists["vector_common_parallel"]
    for i, (d, v) in enumerate(zip(dist, vec)):
        if d and v > d:
            raise CandidateRejected(Stage.PARSE, f"vector tile {v} exceeds distribution tile {d} in loop {i}")
    too_many = unrolled_problem(lists)
    if too_many:
        raise CandidateRejected(Stage.PARSE, too_many)


VECTOR_KEYS = ("vector_common_parallel", "vector_reduction", "vector_inner_parallel")


def unrolled_problem(lists: dict[str, list[int]]) -> str:
    """Why the vector tiles of a lowering config unroll too far ('' if they do not): the product of
    their non-zero sizes is at most `MAX_VECTOR_TILE_ELEMENTS`."""
    unrolled = 1
    for key in VECTOR_KEYS:
        for v in lists.get(key, []):
            unrolled *= v or 1
    if unrolled > MAX_VECTOR_TILE_ELEMENTS:
        return f"vector tiles of {unrolled} elements in all; at most {MAX_VECTOR_TILE_ELEMENTS} are allowed"
    return ""


def tiling_pipeline(payload: dict) -> str:
    """A tiling payload (already through `check_tile_sizes`) as an annotate-tiling pipeline."""
    parts = []
    for key in TILE_KEYS:
        values = payload.get(key, [])
        if values:
            parts.append(f"{key.replace('_', '-')}={','.join(str(v) for v in values)}")
    pipeline = payload.get("pipeline", DEFAULT_PIPELINE)
    if not isinstance(pipeline, str) or not pipeline.isidentifier():
        raise CandidateRejected(Stage.PARSE, "tiling 'pipeline' must be a pipeline name")
    parts.append(f"pipeline={pipeline}")
    return "mlirforge-annotate-tiling{" + " ".join(parts) + "}"


class TilingKind(CandidateKind):
    name = "tiling"
    fields = frozenset({*TILE_KEYS, "pipeline"})

    def check_payload(self, payload: dict[str, Any]) -> dict[str, Any]:
        for key in TILE_KEYS:
            if not _int_list(payload.get(key, [])):
                raise ValueError(f"tiling '{key}' must be a list of integers")
        if not payload.get("distribution"):
            raise ValueError("tiling candidate needs 'distribution'")
        payload.setdefault("pipeline", DEFAULT_PIPELINE)
        return payload

    def build(self, kernel: Kernel, payload: dict[str, Any], settings: EvalSettings) -> Built:
        check_tile_sizes(kernel, payload)
        return Built(apply_pipeline(kernel, tiling_pipeline(payload)), tuple(settings.base_flags))

    def describe(self, payload: dict[str, Any]) -> str:
        return (f"tiling dist={payload.get('distribution')} vec={payload.get('vector_common_parallel')} "
                f"red={payload.get('vector_reduction')}")

    def prompt(self, kernel: Kernel | None) -> str:
        bounds = loop_bounds(kernel) if kernel is not None else None
        loops = (f"{len(bounds)} loops with sizes {bounds}" if bounds else
                 "one size per loop of the root op (tiling is most useful on matmul-like roots)")
        return "\n".join([
            '{"kind": "tiling", "distribution": [...], "vector_common_parallel": [...], "vector_reduction": [...],',
            f'    "pipeline": "{DEFAULT_PIPELINE}"}}',
            f"   IREE tile sizes for the root op, {loops}. Each size is 0 (not tiled) up to the loop's size;",
            "   vector tiles within distribution tiles; vector_common_parallel tiles the parallel loops (0 for",
            "   reductions), vector_reduction the reduction loops (0 for parallel ones); the product of all",
            f"   non-zero vector sizes at most {MAX_VECTOR_TILE_ELEMENTS}. Pipelines: {', '.join(CODEGEN_PIPELINES)}.",
            "   Make each distribution size a multiple of the vector size of its loop (a 196-wide tile",
            "   over 16-wide vectors leaves a slow remainder). The kernel is then compiled without data tiling.",
        ])


KIND = TilingKind()
