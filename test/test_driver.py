"""The `mlirforge` driver: artifacts, .mlir compiles, and its errors."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import mlirforge
from mlirforge.numerics import check_against_eager

from conftest import EXAMPLES, load_example

GOOD_MLIR = """func.func @main(%a: tensor<4xf32>, %b: tensor<4xf32>) -> tensor<4xf32> {
  %0 = arith.addf %a, %b : tensor<4xf32>
  return %0 : tensor<4xf32>
}
"""

BAD_MLIR = """func.func @main(%a: tensor<4xf32>) -> tensor<4xf32> {
  %0 = arith.addf %a, %missing : tensor<4xf32>
  return %0 : tensor<4xf32>
}
"""


def run_cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "mlirforge.cli", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ},
    )


@pytest.mark.parametrize("name", ["mlp", "cnn", "transformer_block"])
def test_compile_model_file_to_artifact_and_load(tmp_path, name):
    out = tmp_path / name
    proc = run_cli("compile", EXAMPLES / f"{name}.py", "-o", out)
    assert proc.returncode == 0, proc.stderr
    assert "matches eager" in proc.stdout
    # The user is told a paired ratio with its CI, not two medians to divide.
    speedup = re.search(r"speedup +([\d.]+)x vs eager \(95% CI ([\d.]+)-([\d.]+)\)", proc.stdout)
    assert speedup, proc.stdout
    assert float(speedup[2]) <= float(speedup[3])
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["tool_versions"]["iree-base-compiler"] == "3.13.0"
    assert (out / "module.vmfb").stat().st_size > 0
    # The vmfb holds no weights: they are in the parameter archive.
    model, inputs = load_example(name)
    weight_bytes = sum(p.numel() * p.element_size() for p in model.parameters())
    assert (out / "parameters.irpa").stat().st_size >= weight_bytes
    artifact = mlirforge.load(out)
    with torch.no_grad():
        check = check_against_eager(artifact, model, inputs)
        ok, msg = check.ok, check.message
    assert ok, msg


def test_artifact_rejects_wrong_input_shape(tmp_path):
    assert run_cli("compile", EXAMPLES / "mlp.py", "-o", tmp_path / "a", "--no-check").returncode == 0
    artifact = mlirforge.load(tmp_path / "a")
    from mlirforge.errors import UserError

    with pytest.raises(UserError, match=r"input 0 is \[3, 256\]"):
        artifact(torch.randn(3, 256))


def test_compile_mlir_file(tmp_path):
    src = tmp_path / "add.mlir"
    src.write_text(GOOD_MLIR)
    out = tmp_path / "add.vmfb"
    proc = run_cli("compile", src, "-o", out)
    assert proc.returncode == 0, proc.stderr
    from mlirforge.lowering.runtime import IreeModule

    a, b = torch.arange(4.0), torch.full((4,), 2.0)
    (result,) = IreeModule(out.read_bytes())(a, b)
    assert torch.equal(result, a + b)


def test_malformed_mlir_reports_location_and_writes_nothing(tmp_path):
    src = tmp_path / "bad.mlir"
    src.write_text(BAD_MLIR)
    out = tmp_path / "bad.vmfb"
    proc = run_cli("compile", src, "-o", out)
    assert proc.returncode == 1
    assert f"{src}:2:23: error: use of undeclared SSA value name" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists()
    assert list(tmp_path.iterdir()) == [src]


def test_unsupported_op_model_is_an_error_naming_the_op(tmp_path):
    out = tmp_path / "u"
    proc = run_cli("compile", EXAMPLES / "unsupported_op.py", "-o", out)
    assert proc.returncode == 1
    assert "cannot lower: aten.erfinv" in proc.stderr
    assert "unsupported_op.py:" in proc.stderr  # located in the user's source
    assert "Traceback" not in proc.stderr
    assert not out.exists() and list(tmp_path.iterdir()) == []
    repro = Path(proc.stderr.split("reproducer: ")[1].split()[0])
    assert (repro / "input.mlir").exists() and "torch-mlir-opt" in (repro / "command.sh").read_text()


def test_missing_file_and_bad_option_exit_2(tmp_path):
    proc = run_cli("compile", tmp_path / "nope.mlir", "-o", tmp_path / "x.vmfb")
    assert proc.returncode == 2 and "no such file" in proc.stderr and "usage:" in proc.stderr
    proc = run_cli("compile", "--frobnicate", EXAMPLES / "mlp.py", "-o", tmp_path / "x")
    assert proc.returncode == 2 and "unrecognized arguments: --frobnicate" in proc.stderr


def test_model_file_missing_names_is_a_user_error(tmp_path):
    src = tmp_path / "m.py"
    src.write_text("import torch\nclass Model(torch.nn.Module):\n    pass\n")
    proc = run_cli("compile", src, "-o", tmp_path / "o")
    assert proc.returncode == 1
    assert "missing get_inputs, get_init_inputs" in proc.stderr
    assert "Traceback" not in proc.stderr
    proc = run_cli("--verbose", "compile", src, "-o", tmp_path / "o")
    assert "Traceback" in proc.stderr


def test_refuses_to_overwrite_a_non_artifact_directory(tmp_path):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "notes.txt").write_text("keep me")
    proc = run_cli("compile", EXAMPLES / "mlp.py", "-o", precious, "--no-check")
    assert proc.returncode == 1 and "refusing to overwrite" in proc.stderr
    assert (precious / "notes.txt").read_text() == "keep me"
