"""The evaluation worker: runs a reference and a candidate module in a subprocess.

Started as `python -m mlirforge.llm_rewrite.worker REQUEST.json` with a time
limit by `llm_rewrite.evaluate`; it sets its own memory limit, so a candidate
that crashes, hangs or eats memory costs a Verdict, never the user's process.
It imports only numpy and the IREE runtime (no torch, no compiler), which keeps
its start-up short.

The request and reply are `llm_rewrite.worker_protocol`'s.
"""

from __future__ import annotations

import json
import resource
import sys
import time

import numpy as np

from mlirforge.llm_rewrite.worker_protocol import ModuleSpec, WorkerRequest

_EPS = {"f32": 2.0**-23, "f16": 2.0**-10, "bf16": 2.0**-7, "f64": 2.0**-52}


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


def make_input(rng: np.random.Generator, shape, dtype: str, dist: str) -> np.ndarray:
    """One input tensor of a distribution; integers stay small and non-negative."""
    np_dtype = numpy_dtype(dtype)
    if dtype.startswith("i"):
        return rng.integers(0, 2, size=shape).astype(np_dtype)
    x = rng.standard_normal(shape)
    if dist == "wide":
        x = np.sign(x) * 10.0 ** rng.uniform(-3, 3, size=shape)
    elif dist == "tiny":
        x = x * 1e-6
    elif dist == "large":
        # Large but safe: products of two stay below fp32's range even summed.
        x = x * (1e15 if dtype in ("f32", "f64") else 1e2)
    elif dist == "all_negative":
        x = -np.abs(x)
    elif dist == "edge":
        specials = np.array([0.0, -0.0, np.inf, -np.inf, np.nan], dtype=np.float64)
        mask = rng.random(shape) < 0.05
        x = np.where(mask, specials[rng.integers(0, len(specials), size=shape)], x)
    return np.asarray(x).astype(np_dtype)


def tolerance(dtype: str, depth: int) -> tuple[float, float]:
    """(rtol, atol factor): an element may differ by rtol*|ref| + factor*max|ref|.

    Reassociating a K-term sum changes it by at most about K*eps of the largest
    partial sums; the bound scales with the reduction depth and the dtype.
    """
    eps = _EPS.get(dtype, 0.0)
    return 8 * eps * max(1, depth) ** 0.5, 2 * eps * max(1, depth)


def compare(ref: np.ndarray, got: np.ndarray, depth: int) -> dict:
    """Compare one output; NaN and inf positions must match exactly."""
    if ref.shape != got.shape or ref.dtype != got.dtype:
        return {"ok": False, "why": f"output is {got.dtype}{list(got.shape)}, expected {ref.dtype}{list(ref.shape)}"}
    if not np.issubdtype(ref.dtype, np.floating) and ref.dtype.name != "bfloat16":
        differ = np.argwhere(ref != got)
        if not len(differ):
            return {"ok": True, "max_error": 0.0, "tolerance": 0.0}
        shown = "; ".join(f"at {tuple(int(i) for i in idx)} got {got[tuple(idx)].item()!r}, expected {ref[tuple(idx)].item()!r}"
                          for idx in differ[:3])
        return {"ok": False, "max_error": float("inf"), "tolerance": 0.0,
                "why": f"{len(differ)} of {ref.size} elements differ: {shown}"}
    r, g = ref.astype(np.float64), got.astype(np.float64)
    if not np.array_equal(np.isnan(r), np.isnan(g)):
        return {"ok": False, "why": "NaN positions differ", "max_error": float("nan"), "tolerance": 0.0}
    rinf, ginf = np.isinf(r), np.isinf(g)
    if not np.array_equal(rinf, ginf) or not np.array_equal(r[rinf], g[ginf]):
        return {"ok": False, "why": "inf positions or signs differ", "max_error": float("inf"), "tolerance": 0.0}
    finite = np.isfinite(r)
    if not finite.any():
        return {"ok": True, "max_error": 0.0, "tolerance": 0.0}
    dtype = {"float32": "f32", "float16": "f16", "bfloat16": "bf16", "float64": "f64"}.get(ref.dtype.name, "f32")
    rtol, factor = tolerance(dtype, depth)
    scale = float(np.abs(r[finite]).max())
    err = np.abs(r[finite] - g[finite])
    bound = rtol * np.abs(r[finite]) + factor * scale
    worst = float(err.max())
    ok = bool((err <= bound).all())
    return {"ok": ok, "max_error": worst, "tolerance": float(bound.max()), "why": "" if ok else "values differ"}


