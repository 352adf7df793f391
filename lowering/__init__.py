"""Lowering: FX graphs and MLIR files to IREE modules, and running them.

The one subpackage that imports MLIR bindings (through `lowering.ir`) and the
IREE runtime. Nothing here knows that a proposer or an LLM exists.
"""
