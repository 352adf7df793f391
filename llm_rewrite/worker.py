"""The evaluation worker: runs a reference and a candidate module in a subprocess.

Started as `python -m mlirforge.llm_rewrite.worker REQUEST.json` with a time
limit by `llm_rewrite.evaluate`; it sets its own memory, CPU-time and core-file
limits and dies with its parent, so a candidate that crashes, hangs or eats
memory costs a Verdict, never the user's process. It says on stderr which
phase it starts (`worker_protocol.PHASE`), so a crash or time-out names it.
It imports only numpy and the IREE runtime (no torch, no compiler), which keeps
its start-up short; a `triton` candidate adds torch and triton (`triton_runner`)
and the sandbox for Python code (`llm_rewrite.sandbox`).

What it draws and what it counts as equal (input distributions, the error
bound) is `llm_rewrite.equivalence`'s.

The request and reply are `llm_rewrite.worker_protocol`'s.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time

import numpy as np

from mlirforge.llm_rewrite.equivalence import compare, magnitude, make_input, term_scales
from mlirforge.llm_rewrite.worker_protocol import PHASE, ModuleSpec, TritonSpec, WorkerRequest

_phase_now = "starting"


def phase(what: str) -> None:
    """Say on stderr what the worker starts doing, so that a crash or time-out can name it."""
    global _phase_now
    _phase_now = what
    sys.stderr.write(PHASE + what + "\n")
    sys.stderr.flush()


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

    def read_back(self, dev_inputs) -> list[np.ndarray]:
        """The inputs as the module left them (a write into one is a wrong result)."""
        return self.to_host([d._buffer_view for _, d in dev_inputs])

    def sync(self) -> None:
        """Nothing to wait for: an IREE invocation returns when its results are ready."""


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype and a.tobytes() == b.tobytes()


def _differ_bits(a: np.ndarray, b: np.ndarray) -> int:
    if a.shape != b.shape or a.dtype != b.dtype:
        return a.size
    width = a.dtype.itemsize
    return int((a.view(np.uint8).reshape(-1, width) != b.view(np.uint8).reshape(-1, width)).any(axis=1).sum())


def check(ref: Runner, cand: Runner, request: WorkerRequest, ref_abs: Runner | None = None) -> dict:
    """The candidate against the reference on every distribution's draws.

    The error bound is per element (`term_scales`); `ref_abs`, the reference
    with the weights' magnitudes bound, adds the magnitudes run (`terms`),
    without it the bound is at least the global one (`global`).
    """
    rng = np.random.default_rng(request.seed)
    depth = request.reduction_depth
    evidence = {"seeds": 0, "distributions": [], "max_error": 0.0, "tolerance": None,
                "error_bound": "terms" if ref_abs is not None else "global", "bound_use": 0.0}
    for dist in request.distributions:
        for _ in range(request.samples):
            arrays = [make_input(rng, s["shape"], s["dtype"], dist) for s in request.inputs]
            before = [a.copy() for a in arrays]
            phase(f"running the reference on {dist} inputs")
            expected = ref.to_host(ref(ref.device_inputs(arrays)))
            scales = term_scales(ref, ref_abs, arrays, expected, rng)
            phase(f"running the candidate on {dist} inputs")
            cand_inputs = cand.device_inputs(arrays)
            first_views = cand(cand_inputs)
            got = cand.to_host(first_views)
            # What the module saw as its inputs, read back: a write into them is a wrong result.
            seen = cand.read_back(cand_inputs)
            modified = any(not _same_bits(a, b) for a, b in zip(seen, before))
            # The same inputs again must give the same bits (uninitialised memory does not).
            repeat = cand.to_host(cand(cand.device_inputs([a.copy() for a in before])))
            # Fresh outputs: a later call must not overwrite the first call's results.
            cand(cand.device_inputs([make_input(rng, s["shape"], s["dtype"], "normal") for s in request.inputs]))
            again = cand.to_host(first_views)
            evidence["seeds"] += 1
            if dist not in evidence["distributions"]:
                evidence["distributions"].append(dist)

            def wrong(why: str, **more) -> dict:
                return {"equivalent": False, "equivalence": {**evidence, "distribution": dist, **more, "why": why}}

            if modified:
                return wrong("candidate modified its inputs")
            if len(got) != len(expected):
                return wrong(f"{len(got)} outputs, expected {len(expected)}")
            for i, (e, g, g2, g3, scale) in enumerate(zip(expected, got, again, repeat, scales)):
                if not np.array_equal(g, g2, equal_nan=True):
                    return wrong(f"output {i} was overwritten by a later call (reused buffer)")
                if not _same_bits(g, g3):
                    return wrong(f"nondeterministic: output {i} differs in {_differ_bits(g, g3)} of {g.size} "
                                 "elements between two calls on the same inputs (uninitialised memory?)")
                result = compare(e, g, depth, scale)
                evidence["max_error"] = max(evidence["max_error"], result.get("max_error", 0.0) or 0.0)
                evidence["bound_use"] = max(evidence["bound_use"], result.get("bound_use", 0.0))
                if result.get("tolerance") is not None:
                    evidence["tolerance"] = max(evidence["tolerance"] or 0.0, result["tolerance"])
                if not result["ok"]:
                    return wrong(result.get("why", ""), output=i, max_error=result.get("max_error"),
                                 tolerance=result.get("tolerance"))
    return {"equivalent": True, "equivalence": evidence}


def time_ab(ref: Runner, cand: Runner, request: WorkerRequest) -> dict:
    """Interleaved A/B rounds; the speedup's CI comes from a paired bootstrap."""
    phase("timing the reference and the candidate")
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
            runner.sync()
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


