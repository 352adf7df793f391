"""What the equivalence check draws and what it counts as equal: input distributions and the error bound.

Used by the evaluation worker (`llm_rewrite.worker`, which runs the modules), by the
formal check (`llm_rewrite.formal`, which asks `compare` whether a counter-example
is one) and by the in-model profile (`make_input`). Imports only numpy.

The error bound (`compare`): an element may differ by
`rtol*|ref| + factor*M + floor`, where `rtol` and `factor` grow with the
reduction depth (`tolerance`) and M is the magnitude of the terms that enter
that element (`term_scales`: the reference run on randomly perturbed inputs
and on the inputs' magnitudes); with `error_bound="global"` (a model whose
weights the worker cannot touch) M is at least the largest output element.
Values below the smallest normal number compare as zeros of their sign,
because IREE's CPU code flushes them (DAZ/FTZ). docs/search.md ("The numerics
check's error bound") has the measurements behind it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from mlirforge.llm_rewrite.worker import Runner

_EPS = {"f32": 2.0**-23, "f16": 2.0**-10, "bf16": 2.0**-7, "f64": 2.0**-52}
_FLUSHED = {"f32": 2.0**-126, "bf16": 2.0**-126, "f64": 2.0**-1022}
"""Smallest normal numbers: IREE's CPU arithmetic reads anything smaller as zero (f16 is not flushed)."""
_FLOOR = {"f32": 2.0**-125, "bf16": 2.0**-125, "f64": 2.0**-1021, "f16": 2.0**-23}
"""Absolute slack of every element: a result that rounds across the flush threshold (f16: 2 subnormal ulps)."""
_PROBE_DELTA = {"f32": 2.0**-12, "f16": 2.0**-5, "bf16": 2.0**-4, "f64": 2.0**-26}
"""Relative size of the perturbation probes: far above the dtype's rounding, small enough to stay near linear."""
PROBES = 4
"""Perturbation probes per input draw (`term_scales`)."""
_NAMES = {"float32": "f32", "float16": "f16", "bfloat16": "bf16", "float64": "f64"}


def numpy_dtype(mlir_type: str):
    if mlir_type == "bf16":
        import ml_dtypes

        return ml_dtypes.bfloat16
    table = {
        "f32": np.float32, "f16": np.float16, "f64": np.float64,
        "i64": np.int64, "i32": np.int32, "i16": np.int16, "i8": np.int8, "i1": np.bool_,
    }
    if mlir_type not in table:
        raise ValueError(f"unsupported element type {mlir_type}")
    return table[mlir_type]


def _finfo(np_dtype):
    if np.dtype(np_dtype).name == "bfloat16":
        import ml_dtypes

        return ml_dtypes.finfo(np_dtype)
    return np.finfo(np_dtype)


def make_input(rng: np.random.Generator, shape, dtype: str, dist: str) -> np.ndarray:
    """One input tensor of a distribution (`worker_protocol.DISTRIBUTIONS`); integers stay small and non-negative.

    normal N(0, 1); wide: magnitudes 10^U(-3, 3), random signs; tiny: x1e-6;
    large: x1e15 (f16/bf16 x1e2); all_negative: -|N(0, 1)| minus a per-row
    offset, 10^U(-1, 1) for half the rows and U(90, 200) for the others (whole
    rows where exp underflows); edge: 5% of the elements ±0, ±inf or NaN;
    row_scaled: wide, each row (last axis) scaled by 10^U(-3, 0), so small rows
    sit beside large ones (1e-6..1e3); ties: multiples of 0.5 in [-2, 2]
    (repeated maxima, exact zeros); subnormal: normal with a third of the
    elements subnormal (log-uniform over the dtype's subnormal range, random
    signs).
    """
    np_dtype = numpy_dtype(dtype)
    if dtype.startswith("i"):
        return rng.integers(0, 2, size=shape).astype(np_dtype)
    shape = tuple(shape)
    x = rng.standard_normal(shape)
    if dist in ("wide", "row_scaled"):
        x = np.sign(x) * 10.0 ** rng.uniform(-3, 3, size=shape)
        if dist == "row_scaled":
            x = x * 10.0 ** rng.uniform(-3, 0, size=(shape[:-1] + (1,)) if shape else ())
    elif dist == "tiny":
        x = x * 1e-6
    elif dist == "large":
        # Large but safe: products of two stay below fp32's range even summed.
        x = x * (1e15 if dtype in ("f32", "f64") else 1e2)
    elif dist == "all_negative":
        rows = (shape[:-1] + (1,)) if shape else ()
        # Half the rows near 0, half below -90, where exp underflows for the whole row.
        offset = np.where(rng.random(rows) < 0.5, 10.0 ** rng.uniform(-1, 1, size=rows), rng.uniform(90, 200, size=rows))
        x = -np.abs(x) - offset
    elif dist == "edge":
        specials = np.array([0.0, -0.0, np.inf, -np.inf, np.nan], dtype=np.float64)
        mask = rng.random(shape) < 0.05
        x = np.where(mask, specials[rng.integers(0, len(specials), size=shape)], x)
    elif dist == "ties":
        x = rng.integers(-4, 5, size=shape) * 0.5
    elif dist == "subnormal":
        info = _finfo(np_dtype)
        sub = np.sign(x) * float(info.tiny) * 2.0 ** -rng.uniform(0, int(info.nmant), size=shape)
        x = np.where(rng.random(shape) < 1 / 3, sub, x)
    return np.asarray(x).astype(np_dtype)