class Runner:
    """A vmfb loaded with the IREE runtime; call with numpy arrays."""

    def __init__(self, spec: ModuleSpec, driver: str, weights: list[np.ndarray] | None = None):
        import iree.runtime as rt

        self.rt = rt
        config = rt.Config(driver)
        self.device = config.device
        instance = config.vm_instance
        modules = []
        if spec.parameters or weights:
            index = rt.ParameterIndex()
            if spec.parameters:
                index.load(spec.parameters)
            for k, w in enumerate(weights or []):
                index.add_buffer(f"p{k}", w)
            modules.append(rt.create_io_parameters_module(instance, index.create_provider(scope="mlirforge")))
        modules.append(rt.create_hal_module(instance, self.device))
        main = rt.VmModule.mmap(instance, spec.vmfb)
        modules.append(main)
        self.context = rt.VmContext(instance, modules)
        self.function = main.lookup_function(spec.function)
        if self.function is None:
            raise ValueError(f"no function @{spec.function} in {spec.vmfb}")
        # Inputs the module writes into (`lowering.aliasing`): each call gets a fresh
        # copy, as in the backend and in artifacts, and that copy is part of its time.
        self.copy_inputs = frozenset(spec.copy_inputs)

    def device_inputs(self, arrays) -> list:
        """Device buffers for host arrays: (host array, device array) pairs, one per input."""
        return [(a, self.rt.asdevicearray(self.device, a)) for a in arrays]

    def __call__(self, dev_inputs) -> list:
        rt = self.rt
        args = rt.VmVariantList(len(dev_inputs))
        for i, (host, d) in enumerate(dev_inputs):
            if i in self.copy_inputs:
                d = rt.asdevicearray(self.device, host)
            args.push_ref(d._buffer_view)
        results = rt.VmVariantList(1)
        self.context.invoke(self.function, args, results)
        return [results.get_as_ref(i).deref(rt.HalBufferView) for i in range(len(results))]

    def to_host(self, views) -> list[np.ndarray]:
        return [self.rt.DeviceArray(self.device, v, implicit_host_transfer=True).to_host().copy() for v in views]


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def check(ref: Runner, cand: Runner, request: WorkerRequest) -> dict:
    rng = np.random.default_rng(request.seed)
    depth = request.reduction_depth
    evidence = {"seeds": 0, "distributions": [], "max_error": 0.0, "tolerance": None}
    for dist in request.distributions:
        for _ in range(request.samples):
            arrays = [make_input(rng, s["shape"], s["dtype"], dist) for s in request.inputs]
            before = [a.copy() for a in arrays]
            expected = ref.to_host(ref(ref.device_inputs(arrays)))
            cand_inputs = cand.device_inputs(arrays)
            first_views = cand(cand_inputs)
            got = cand.to_host(first_views)
            # What the module saw as its inputs, read back: a write into them is a wrong result.
            seen = cand.to_host([d._buffer_view for _, d in cand_inputs])
            # Fresh outputs: a second call must not overwrite the first call's results.
            cand(cand.device_inputs([make_input(rng, s["shape"], s["dtype"], "normal") for s in request.inputs]))
            again = cand.to_host(first_views)
            evidence["seeds"] += 1
            if dist not in evidence["distributions"]:
                evidence["distributions"].append(dist)
            if any(not _same_bits(a, b) for a, b in zip(seen, before)):
                return {"equivalent": False, "equivalence": {**evidence, "distribution": dist, "why": "candidate modified its inputs"}}
            if len(got) != len(expected):
                return {"equivalent": False, "equivalence": {**evidence, "distribution": dist,
                        "why": f"{len(got)} outputs, expected {len(expected)}"}}
            for i, (e, g, g2) in enumerate(zip(expected, got, again)):
                if not np.array_equal(g, g2, equal_nan=True):
                    return {"equivalent": False, "equivalence": {**evidence, "distribution": dist,
                            "why": f"output {i} was overwritten by a later call (reused buffer)"}}
                result = compare(e, g, depth)
                evidence["max_error"] = max(evidence["max_error"], result.get("max_error", 0.0) or 0.0)
                if result.get("tolerance") is not None:
                    evidence["tolerance"] = max(evidence["tolerance"] or 0.0, result["tolerance"])
                if not result["ok"]:
                    return {"equivalent": False, "equivalence": {**evidence, "distribution": dist, "output": i,
                            "max_error": result.get("max_error"), "tolerance": result.get("tolerance"),
                            "why": result.get("why", "")}}
    return {"equivalent": True, "equivalence": evidence}


