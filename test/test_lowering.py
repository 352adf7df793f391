"""The lowering pieces: parameters, the module cache, stage reproducers."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
import textwrap

import pytest
import torch
from torch.fx.experimental.proxy_tensor import make_fx

import mlirforge
from mlirforge.lowering.errors import LoweringError
from mlirforge.lowering.fx_import import aten_decompositions, unsupported_ops_in
from mlirforge.lowering.graph_compiler import lower_graph
from mlirforge.lowering.iree_compile import compile_mlir
from mlirforge.lowering.options import LoweringOptions
from mlirforge.lowering.params import bind_parameters
from mlirforge.lowering.target import host_cpu
from mlirforge.lowering.torch_export import export_model

LINEAR = """func.func @main(%w: tensor<8x4xf32>, %x: tensor<2x4xf32>) -> tensor<2x8xf32> {
  %cst = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<4x8xf32>
  %t = linalg.transpose ins(%w : tensor<8x4xf32>) outs(%e : tensor<4x8xf32>) permutation = [1, 0]
  %o = tensor.empty() : tensor<2x8xf32>
  %f = linalg.fill ins(%cst : f32) outs(%o : tensor<2x8xf32>) -> tensor<2x8xf32>
  %m = linalg.matmul ins(%x, %t : tensor<2x4xf32>, tensor<4x8xf32>) outs(%f : tensor<2x8xf32>) -> tensor<2x8xf32>
  return %m : tensor<2x8xf32>
}
"""


def test_bind_parameters_turns_weights_into_named_parameters():
    bound = bind_parameters(LINEAR, [0])
    assert '#stream.parameter.named<"mlirforge"::"p0"> : tensor<8x4xf32>' in bound
    assert re.search(r"func\.func @main\(%\w+: tensor<2x4xf32>\) -> tensor<2x8xf32>", bound)
    assert "util.global.load @__param_0" in bound
    assert "func.func private @__mlirforge_graph" in bound


def test_bound_module_runs_with_weights_from_memory():
    from mlirforge.lowering.runtime import IreeModule

    vmfb = compile_mlir(bind_parameters(LINEAR, [0])).vmfb
    w, x = torch.randn(8, 4), torch.randn(2, 4)
    module = IreeModule(vmfb, parameters=[w])
    torch.testing.assert_close(module(x)[0], x @ w.t())


def test_unsupported_op_names_are_read_from_both_diagnostic_forms():
    text = (
        "f.py:5:0: error: failed to legalize operation 'torch.aten.erfinv': ...\n"
        "f.py:7:0: error: failed to legalize operation 'torch.operator' that was explicitly "
        'marked illegal: %1 = "torch.operator"(%arg0) <{name = "torch.aten.digamma"}>'
    )
    assert unsupported_ops_in(text) == ["aten.erfinv", "aten.digamma"]


def test_iree_compile_failure_leaves_a_reproducer():
    with pytest.raises(LoweringError) as info:
        compile_mlir("func.func @main() { %0 = foo.bar : i32 \n return }", source_name="x.mlir")
    err = info.value
    assert err.stage == "iree-compile" and "x.mlir:1:" in err.diagnostics
    command = (err.reproducer / "command.sh").read_text()
    assert "iree-compile input.mlir -o module.vmfb" in command
    assert (err.reproducer / "input.mlir").read_text().startswith("func.func @main()")


class _Big(torch.nn.Module):
    """About 100M parameters: 6 layers of 4096x4096."""

    def __init__(self):
        super().__init__()
        self.layers = torch.nn.ModuleList(torch.nn.Linear(4096, 4096, bias=False) for _ in range(6))

    def forward(self, x):
        for layer in self.layers:
            x = torch.relu(layer(x))
        return x


def test_100m_parameter_model_compiles_without_weights_in_mlir():
    with torch.device("cpu"):
        model = _Big().eval()
    assert sum(p.numel() for p in model.parameters()) > 100_000_000
    x = torch.randn(2, 4096)
    exported = export_model(model, [x], LoweringOptions())
    # 400 MB of weights, a few kB of IR.
    assert len(exported.lowered.mlir) < 20_000
    assert len(exported.parameters) == 6
    compiled = torch.compile(model, backend="mlirforge")
    calls = mlirforge.stats().iree_calls
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x), rtol=1e-3, atol=1e-4)
    assert mlirforge.stats().iree_calls == calls + 1


def test_module_cache_skips_iree_in_a_second_process(tmp_path):
    script = textwrap.dedent(
        """
        import torch, mlirforge
        torch.manual_seed(0)
        m = torch.nn.Sequential(torch.nn.Linear(8, 8), torch.nn.ReLU()).eval()
        with torch.no_grad():
            torch.compile(m, backend="mlirforge")(torch.randn(2, 8))
        s = mlirforge.stats()
        print(s.graphs_compiled, s.module_cache_hits)
        """
    )
    env = {**os.environ, "MLIRFORGE_CACHE_DIR": str(tmp_path)}
    first = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    second = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert first.stdout.split() == ["1", "0"]
    assert second.stdout.split() == ["1", "1"]
    assert len(list((tmp_path / "modules").glob("*.vmfb"))) == 1


def test_compile_stages_are_one_ordered_list_that_runs_and_keys_the_cache():
    from mlirforge.lowering import stages
    from mlirforge.lowering.iree_compile import module_key

    assert [s.name for s in stages.stages_for("linalg")] == [
        "fx-import", "torch-backend", "linalg", "channels-last", "tile-reductions", "bind-parameters", "iree-compile"]
    assert {"linalg", "channels-last", "tile-reductions"}.isdisjoint(s.name for s in stages.stages_for("torch"))
    key = module_key(LINEAR, ["--x"])
    assert module_key(LINEAR, ["--x"]) == key and module_key(LINEAR, ["--y"]) != key
    # A changed stage pipeline is a changed pipeline: modules compiled under the old one are not reused.
    old = stages.COMPILE_STAGES
    try:
        stages.COMPILE_STAGES = (*old[:2], dataclasses.replace(old[2], pipeline=old[2].pipeline + " "), *old[3:])
        assert module_key(LINEAR, ["--x"]) != key
    finally:
        stages.COMPILE_STAGES = old


def test_a_parameter_binding_failure_is_a_stage_failure_with_a_reproducer():
    from mlirforge.lowering.errors import LoweringError

    with pytest.raises(LoweringError) as info:
        bind_parameters(LINEAR, [7])
    err = info.value
    assert err.stage == "bind-parameters" and "out of range" in str(err)
    assert err.reproducer is not None and (err.reproducer / "input.mlir").read_text() == LINEAR


TWO_KERNELS = """func.func @main(%a: tensor<64x128xf32>, %b: tensor<128x128xf32>, %c: tensor<128x32xf32>) -> tensor<64x32xf32> {
  %r1 = func.call @k1(%a, %b) : (tensor<64x128xf32>, tensor<128x128xf32>) -> tensor<64x128xf32>
  %r2 = func.call @k2(%r1, %c) : (tensor<64x128xf32>, tensor<128x32xf32>) -> tensor<64x32xf32>
  return %r2 : tensor<64x32xf32>
}
func.func private @k1(%a: tensor<64x128xf32>, %b: tensor<128x128xf32>) -> tensor<64x128xf32> attributes {mlirforge.kernel_hash = "aaaa", mlirforge.kernel_root = "linalg.matmul"} {
  %z = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<64x128xf32>
  %f = linalg.fill ins(%z : f32) outs(%e : tensor<64x128xf32>) -> tensor<64x128xf32>
  %m = linalg.matmul ins(%a, %b : tensor<64x128xf32>, tensor<128x128xf32>) outs(%f : tensor<64x128xf32>) -> tensor<64x128xf32>
  return %m : tensor<64x128xf32>
}
func.func private @k2(%x: tensor<64x128xf32>, %c: tensor<128x32xf32>) -> tensor<64x32xf32> attributes {mlirforge.kernel_hash = "bbbb", mlirforge.kernel_root = "linalg.matmul"} {
  %z = arith.constant 0.0 : f32
  %e = tensor.empty() : tensor<64x32xf32>
  %f = linalg.fill ins(%z : f32) outs(%e : tensor<64x32xf32>) -> tensor<64x32xf32>
  %m = linalg.matmul ins(%x, %c : tensor<64x128xf32>, tensor<128x32xf32>) outs(%f : tensor<64x32xf32>) -> tensor<64x32xf32>
  return %m : tensor<64x32xf32>
}
"""


def test_dispatch_profile_times_each_dispatch_and_names_the_kernel_it_came_from(tmp_path):
    import numpy as np

    from mlirforge.lowering.dispatch_profile import dispatch_sources, profile_dispatches
    from mlirforge.lowering.iree_compile import compile_flags
    from mlirforge.lowering.ir import ir
    from mlirforge.passes import parse_pipeline, run_pipeline, tag_kernel_locations

    with ir.Context(), ir.Location.unknown():
        module = ir.Module.parse(TWO_KERNELS)
        tag_kernel_locations(module)
        run_pipeline(module, parse_pipeline("mlirforge-inline-kernels"))
        tagged, plain = module.operation.get_asm(enable_debug_info=True), module.operation.get_asm()
    sources = dispatch_sources(tagged, compile_flags("auto", []), prefix="kernel:")
    assert sorted(s.root for s in sources.values()) == ["kernel:aaaa", "kernel:bbbb"]
    (tmp_path / "m.vmfb").write_bytes(compile_mlir(plain, "auto").vmfb)
    rng = np.random.default_rng(0)
    inputs = [rng.standard_normal(s).astype(np.float32) for s in ((64, 128), (128, 128), (128, 32))]
    profile = profile_dispatches(tmp_path / "m.vmfb", inputs, calls=5)
    assert sorted(d.name for d in profile.dispatches) == sorted(sources)  # every timed dispatch is mapped
    assert all(d.per_call == 1 and d.median_us > 0 for d in profile.dispatches)
    assert profile.call_us == pytest.approx(sum(d.median_us for d in profile.dispatches), rel=0.5)


def test_min_max_reductions_get_several_vector_accumulators_and_stay_exact():
    """The tile-reductions stage runs in the default lowering: amax/argmax get IREE tiles, sums do not."""
    x = torch.randn(16, 512)
    x[3, 100] = float("nan")
    x[5] = -float("inf")
    fn = lambda t: (t.amax(1), t.argmax(1), torch.max(t, 1)[0], t.sum(1))  # noqa: E731
    gm = make_fx(fn, decomposition_table=aten_decompositions())(x)
    mlir = lower_graph(gm, [], LoweringOptions()).mlir
    tiles = re.findall(r"vector_reduction = \[0, (\d+)\]", mlir)
    lanes = host_cpu().vector_bits // 32
    assert tiles and set(tiles) == {str(4 * lanes)}, tiles
    assert len(re.findall(r"compilation_info = ", mlir)) >= 2  # the amax (shared by all three) and the position amin
    compiled = torch.compile(fn, backend="mlirforge", options={"eager_if_faster": False})
    for got, want in zip(compiled(x), fn(x)):
        torch.testing.assert_close(got, want, equal_nan=True)


CONV_CLASSES = {
    # name: (module, input shape, the channels-last op the default lowering must reach)
    "2d_padded": (lambda: torch.nn.Conv2d(4, 6, 3, padding=1), (2, 4, 7, 9), "linalg.conv_2d_nhwc_hwcf"),
    "2d_strided_dilated": (lambda: torch.nn.Conv2d(4, 6, 3, stride=2, padding=2, dilation=2), (2, 4, 9, 8),
                           "linalg.conv_2d_nhwc_hwcf"),
    # 1-D: one matmul per filter tap; 3-D: one 2-D convolution per depth tap.
    "1d": (lambda: torch.nn.Conv1d(4, 6, 3, padding=1), (2, 4, 11), "linalg.matmul"),
    "1d_strided_dilated": (lambda: torch.nn.Conv1d(4, 6, 3, stride=2, padding=3, dilation=3), (2, 4, 13),
                           "linalg.matmul"),
    "3d": (lambda: torch.nn.Conv3d(3, 5, 3, padding=1), (1, 3, 5, 6, 4), "linalg.conv_2d_nhwc_hwcf"),
    "3d_strided_dilated": (lambda: torch.nn.Conv3d(3, 5, (3, 2, 2), stride=(2, 1, 2), padding=(2, 1, 0),
                                                   dilation=(2, 1, 1)), (2, 3, 7, 5, 6), "linalg.conv_2d_nhwc_hwcf"),
    "depthwise": (lambda: torch.nn.Conv2d(4, 4, 3, padding=1, groups=4), (2, 4, 6, 6), "linalg.depthwise_conv_2d_nhwc_hwc"),
    # Grouped: one batch matmul over the groups per filter tap.
    "grouped": (lambda: torch.nn.Conv2d(4, 6, 3, padding=1, groups=2), (2, 4, 6, 5), "linalg.batch_matmul"),
    "grouped_strided_dilated": (lambda: torch.nn.Conv2d(6, 9, (3, 2), stride=(2, 1), padding=(2, 1), dilation=(1, 2),
                                                        groups=3), (1, 6, 8, 7), "linalg.batch_matmul"),
    "grouped_bf16": (lambda: torch.nn.Conv2d(4, 4, 2, groups=2).bfloat16(), (1, 4, 4, 3), "linalg.batch_matmul"),
    # One input channel per group (K = 1 matmuls) and more than 25 taps keep IREE's grouped op: faster there.
    "grouped_one_channel_per_group": (lambda: torch.nn.Conv2d(2, 6, 3, padding=1, groups=2), (1, 2, 5, 5),
                                      "linalg.conv_2d_nhwgc_gfhwc"),
    "grouped_7x7": (lambda: torch.nn.Conv2d(4, 4, 7, padding=3, groups=2), (1, 4, 8, 8), "linalg.conv_2d_nhwgc_gfhwc"),
    "transposed": (lambda: torch.nn.ConvTranspose2d(4, 3, 4, stride=2, padding=1), (2, 4, 5, 5),
                   "linalg.conv_2d_nhwc_hwcf"),
    # One zero fill is both the scatter's destination and the init: the bypassed chains overlap.
    "transposed_1x1_shared_fill": (lambda: torch.nn.ConvTranspose2d(3, 3, 1, stride=2, bias=False), (1, 3, 3, 3),
                                   "linalg.conv_2d_nhwc_hwcf"),
    # Half precision accumulates in f32 (the init's type, not the image's).
    "1d_f16": (lambda: torch.nn.Conv1d(3, 4, 3, padding=1).half(), (2, 3, 6), "linalg.matmul"),
    "3d_bf16": (lambda: torch.nn.Conv3d(2, 3, 2).bfloat16(), (1, 2, 3, 4, 3), "linalg.conv_2d_nhwc_hwcf"),
}


@pytest.mark.parametrize("name", list(CONV_CLASSES))
def test_default_lowering_runs_convolutions_channels_last_and_stays_equal(name):
    """The channels-last stage rewrites every convolution class and moves the transpose above the padding.

    1-D, 3-D and grouped convolutions leave no 1-D/3-D/grouped op: they run as per-tap matmuls, 2-D
    convolutions and batch matmuls.
    """
    make, shape, op = CONV_CLASSES[name]
    torch.manual_seed(0)
    model = make().eval()
    x = torch.randn(*shape).to(next(model.parameters()).dtype)
    with torch.no_grad():
        gm = make_fx(model, decomposition_table=aten_decompositions())(x)
    mlir = lower_graph(gm, [], LoweringOptions()).mlir
    assert op in mlir, mlir
    assert not re.search(r"linalg\.(conv|depthwise_conv)_\w*_n(g?)c", mlir), "a channels-first convolution is left"
    assert "linalg.conv_1d" not in mlir and "linalg.conv_3d" not in mlir
    assert ("linalg.conv_2d_nhwgc" in mlir) == (op == "linalg.conv_2d_nhwgc_gfhwc")
    # No transpose reads a padded or scattered image: the pad/insert runs on the channels-last source.
    padded = set(re.findall(r"(%\w+) = tensor\.(?:pad|insert_slice)", mlir))
    transposed = set(re.findall(r"linalg\.transpose ins\((%\w+)", mlir))
    assert not padded & transposed, (padded & transposed, mlir)
    compiled = torch.compile(model, backend="mlirforge", options={"eager_if_faster": False})
    with torch.no_grad():
        if x.dtype == torch.float32:
            torch.testing.assert_close(compiled(x), model(x), rtol=1e-4, atol=1e-5)
        else:  # eager rounds differently in half precision: compare against the float32 result
            torch.testing.assert_close(compiled(x).float(), model.float()(x.float()), rtol=2e-2, atol=2e-2)
