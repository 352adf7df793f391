"""The `torch.compile` backend: `torch.compile(model, backend="mlirforge")`.

Dynamo hands us a torch-level graph; aot_autograd turns it into an ATen graph
(functionalised, decomposed with torch-mlir's table, weights lifted to inputs
and marked static) for the forward pass. The forward is compiled by IREE; a
backward pass, when autograd needs one, runs eagerly.

Shapes: a graph with concrete shapes is compiled at once. When dynamo makes a
graph dynamic (after it saw a second shape), we specialise it per concrete
input shape at call time, up to `max_shape_variants` shapes per graph; calls
with further shapes run eagerly. Recompiles of a shape already seen in another
process come from the on-disk module cache.
"""

from __future__ import annotations

import dataclasses
import logging
import warnings
from collections.abc import Callable, Sequence

import torch
import torch.utils._pytree as pytree
from functorch.compile import make_boxed_func
from torch._dynamo.backends.common import aot_autograd
from torch._functorch.aot_autograd import aot_export_joint_simple
from torch.fx.experimental.proxy_tensor import make_fx

from mlirforge.config import CompileConfig
from mlirforge.lowering.fx_import import aten_decompositions
from mlirforge.lowering.fallback import FallbackReport, compile_with_fallback
from mlirforge.lowering.graph_compiler import STATS

log = logging.getLogger("mlirforge")


class FallbackWarning(UserWarning):
    """Part of a model runs in eager PyTorch because mlirforge cannot (or chooses not to) lower it.

    Carries the structure behind its text: `kind` ("ops": these ops stay eager;
    "graph": a whole graph or a part that failed to compile; "shapes": more input
    shapes than `max_shape_variants`; "search": the search or its result failed and
    the graph was compiled without it; "faster-eager": the compiled graph measured
    slower than eager and runs eagerly, `eager_choice`), `report`, the graph's `FallbackReport`
    (None where there is none), and `ops`, the ATen op names it is about.
    """

    KINDS = ("ops", "graph", "shapes", "search", "faster-eager")

    def __init__(self, message: str, report: FallbackReport | None = None, ops: Sequence[str] = (),
                 kind: str = "graph"):
        super().__init__(message)
        if kind not in self.KINDS:
            raise ValueError(f"FallbackWarning kind {kind!r} is not one of {self.KINDS}")
        self.report = report
        self.ops = tuple(ops)
        self.kind = "ops" if ops else kind


def _report_fallback(report: FallbackReport) -> None:
    """Tell the user, for each compiled graph, what of it runs eagerly and why, naming the model lines."""
    new_ops = report.ops
    news = [m for m in [report.whole_graph_reason, *report.compile_failures] if m]

    def listed(ops) -> str:
        parts = []
        for op in sorted(ops):
            n, where = new_ops[op], report.locations.get(op, [])
            at = f" at {', '.join(where[:3])}{' ...' if len(where) > 3 else ''}" if where else ""
            parts.append(f"{op} ({n} node{'s' * (n > 1)}{at})")
        return ", ".join(parts)

    chosen = [op for op in new_ops if op in report.by_choice]
    failed = [op for op in new_ops if op not in report.by_choice]
    rest = "so does the rest of this graph" if report.all_eager else "the rest of the graph is compiled"
    if failed:
        warnings.warn(FallbackWarning(f"mlirforge: these ops run in eager PyTorch: {listed(failed)}; {rest}",
                                      report, sorted(failed)), stacklevel=3)
    if chosen:
        why = "; ".join(f"{op}: {report.by_choice[op]}" for op in sorted(chosen))
        warnings.warn(FallbackWarning(
            f"mlirforge: these ops run in eager PyTorch by choice: {listed(chosen)}; why: {why}",
            report, sorted(chosen)), stacklevel=3)
    for message in news:
        prefix = "a graph runs in eager PyTorch: " if message == report.whole_graph_reason else ""
        warnings.warn(FallbackWarning(f"mlirforge: {prefix}{message}", report), stacklevel=3)


