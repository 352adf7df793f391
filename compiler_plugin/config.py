"""User-facing configuration of the backend and the driver.

Options arrive as a dict (`torch.compile(..., options={...})`) or CLI flags;
both are validated here, and an unknown or ill-typed key is an error naming it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from mlirforge.lowering.errors import UserError
from mlirforge.lowering.options import LoweringOptions


@dataclasses.dataclass(frozen=True)
class CompileConfig:
    lowering: LoweringOptions = LoweringOptions()
    max_shape_variants: int = 8
    """Distinct input shapes compiled per graph; calls with more run eagerly."""

    def __post_init__(self) -> None:
        if self.max_shape_variants < 1:
            raise UserError("max_shape_variants: must be at least 1")

    @classmethod
    def from_options(cls, options: Mapping[str, Any] | None) -> CompileConfig:
        """Build from `torch.compile` options; raises UserError naming a bad key."""
        options = dict(options or {})
        lowering_fields = {f.name: f for f in dataclasses.fields(LoweringOptions)}
        own_fields = {f.name for f in dataclasses.fields(cls)} - {"lowering"}
        known = sorted(set(lowering_fields) | own_fields)
        lowering_kw, own_kw = {}, {}
        for key, value in options.items():
            if key in lowering_fields:
                if key == "iree_flags":
                    if isinstance(value, str) or not all(isinstance(v, str) for v in value):
                        raise UserError("option 'iree_flags': expected a list of strings")
                    value = tuple(value)
                lowering_kw[key] = value
            elif key in own_fields:
                own_kw[key] = value
            else:
                raise UserError(f"unknown mlirforge option '{key}'; known options: {', '.join(known)}")
        try:
            lowering = LoweringOptions(**lowering_kw)
        except (TypeError, ValueError) as exc:
            raise UserError(f"option {exc}") from None
        if "max_shape_variants" in own_kw and not isinstance(own_kw["max_shape_variants"], int):
            raise UserError("option 'max_shape_variants': expected an integer")
        return cls(lowering=lowering, **own_kw)
