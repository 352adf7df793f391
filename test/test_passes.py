"""Pass registry, pipeline parsing, and every pass run end to end on the examples."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from mlirforge.lowering.iree_compile import compile_mlir
from mlirforge.lowering.ir import ir
from mlirforge.lowering.options import LoweringOptions
from mlirforge.lowering.runtime import IreeModule
from mlirforge.lowering.torch_export import export_model
from mlirforge.numerics import compare_outputs
from mlirforge.passes import get_all_passes
from mlirforge.passes import kernels
from mlirforge.passes import PipelineError, parse_pipeline, run_pipeline

from conftest import load_example


def test_registry_keys_are_the_pass_names():
    for key, factory in get_all_passes().items():
        cls = factory()
        assert cls.name == key
        assert dataclasses.is_dataclass(cls.Options) and cls.Options.__dataclass_params__.frozen
        assert cls.summary


def test_pipeline_round_trips_options():
    (p,) = parse_pipeline("mlirforge-annotate-tiling{distribution=8,16,0 pipeline=Default}")
    assert p.options.distribution == (8, 16, 0) and p.options.pipeline == "Default"
    assert repr(p) == "mlirforge-annotate-tiling{distribution=8,16,0 pipeline=Default}"


@pytest.mark.parametrize(
    "text, column, message",
    [
        ("mlirforge-outline-kernels,nope", 27, "unknown pass 'nope'"),
        ("mlirforge-outline-kernels{bogus=1}", 27, "unknown option 'bogus'"),
        ("mlirforge-outline-kernels{producers=2}", 27, "bad value '2'"),
        ("mlirforge-annotate-tiling{pipeline=Fast}", 27, "pipeline must be one of"),
        ("mlirforge-outline-kernels{producers=true", 26, "unclosed '{'"),
        ("mlirforge-outline-kernels,,mlirforge-inline-kernels", 27, "empty pass name"),
    ],
)
def test_pipeline_errors_name_the_problem_and_column(text, column, message):
    with pytest.raises(PipelineError) as info:
        parse_pipeline(text)
    assert info.value.column == column and message in str(info.value)


def _run_example(name: str, pipeline: str, flags=LoweringOptions().iree_flags):
    model, inputs = load_example(name)
    exported = export_model(model, inputs, LoweringOptions())
    with ir.Context():
        module = ir.Module.parse(exported.lowered.mlir)
        run_pipeline(module, parse_pipeline(pipeline))
        text = module.operation.get_asm()
    vmfb = compile_mlir(text, extra_flags=flags).vmfb
    runner = IreeModule(vmfb, parameters=exported.parameters)
    with torch.no_grad():
        expected = model(*inputs)
    (actual,) = runner(*[inputs[i] for i in range(len(inputs))])
    return compare_outputs(actual, expected), text


PIPELINES = {
    "outline": "mlirforge-outline-kernels",
    "outline-inline": "mlirforge-outline-kernels,mlirforge-inline-kernels",
    "generalize": "mlirforge-outline-kernels,mlirforge-generalize-named-ops,mlirforge-inline-kernels",
    "fold-transpose": "mlirforge-fold-transpose-into-matmul",
    "channels-last": "mlirforge-conv-to-channels-last",
}


@pytest.mark.parametrize("example", ["mlp", "cnn", "transformer_block"])
@pytest.mark.parametrize("pipeline", list(PIPELINES))
def test_pass_pipelines_keep_examples_numerically_equal(example, pipeline):
    (ok, _, msg), _ = _run_example(example, PIPELINES[pipeline])
    assert ok, msg


def test_outline_finds_one_kernel_per_layer_and_inline_restores():
    model, inputs = load_example("mlp")
    mlir = export_model(model, inputs, LoweringOptions()).lowered.mlir
    with ir.Context():
        module = ir.Module.parse(mlir)
        run_pipeline(module, parse_pipeline("mlirforge-outline-kernels"))
        roots = sorted(str(k.attributes["mlirforge.kernel_root"]) for k in kernels(module))
        assert roots == ['"linalg.matmul"'] * 3
        run_pipeline(module, parse_pipeline("mlirforge-inline-kernels"))
        assert not kernels(module)
        assert "call @kernel" not in module.operation.get_asm()


def test_tiling_annotation_reaches_iree_and_keeps_numerics():
    (ok, _, msg), text = _run_example(
        "mlp",
        "mlirforge-outline-kernels,mlirforge-annotate-tiling{distribution=32,64,0 "
        "vector-common-parallel=8,16,0 vector-reduction=0,0,8},mlirforge-inline-kernels",
        flags=(),
    )
    assert ok, msg
    assert text.count("compilation_info = #") == 3
