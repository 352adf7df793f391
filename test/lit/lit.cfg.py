# Self-contained lit configuration (no site config): pip's `lit` and `filecheck`.
#
#   lit test/lit            run everything
#   lit -v test/lit/driver  one folder, with output of failures
#
# Tools are the ones installed beside the Python running lit (a virtualenv's
# bin/): mlirforge, mlirforge-opt, iree-run-module, filecheck.

import importlib.util
import os
import shutil
import sys

import lit.formats

config.name = "mlirforge"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".mlir", ".test"]
config.excludes = ["Inputs", "lit.cfg.py"]
config.test_source_root = os.path.dirname(__file__)
config.test_exec_root = os.path.join(config.test_source_root, "Output")

bin_dir = os.path.dirname(sys.executable)
config.environment["PATH"] = os.pathsep.join([bin_dir, os.environ.get("PATH", "")])
# Compiled modules and reproducers of lit runs stay out of the user's cache.
config.environment["MLIRFORGE_CACHE_DIR"] = os.path.join(config.test_exec_root, ".cache")
for var in ("HOME", "TMPDIR"):
    if var in os.environ:
        config.environment[var] = os.environ[var]

filecheck = shutil.which("filecheck", path=config.environment["PATH"])
if filecheck is None:
    lit_config.fatal("filecheck not found; install the test extras: pip install -e '.[test]'")
config.substitutions.append(("%PYTHON", sys.executable))
config.substitutions.append(("FileCheck", filecheck))
config.substitutions.append(("%examples", os.path.join(config.test_source_root, "..", "..", "examples")))

if importlib.util.find_spec("torch") is not None:
    config.available_features.add("torch")
if shutil.which("nvidia-smi") is not None:
    config.available_features.add("gpu")
