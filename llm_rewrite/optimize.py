"""The whole optimisation of one lowered model: kernels -> search -> composition.

Used by the driver (`mlirforge optimize`), the Python API and the
torch.compile backend (`options={"optimize": True}`). Nothing here writes the
artifact; it returns what to build and the evidence for the manifest.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil

import torch

from mlirforge.llm_rewrite.cache import RewriteCache
from mlirforge.llm_rewrite.compose import Composition, apply_winners, compose, confirm_in_model
from mlirforge.llm_rewrite.evaluate import EvalSettings, ModelEvaluator, new_workdir
from mlirforge.llm_rewrite.kernels import extract_kernels
from mlirforge.llm_rewrite.proposers import Proposer
from mlirforge.llm_rewrite.search import Search, SearchResult
from mlirforge.llm_rewrite.settings import SearchSettings
from mlirforge.llm_rewrite.types import TensorSpec
from mlirforge.lowering.iree_compile import ModuleCache
from mlirforge.lowering.runtime import write_parameter_archive

log = logging.getLogger("mlirforge.llm_rewrite")

_MLIR_DTYPES = {torch.float32: "f32", torch.float16: "f16", torch.bfloat16: "bf16", torch.float64: "f64",
                torch.int64: "i64", torch.int32: "i32", torch.int8: "i8", torch.bool: "i1"}


def spec_of(t: torch.Tensor) -> TensorSpec:
    if t.dtype not in _MLIR_DTYPES:
        raise ValueError(f"unsupported input dtype {t.dtype}")
    return TensorSpec(tuple(t.shape), _MLIR_DTYPES[t.dtype])


@dataclasses.dataclass
class Optimization:
    composition: Composition
    search: SearchResult
    outlined: str
    settings: EvalSettings


def optimize_lowered(
    mlir: str,
    parameters: list[torch.Tensor],
    inputs: list[torch.Tensor],
    proposer: Proposer,
    search_settings: SearchSettings,
    eval_settings: EvalSettings,
    use_rewrite_cache: bool = True,
    use_module_cache: bool = True,
    progress=lambda event, info: None,
) -> Optimization:
    """Search rewrites for a lowered model (weights bound as parameters) and compose them."""
    workdir = new_workdir()
    try:
        outlined, kernels = extract_kernels(mlir)
        params_path = write_parameter_archive(workdir / "parameters.irpa", parameters)
        module_cache = ModuleCache() if use_module_cache else None
        depth = max((k.reduction_depth for k in kernels), default=1)
        model = ModelEvaluator(mlir, params_path, [spec_of(t) for t in inputs], depth, eval_settings, workdir,
                               module_cache)
        rewrite_cache = RewriteCache() if use_rewrite_cache else None
        try:
            baseline = apply_winners(outlined, [], eval_settings)  # the model without any rewrite, once

            def confirm(kernel, cand, verdict, settings):
                return confirm_in_model(model, outlined, (kernel, cand, verdict), settings, baseline)

            def profile_model(flags, driver):
                from mlirforge.llm_rewrite.in_model import model_kernel_profile

                return model_kernel_profile(apply_winners(outlined, [], eval_settings, tagged=True), baseline,
                                            flags, driver, params_path, model.inputs, module_cache)

            search = Search(kernels, model, proposer, search_settings, eval_settings, workdir, rewrite_cache,
                            module_cache, progress, confirm=confirm, profile_model=profile_model)
            result = search.run()
            # Kernels were searched under the module winner's flags and driver; compose under them too.
            chosen = dataclasses.replace(eval_settings, base_flags=result.flags, driver=result.driver)
            winners = [(kr.kernel, *kr.winner) for kr in result.kernels if kr.winner is not None]
            composition = compose(model, outlined, winners, list(result.flags), result.driver, chosen, progress)
            search.forget_rejected(
                [kernel.hash for (kernel, _, _), _ in composition.dropped],
                module_held=bool(composition.verdict and composition.verdict.accepted),
            )
        finally:
            if rewrite_cache is not None:
                rewrite_cache.close()
        return Optimization(composition, result, outlined, chosen)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def unoptimized_result(mlir: str, settings: EvalSettings) -> Optimization:
    """What an optimisation that kept nothing looks like (used when the search fails)."""
    from mlirforge.llm_rewrite.compose import Composition

    composition = Composition(mlir, list(settings.base_flags), settings.driver, [], [], None)
    return Optimization(composition, SearchResult(None, [], [], 0, 0.0), mlir, settings)
