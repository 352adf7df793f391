"""Shared fixtures: an isolated cache directory and the example models."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


@pytest.fixture(autouse=True, scope="session")
def isolated_cache(tmp_path_factory):
    """Keep tests off the user's ~/.cache/mlirforge."""
    path = tmp_path_factory.mktemp("mlirforge-cache")
    mp = pytest.MonkeyPatch()
    mp.setenv("MLIRFORGE_CACHE_DIR", str(path))
    yield path
    mp.undo()


@pytest.fixture(autouse=True)
def fresh_dynamo():
    torch._dynamo.reset()
    yield
    torch._dynamo.reset()


def load_example(name: str):
    """Import examples/<name>.py and return (model, inputs), seeded."""
    path = EXAMPLES / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"example_{name}", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    torch.manual_seed(0)
    model = module.Model(*module.get_init_inputs()).eval()
    return model, module.get_inputs()
