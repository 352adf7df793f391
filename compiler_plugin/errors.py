"""Public home of mlirforge's error types (defined in `lowering.errors`)."""

from mlirforge.lowering.errors import (  # noqa: F401
    LoweringError,
    MlirforgeError,
    UnsupportedOpError,
    UserError,
)
