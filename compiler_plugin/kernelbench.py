"""Load a model file in the KernelBench convention.

A file defines `class Model(torch.nn.Module)`, `get_inputs()` (the forward's
arguments) and `get_init_inputs()` (the constructor's arguments). This is the
format of KernelBench's problem sets, so whole sets run through the driver.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import sys
from pathlib import Path

import torch

from mlirforge.lowering.errors import UserError


@dataclasses.dataclass
class ModelProblem:
    path: Path
    model: torch.nn.Module
    inputs: list


def import_model_module(path: Path):
    """Import a model file as a fresh module (not left in sys.modules); UserError if it fails."""
    name = f"mlirforge_model_{abs(hash(path.resolve()))}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise UserError(f"{path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise UserError(f"{path}: importing the model file failed: {type(exc).__name__}: {exc}") from exc
    finally:
        sys.modules.pop(name, None)
    return module


def load_model_file(path: str | Path, seed: int = 0) -> ModelProblem:
    """Import `path` and build its model in eval mode with its example inputs.

    Raises UserError naming the file and what is wrong with it.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{path}: no such file")
    module = import_model_module(path)
    missing = [n for n in ("Model", "get_inputs", "get_init_inputs") if not hasattr(module, n)]
    if missing:
        raise UserError(
            f"{path}: missing {', '.join(missing)} (a model file defines class Model, "
            "get_inputs() and get_init_inputs())"
        )
    torch.manual_seed(seed)
    try:
        model = module.Model(*module.get_init_inputs()).eval()
        inputs = list(module.get_inputs())
    except Exception as exc:
        raise UserError(f"{path}: building the model or its inputs failed: {type(exc).__name__}: {exc}") from exc
    if not isinstance(model, torch.nn.Module):
        raise UserError(f"{path}: Model(...) is not a torch.nn.Module")
    return ModelProblem(path, model, inputs)