def tolerance(dtype: str, depth: int) -> tuple[float, float]:
    """(rtol, atol factor): an element may differ by rtol*|ref| + factor*M (M: see `compare`).

    Reassociating a K-term sum changes it by at most about K*eps of the largest
    partial sums; the bound scales with the reduction depth and the dtype.
    """
    eps = _EPS.get(dtype, 0.0)
    return 8 * eps * max(1, depth) ** 0.5, 2 * eps * max(1, depth)


def _is_float(a: np.ndarray) -> bool:
    return np.issubdtype(a.dtype, np.floating) or a.dtype.name == "bfloat16"


def _flush(v: np.ndarray, dtype: str) -> np.ndarray:
    """`v` (float64) with the values IREE's arithmetic reads as zero made zeros of their sign."""
    limit = _FLUSHED.get(dtype)
    return v if limit is None else np.where(np.abs(v) < limit, np.copysign(0.0, v), v)


def _at(ref: np.ndarray, got: np.ndarray, mask: np.ndarray) -> str:
    """How many elements `mask` holds, and the first one's position and values."""
    idx = tuple(int(i) for i in np.argwhere(mask)[0])
    return f"{int(mask.sum())} of {mask.size} elements, first at {idx}: got {float(got[idx])!r}, expected {float(ref[idx])!r}"


def compare(ref: np.ndarray, got: np.ndarray, depth: int, scale: np.ndarray | None = None) -> dict:
    """Compare one output; {"ok", "max_error", "tolerance", "why"[, "bound_use"]}.

    Integers must be equal. Floats are compared after values below the
    smallest normal number become zeros of their sign (IREE reads them so):
    NaN positions, inf positions and signs and the signs of zeros must match
    exactly; every other element must satisfy |got - ref| <= rtol*|ref| +
    factor*M + floor (`tolerance`), where M is `scale` there (the magnitude of
    the terms that enter the element, `term_scales`), or max|ref| for every
    element when `scale` is None. `bound_use` is the largest
    |got - ref| / bound; on failure `max_error`/`tolerance` are the worst
    element's error and bound.
    """
    if ref.shape != got.shape or ref.dtype != got.dtype:
        return {"ok": False, "why": f"output is {got.dtype}{list(got.shape)}, expected {ref.dtype}{list(ref.shape)}"}
    if not _is_float(ref):
        differ = np.argwhere(ref != got)
        if not len(differ):
            return {"ok": True, "max_error": 0.0, "tolerance": 0.0}
        shown = "; ".join(f"at {tuple(int(i) for i in idx)} got {got[tuple(idx)].item()!r}, expected {ref[tuple(idx)].item()!r}"
                          for idx in differ[:3])
        return {"ok": False, "max_error": float("inf"), "tolerance": 0.0,
                "why": f"{len(differ)} of {ref.size} elements differ: {shown}"}
    dtype = _NAMES.get(ref.dtype.name, "f32")
    r, g = _flush(ref.astype(np.float64), dtype), _flush(got.astype(np.float64), dtype)
    rnan, gnan = np.isnan(r), np.isnan(g)
    if not np.array_equal(rnan, gnan):
        return {"ok": False, "why": f"NaN positions differ: {_at(r, g, rnan != gnan)}", "max_error": float("nan"),
                "tolerance": 0.0}
    rinf, ginf = np.isinf(r), np.isinf(g)
    if not np.array_equal(rinf, ginf) or not np.array_equal(r[rinf], g[ginf]):
        return {"ok": False, "why": f"inf positions or signs differ: {_at(r, g, (rinf | ginf) & (r != g))}",
                "max_error": float("inf"), "tolerance": 0.0}
    zeros = (r == 0) & (g == 0) & (np.signbit(r) != np.signbit(g))
    if zeros.any():
        return {"ok": False, "why": f"signs of zero differ: {_at(r, g, zeros)}", "max_error": 0.0, "tolerance": 0.0}
    finite = np.isfinite(r)
    if not finite.any():
        return {"ok": True, "max_error": 0.0, "tolerance": 0.0}
    rtol, factor = tolerance(dtype, depth)
    top = float(np.abs(r[finite]).max())
    terms = top if scale is None else np.where(np.isfinite(scale), scale, 0.0)
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf where `finite` leaves it out
        bound = np.where(finite, rtol * np.abs(r) + factor * terms + _FLOOR.get(dtype, 0.0), np.inf)
        err = np.where(finite, np.abs(r - g), 0.0)
        use = err / bound
    worst = tuple(int(i) for i in np.unravel_index(int(np.argmax(use)), use.shape))
    out = {"ok": bool(use[worst] <= 1), "bound_use": float(use[worst])}
    if out["ok"]:
        return {**out, "max_error": float(err.max()), "tolerance": float(bound[finite].max()), "why": ""}
    return {**out, "max_error": float(err[worst]), "tolerance": float(bound[worst]),
            "why": f"values differ: {int((use > 1).sum())} of {r.size} elements out of bound, worst at {worst}: "
                   f"got {float(g[worst])!r}, expected {float(r[worst])!r}"}