def _static_positions(example_inputs: Sequence) -> list[int]:
    """Placeholder positions holding weights/buffers, as aot_autograd marked them."""
    ctx = torch._guards.TracingContext.try_get()
    meta = getattr(ctx, "fw_metadata", None) if ctx is not None else None
    if meta is not None and getattr(meta, "static_input_indices", None) is not None:
        return list(meta.static_input_indices)
    return [i for i, x in enumerate(example_inputs) if isinstance(x, torch.nn.Parameter)]


def _is_symbolic(x) -> bool:
    if isinstance(x, torch.SymInt | torch.SymFloat | torch.SymBool):
        return True
    if isinstance(x, torch.Tensor):
        return any(isinstance(d, torch.SymInt) for d in x.shape)
    return False


def _shape_key(args: Sequence) -> tuple:
    return tuple(
        (tuple(a.shape), a.dtype) if isinstance(a, torch.Tensor) else (type(a).__name__, a)
        for a in args
    )


class ShapeSpecialized:
    """Compiles a dynamic-shape graph once per concrete shape, up to a bound."""

    def __init__(self, gm: torch.fx.GraphModule, static: list[int], config: CompileConfig):
        self.gm = gm
        self.static = static
        self.config = config
        self.variants: dict[tuple, Callable] = {}
        self._warned = False

    def __call__(self, *args):
        key = _shape_key(args)
        fn = self.variants.get(key)
        if fn is None:
            if len(self.variants) >= self.config.max_shape_variants:
                if not self._warned:
                    self._warned = True
                    warnings.warn(FallbackWarning(
                        f"mlirforge: more than {self.config.max_shape_variants} input shapes for "
                        "one graph; further shapes run in eager PyTorch "
                        "(raise the 'max_shape_variants' option to compile more)", kind="shapes"),
                        stacklevel=2,
                    )
                return self.gm(*args)
            concrete = make_fx(self.gm, decomposition_table=aten_decompositions(), tracing_mode="fake")(
                *args
            )
            fn, report = compile_with_fallback(concrete, self.static, self.config.lowering)
            _report_fallback(report)
            self.variants[key] = fn = _faster_of(self.config, fn, concrete, report)
        return fn(*args)


class OptimizeOnFirstCall:
    """`options={"optimize": True}`: search verified rewrites once real tensors arrive.

    aot_autograd hands the compiler fake tensors; the search needs the real
    weights and inputs, so it runs on the first call. If the graph cannot be
    compiled whole (unsupported ops), it is compiled without a search.
    """

    def __init__(self, gm: torch.fx.GraphModule, static: list[int], config: CompileConfig,
                 eager: Callable | None = None):
        self.gm, self.static, self.config, self.eager = gm, static, config, eager
        self.fn: Callable | None = None

    def __call__(self, *args):
        if self.fn is None:
            self.fn = self._build(args)
        return self.fn(*args)

    def _build(self, args) -> Callable:
        from mlirforge.llm_rewrite.optimize import optimize_lowered
        from mlirforge.lowering.errors import LoweringError, UnsupportedOpError
        from mlirforge.lowering.graph_compiler import CompiledGraph, lower_graph
        from mlirforge.lowering.iree_compile import ModuleCache, compile_mlir
        from mlirforge.lowering.runtime import load_module

        opts = self.config.lowering
        try:
            lowered = lower_graph(self.gm, self.static, opts)
        except (LoweringError, UnsupportedOpError):
            return self._without_search()
        params = [args[i] for i in lowered.param_positions]
        inputs = [args[i] for i in lowered.input_positions]
        proposer = None
        try:
            proposer = self.config.make_proposer(transcript_out=_transcript_path())
            result = optimize_lowered(
                lowered.mlir, params, inputs, proposer,
                dataclasses.replace(self.config.search, allow_driver=False),
                self.config.eval_settings(), self.config.use_rewrite_cache, opts.use_cache,
            )
        except (KeyboardInterrupt, MemoryError):
            raise
        except Exception as exc:  # the search must never break the user's model
            warnings.warn(FallbackWarning(f"mlirforge: the search failed ({type(exc).__name__}: {exc}); "
                                          "compiling without it", kind="search"), stacklevel=2)
            return self._without_search()
        finally:
            if proposer is not None:
                proposer.close()
        comp = result.composition
        log.info("mlirforge: search kept %d kernel rewrites, flags %s, timed under %s, runs under %s (end to end: %s)",
                 len(comp.kept), " ".join(comp.flags), comp.driver, opts.driver,
                 comp.verdict.reason if comp.verdict else "-")
        try:
            compiled = compile_mlir(comp.mlir, "auto", comp.flags, ModuleCache() if opts.use_cache else None)
        except LoweringError as exc:  # what the search kept must not break the user's model either
            warnings.warn(FallbackWarning(f"mlirforge: the optimised graph failed to compile ({exc.summary()}); "
                                          "compiling without the search's rewrites", kind="search"), stacklevel=2)
            return self._without_search()
        lowered.mlir = comp.mlir
        STATS.graphs_compiled += 1
        # The search timed under one driver (it may not switch drivers here); the graph then runs
        # under the user's, as the unoptimised one would: `auto` keeps whichever is faster for it.
        module = load_module(compiled.vmfb, driver=opts.driver, parameters=None, copy_inputs=compiled.copy_inputs())
        return _faster_of(self.config, CompiledGraph(lowered, module, compiled.key), self.gm, None, self.eager)

    def _without_search(self) -> Callable:
        fn, report = compile_with_fallback(self.gm, self.static, self.config.lowering)
        _report_fallback(report)
        return _faster_of(self.config, fn, self.gm, report, self.eager)