def time_ab(ref: Runner, cand: Runner, request: WorkerRequest) -> dict:
    """Interleaved A/B rounds; the speedup's CI comes from a paired bootstrap."""
    t = request.timing
    rng = np.random.default_rng(request.seed + 1)
    arrays = [make_input(rng, s["shape"], s["dtype"], "normal") for s in request.inputs]
    ref_in, cand_in = ref.device_inputs(arrays), cand.device_inputs(arrays)
    for _ in range(t.warmup):
        ref(ref_in)
        cand(cand_in)
    inner = t.inner
    a, b = [], []
    for _ in range(t.rounds):
        for runner, inputs, out in ((ref, ref_in, a), (cand, cand_in, b)):
            start = time.perf_counter()
            for _ in range(inner):
                runner(inputs)
            out.append((time.perf_counter() - start) / inner)
    a, b = np.array(a), np.array(b)
    speedup = float(np.median(a) / np.median(b))
    n = len(a)
    idx = rng.integers(0, n, size=(t.bootstrap, n))
    ratios = np.median(a[idx], axis=1) / np.median(b[idx], axis=1)
    alpha = (1 - t.confidence) / 2
    low, high = np.quantile(ratios, [alpha, 1 - alpha])
    return {
        "baseline_us": float(np.median(a) * 1e6),
        "candidate_us": float(np.median(b) * 1e6),
        "speedup": speedup,
        "ci_low": float(low),
        "ci_high": float(high),
        "rounds": n,
        "inner": inner,
        "confidence": t.confidence,
    }


def run(request: WorkerRequest) -> dict:
    driver = request.driver
    # A kernel's weight arguments are parameters (as in the model): one draw,
    # shared by both modules, from the request's seed.
    rng = np.random.default_rng(request.seed + 2)
    weights = [np.ascontiguousarray(make_input(rng, w["shape"], w["dtype"], "normal")) for w in request.weights]
    ref = Runner(request.reference, request.reference.driver or driver, weights)
    cand = Runner(request.candidate, request.candidate.driver or driver, weights)
    out: dict = {}
    if request.check:
        out.update(check(ref, cand, request))
        if not out["equivalent"]:
            return out
    if request.timing:
        out["timing"] = time_ab(ref, cand, request)
    return out


def main() -> int:
    request = WorkerRequest.from_json(json.loads(open(sys.argv[1]).read()))
    limit = request.memory_mb
    if limit:
        resource.setrlimit(resource.RLIMIT_AS, (limit * 2**20, limit * 2**20))
    try:
        reply = run(request)
    except MemoryError:
        reply = {"error": f"candidate exceeded the worker's memory limit ({limit} MB)"}
    except Exception as exc:  # the candidate's failure is a verdict
        reply = {"error": f"{type(exc).__name__}: {exc}"}
    sys.stdout.write(json.dumps(reply))
    return 0


if __name__ == "__main__":
    sys.exit(main())