def magnitude(a: np.ndarray) -> np.ndarray:
    """|a| for floats, `a` itself for integers: the input the magnitude run (`term_scales`) sees."""
    return np.abs(a) if _is_float(a) else a


def _finite_abs(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    return np.where(np.isfinite(v), np.abs(v), 0.0)


def term_scales(ref: Runner, ref_abs: Runner | None, arrays: list[np.ndarray], expected: list[np.ndarray],
                rng: np.random.Generator) -> list[np.ndarray | None]:
    """Per output element, the magnitude of the terms that enter it (float64; None for integer outputs).

    M = max(S, min(A, max|ref|)). S: how far relative perturbations
    x*(1 + d*u) of the float inputs (random signs u, `PROBES` of them) move
    the element, divided by d, i.e. its sensitivity to rounding-sized changes
    of what enters it. An honest reordering is the exact computation on inputs
    perturbed by about K*eps, so its error is about K*eps*S, whatever the ops
    (sums, exp, softmax, normalisations), and S is used as it is. A: the
    reference run on the magnitudes of its inputs (`ref_abs` binds the
    weights' magnitudes), exactly the sum of |terms| for sums of products
    (matmul, convolutions, sums): a floor under S, whose random signs can
    cancel, capped at max|ref| because for other ops (exp(|x|)) it means
    nothing. Without `ref_abs` (weights the worker cannot make positive) A is
    taken as infinite: M = max(S, max|ref|), the global bound widened where
    the outputs are that sensitive.
    """
    magnitudes = (ref_abs.to_host(ref_abs(ref_abs.device_inputs([magnitude(a) for a in arrays])))
                  if ref_abs is not None else None)
    moved = [np.zeros(e.shape) for e in expected]
    floats = [i for i, a in enumerate(arrays) if _is_float(a)]
    d = max((_PROBE_DELTA.get(_NAMES.get(arrays[i].dtype.name, "f32"), 2.0**-12) for i in floats), default=1.0)
    for _ in range(PROBES if floats else 0):
        probe = list(arrays)
        for i in floats:
            signs = rng.integers(0, 2, size=arrays[i].shape) * 2.0 - 1.0
            probe[i] = (arrays[i].astype(np.float64) * (1 + d * signs)).astype(arrays[i].dtype)
        for k, (e, m) in enumerate(zip(expected, ref.to_host(ref(ref.device_inputs(probe))))):
            with np.errstate(invalid="ignore"):
                moved[k] = np.maximum(moved[k], _finite_abs(m.astype(np.float64) - e.astype(np.float64)) / d)
    scales: list[np.ndarray | None] = []
    for k, (e, s) in enumerate(zip(expected, moved)):
        if not _is_float(e):
            scales.append(None)
            continue
        values = np.abs(e.astype(np.float64))
        top = float(values[np.isfinite(values)].max(initial=0.0))
        floor = top if magnitudes is None else np.minimum(_finite_abs(magnitudes[k]), top)
        scales.append(np.maximum(s, floor))
    return scales