def _transcript_path():
    """Where an LLM search started by the backend records its transcript (the cache directory)."""
    import os
    import time

    from mlirforge.lowering.stages import cache_root

    return cache_root() / "transcripts" / f"{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.jsonl"


def _compile_forward(config: CompileConfig, gm: torch.fx.GraphModule, example_inputs):
    static = _static_positions(example_inputs)
    if any(_is_symbolic(x) for x in example_inputs):
        fn: Callable = ShapeSpecialized(gm, static, config)
    elif config.optimize:
        fn = OptimizeOnFirstCall(gm, static, config)
    else:
        fn, report = compile_with_fallback(gm, static, config.lowering)
        _report_fallback(report)
        fn = _faster_of(config, fn, gm, report)
    return make_boxed_func(fn)


def _compile_inference(config: CompileConfig, gm: torch.fx.GraphModule, static: list[int],
                       eager: Callable | None = None) -> Callable:
    """`eager`: the graph as the user's eager PyTorch runs it (dynamo's, before our decompositions),
    which `eager_if_faster` times the compiled graph against; default `gm`."""
    if config.optimize:
        return OptimizeOnFirstCall(gm, static, config, eager)
    fn, report = compile_with_fallback(gm, static, config.lowering)
    _report_fallback(report)
    return _faster_of(config, fn, gm, report, eager)


def _faster_of(config: CompileConfig, fn: Callable, gm: torch.fx.GraphModule, report: FallbackReport | None,
               eager: Callable | None = None) -> Callable:
    """`fn`, or `eager` (default: `gm` run eagerly) if it measures faster (`eager_choice`); a graph already
    all eager is left as it is (`report` None: compiled whole)."""
    if not config.eager_if_faster or (report is not None and report.all_eager):
        return fn
    from mlirforge.eager_choice import EagerIfFaster
    from mlirforge.lowering.partition import node_op_name

    ops = [node_op_name(n) for n in gm.graph.nodes if n.op == "call_function"]
    distinct = list(dict.fromkeys(ops))
    shown = ", ".join(distinct[:3]) + (", ..." if len(distinct) > 3 else "")
    return EagerIfFaster(fn, eager or gm, name=f"a graph of {len(ops)} op{'s' * (len(ops) != 1)} ({shown})")


def _eager_backward(gm: torch.fx.GraphModule, example_inputs):
    return make_boxed_func(gm)


