"""The GPU target: IREE's CUDA target for a named architecture, compiled without a GPU; run only where one is.

Issue 17's first step. Everything but running needs no GPU: iree-compile emits PTX
for a named sm_XX on any machine. The test that runs a vmfb on IREE's `cuda`
driver skips (with its reason) unless a CUDA GPU and the driver are both here.
"""

from __future__ import annotations

import pytest
import torch

from mlirforge.lowering.target import IREE_CUDA_CAPABILITIES, cuda_target, parse_target

from test_driver import GOOD_MLIR, run_cli


def test_a_named_architecture_compiles_to_ptx_for_it_without_a_gpu(tmp_path):
    src = tmp_path / "add.mlir"
    src.write_text(GOOD_MLIR)
    proc = run_cli("compile", src, "-o", tmp_path / "gpu.vmfb", "--target", "cuda:sm_80")
    assert proc.returncode == 0, proc.stderr
    gpu = (tmp_path / "gpu.vmfb").read_bytes()
    assert b"cuda-nvptx-fb" in gpu and b".target sm_80" in gpu  # IREE's CUDA executable, PTX for sm_80
    assert run_cli("compile", src, "-o", tmp_path / "cpu.vmfb").returncode == 0
    assert b"cuda-nvptx-fb" not in (tmp_path / "cpu.vmfb").read_bytes()  # the default stays the host CPU


def test_a_gpu_newer_than_the_installed_iree_knows_gets_its_newest_ptx(tmp_path):
    """H100/H200 are sm_90, which IREE 3.13 cannot target (iree-org/iree#22147): PTX for sm_89 runs there (JIT)."""
    src = tmp_path / "add.mlir"
    src.write_text(GOOD_MLIR)
    proc = run_cli("compile", src, "-o", tmp_path / "h.vmfb", "--target", "cuda:sm_90")
    assert proc.returncode == 0, proc.stderr
    newest = f"sm_{max(c for c in IREE_CUDA_CAPABILITIES if c < 90)}"
    assert newest == "sm_89"
    assert f"no CUDA target for sm_90; compiling PTX for {newest}" in proc.stderr
    assert f".target {newest}".encode() in (tmp_path / "h.vmfb").read_bytes()


@pytest.mark.parametrize("asked, arch", [("sm_80", "sm_80"), ("sm_61", "sm_61"), ("sm_87", "sm_87"),
                                         ("sm_88", "sm_87"), ("sm_90a", "sm_89"), ("sm_100", "sm_89"),
                                         ("sm_120", "sm_120")])
def test_cuda_architecture_resolves_to_the_newest_known_not_newer(asked, arch):
    target = cuda_target(asked)
    assert target.arch == arch and target.driver == "cuda"
    assert target.iree_flags() == ["--iree-hal-target-device=cuda", f"--iree-cuda-target={arch}"]


@pytest.mark.parametrize("text, message", [
    ("cuda:volta", "expected sm_XX"), ("cuda:sm_52", "starts at sm_60"), ("cuda:", "architecture ''"),
    ("cuda:sm_80a", "expected sm_XX"), ("cuda:SM_80", "expected sm_XX"), ("cuda:sm_80:x", "expected sm_XX"),
    ("cuda:sm_\u0668\u0660", "expected sm_XX"), ("tpu", "unknown target 'tpu'"), ("host:", "unknown target"),
    ("HOST", "unknown target")])
def test_a_bad_target_is_an_error_naming_it_and_writes_nothing(tmp_path, text, message):
    with pytest.raises(ValueError, match=message):
        parse_target(text)
    src = tmp_path / "add.mlir"
    src.write_text(GOOD_MLIR)
    proc = run_cli("compile", src, "-o", tmp_path / "x.vmfb", "--target", text)
    assert proc.returncode == 1 and message in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "x.vmfb").exists()


def test_the_visible_gpu_target_needs_a_gpu_and_a_model_file_stays_on_the_cpu(tmp_path):
    if torch.cuda.is_available():
        assert parse_target("cuda").driver == "cuda"
    else:
        with pytest.raises(ValueError, match="no CUDA GPU is visible"):
            parse_target("cuda")
    model = tmp_path / "m.py"
    model.write_text("import torch\nclass Model(torch.nn.Module):\n    def forward(self, x):\n        return x + 1\n"
                     "def get_inputs():\n    return [torch.randn(4)]\n")
    proc = run_cli("compile", model, "-o", tmp_path / "a", "--target", "cuda:sm_80")
    assert proc.returncode == 2 and "only .mlir inputs" in proc.stderr and not (tmp_path / "a").exists()
    proc = run_cli("compile", model, "-o", tmp_path / "a", "--target", "bogus")
    assert proc.returncode == 1 and "unknown target 'bogus'" in proc.stderr and not (tmp_path / "a").exists()


def test_an_output_path_that_cannot_be_written_is_an_error_naming_it(tmp_path):
    src = tmp_path / "add.mlir"
    src.write_text(GOOD_MLIR)
    proc = run_cli("compile", src, "-o", tmp_path, "--target", "cuda:sm_80")  # a directory
    assert proc.returncode == 1 and f"{tmp_path}: cannot write the vmfb" in proc.stderr
    assert "Traceback" not in proc.stderr and sorted(p.name for p in tmp_path.iterdir()) == ["add.mlir"]


def _cuda_driver_and_gpu() -> bool:
    import iree.runtime as rt

    return torch.cuda.is_available() and "cuda" in rt.query_available_drivers()


@pytest.mark.skipif(not _cuda_driver_and_gpu(), reason="needs a CUDA GPU and IREE's cuda HAL driver")
def test_the_vmfb_for_the_visible_gpu_runs_on_the_cuda_driver(tmp_path):
    import numpy as np
    import iree.runtime as rt

    src = tmp_path / "add.mlir"
    src.write_text(GOOD_MLIR)
    assert run_cli("compile", src, "-o", tmp_path / "g.vmfb", "--target", "cuda").returncode == 0
    module = rt.load_vm_flatbuffer((tmp_path / "g.vmfb").read_bytes(), driver="cuda")
    a, b = np.arange(4, dtype=np.float32), np.full(4, 2, dtype=np.float32)
    np.testing.assert_array_equal(np.asarray(module.main(a, b)), a + b)