def candidate_runner(request: WorkerRequest, weights: list[np.ndarray]):
    """The candidate's runner: a module's `Runner`, or a Triton kernel's (`triton_runner`)."""
    spec = request.candidate
    if isinstance(spec, TritonSpec):
        from mlirforge.llm_rewrite.triton_runner import TritonRunner

        return TritonRunner(spec, weights)
    return Runner(spec, spec.driver or request.driver, weights)


def error_bound(request: WorkerRequest) -> str:
    """`terms` or `global`: per element only where the worker draws every operand (no parameter archive)."""
    if request.error_bound != "auto":
        return request.error_bound
    return "global" if request.reference.parameters or getattr(request.candidate, "parameters", None) else "terms"


def run(request: WorkerRequest) -> dict:
    driver = request.driver
    # A kernel's weight arguments are parameters (as in the model): one draw,
    # shared by both modules, from the request's seed.
    rng = np.random.default_rng(request.seed + 2)
    weights = [np.ascontiguousarray(make_input(rng, w["shape"], w["dtype"], "normal")) for w in request.weights]
    phase("loading the reference")
    ref = Runner(request.reference, request.reference.driver or driver, weights)
    ref_abs = None
    if request.check and error_bound(request) == "terms":
        ref_abs = ref
        if weights:
            phase("loading the reference with the weights' magnitudes")
            ref_abs = Runner(request.reference, request.reference.driver or driver, [magnitude(w) for w in weights])
    # The candidate last: a Triton kernel's loading closes the sandbox (`llm_rewrite.sandbox`).
    phase("loading the candidate")
    cand = candidate_runner(request, weights)
    out: dict = {}
    if request.check:
        out.update(check(ref, cand, request, ref_abs))
        if not out["equivalent"]:
            return out
    if request.timing:
        out["timing"] = time_ab(ref, cand, request)
    return out


def _lower_limit(kind: int, soft: int, hard: int) -> None:
    """Set a limit, never above one the worker already runs under."""
    current = resource.getrlimit(kind)
    soft, hard = (v if c == resource.RLIM_INFINITY else min(v, c) for v, c in zip((soft, hard), current))
    resource.setrlimit(kind, (min(soft, hard), hard))


def _die_with_parent() -> None:
    """Ask Linux to kill the worker when its parent exits (a search killed with SIGKILL leaves no worker)."""
    try:
        import ctypes
        import signal

        ctypes.CDLL(None).prctl(1, int(signal.SIGKILL))  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def sandbox(request: WorkerRequest) -> None:
    """The limits the worker sets on itself before it loads any module (see `worker_protocol`);
    for a Triton candidate also no network (`llm_rewrite.sandbox`, which confines its files later)."""
    triton = isinstance(request.candidate, TritonSpec)
    if triton:
        from mlirforge.llm_rewrite import sandbox as python_sandbox

        if request.candidate.device == "cpu":
            # First: it needs a process with one thread. Not on a GPU, where no run has yet shown
            # that CUDA starts inside a new user namespace; there the audit hook alone refuses sockets.
            python_sandbox.isolate_network()
    # CUDA reserves far more address space than it uses: a GPU worker's memory is bounded on the device.
    if request.memory_mb and not (triton and request.candidate.device == "cuda"):
        _lower_limit(resource.RLIMIT_AS, request.memory_mb * 2**20, request.memory_mb * 2**20)
    if request.cpu_s:
        # The soft limit sends SIGXCPU (reported as such by `run_worker`), the hard one SIGKILL.
        _lower_limit(resource.RLIMIT_CPU, request.cpu_s, request.cpu_s + 5)
    _lower_limit(resource.RLIMIT_CORE, 0, 0)
    _die_with_parent()


def _failure(exc: BaseException, request: WorkerRequest) -> str:
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, MemoryError) or "RESOURCE_EXHAUSTED" in text:
        limit = f"its {request.memory_mb} MB memory limit (EvalSettings.memory_mb)" if request.memory_mb else "memory"
        first = text.strip().splitlines()[0][:300]
        return f"the worker ran out of {limit} while {_phase_now}: {first}"
    return f"{text.strip().splitlines()[0][:500] if text.strip() else type(exc).__name__} (while {_phase_now})"


def main() -> int:
    request = WorkerRequest.from_json(json.loads(open(sys.argv[1]).read()))
    # The reply goes to the original stdout; anything a candidate prints goes to stderr.
    reply_out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sandbox(request)
    try:
        reply = run(request)
    except Exception as exc:  # the candidate's failure is a verdict
        reply = {"error": _failure(exc, request)}
    reply_out.write(json.dumps(reply))
    reply_out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