def _inference_graph(gm: torch.fx.GraphModule, example_inputs) -> tuple[torch.fx.GraphModule, list[int]] | None:
    """dynamo's graph as a functional ATen graph for an inference call, with its static positions.

    None when aot_autograd is needed: an input that requires grad while grad
    mode is on (dynamo guards on both), symbolic shapes, a graph that writes
    into its inputs, or an output that is a view of an input (aot_autograd's
    runtime wrapper replays those; a compiled module alone would not).
    """
    tensors = [x for x in example_inputs if isinstance(x, torch.Tensor)]
    if torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
        return None
    if len(tensors) != len(example_inputs) or any(_is_symbolic(x) for x in example_inputs):
        return None
    placeholders = list(gm.graph.find_nodes(op="placeholder"))
    if any(_is_symbolic(n.meta.get("example_value")) for n in placeholders):
        return None
    if _outputs_share_memory(gm, example_inputs):
        return None
    fake_mode = torch._guards.detect_fake_mode(example_inputs) or torch._subclasses.FakeTensorMode()
    with fake_mode:
        fakes = tuple(fake_mode.from_tensor(x) for x in example_inputs)
    try:
        # aot_autograd's own inference export: functional ATen with our decompositions,
        # and an error (not a calling-convention change) for input mutations and aliased outputs.
        # Run through an Interpreter under preserve_node_meta, as aot_autograd does, so each ATen
        # node keeps its stack trace: messages and located errors name the model's lines.
        with torch.fx.traceback.preserve_node_meta():
            aten = aot_export_joint_simple(lambda *args: torch.fx.Interpreter(gm).run(*args), fakes,
                                           trace_joint=False, decompositions=aten_decompositions())
    except RuntimeError as exc:
        log.debug("mlirforge: inference export refused (%s); using aot_autograd", str(exc).splitlines()[0])
        return None
    if len(aten.graph.find_nodes(op="placeholder")) != len(example_inputs):
        return None  # effect tokens (e.g. linalg.inv's): a calling convention only aot_autograd's wrapper keeps
    static = [i for i, n in enumerate(placeholders) if n.meta.get("tensor_dict", {}).get("_dynamo_static_input_type")]
    static += [i for i, x in enumerate(example_inputs) if isinstance(x, torch.nn.Parameter) and i not in static]
    return aten, sorted(static)


def _outputs_share_memory(gm: torch.fx.GraphModule, example_inputs) -> bool:
    """True if two outputs of the graph are views of one storage (`return y, y.t()`), run on fake tensors.

    aot_autograd's runtime wrapper regenerates such views; a compiled module returns separate buffers.
    """
    with torch._subclasses.FakeTensorMode(allow_non_fake_inputs=True) as mode, torch.no_grad():
        outs = gm(*[mode.from_tensor(x) for x in example_inputs])
    storages = [t.untyped_storage()._cdata for t in pytree.tree_leaves(outs) if isinstance(t, torch.Tensor)]
    return len(set(storages)) < len(storages)


def mlirforge_backend(gm: torch.fx.GraphModule, example_inputs, options=None, **kwargs):
    """The dynamo backend entry point (registered as `mlirforge`).

    `options` (from `torch.compile(..., options=...)`) are validated by
    `CompileConfig.from_options`; a bad key raises `UserError` naming it.

    Inference calls (grad off, or no input requiring grad) take the thin path:
    the graph is traced to ATen here and dynamo calls the compiled module
    directly, with no aot_autograd runtime wrapper. Everything else (training,
    symbolic shapes, graphs that mutate or alias their inputs) goes through
    aot_autograd, whose backward runs eagerly.
    """
    if kwargs:
        options = {**(options or {}), **kwargs}
    config = CompileConfig.load(options)
    inference = _inference_graph(gm, example_inputs)
    if inference is not None:
        aten, static = inference
        STATS.thin_path_graphs += 1
        # Dynamo's own graph takes the same arguments and returns the same outputs; it runs
        # PyTorch's fused kernels (addmm, SDPA, ...) where the ATen graph has them decomposed.
        return _compile_inference(config, aten, static, eager=gm)
    compiler = aot_autograd(
        fw_compiler=lambda g, ex: _compile_forward(config, g, ex),
        bw_compiler=_eager_backward,
        decompositions=aten_decompositions(),
    )
    return compiler(gm, example_inputs)


def stats():
    """Process-wide counters of what the backend compiled and ran."""
    return STATS
