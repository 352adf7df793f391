"""Reading JSON with types: each key checked, each error naming the key (for manifest.json).

`Fields(data, name)` wraps one JSON object; its getters take a `Kind` (STR,
INT, NUM, BOOL, OBJ, `list_of`, `dict_of`, `nullable`) and raise
`ManifestError("'compile.module_key' is missing")` and the like. The records
in `mlirforge.manifest` and `mlirforge.evidence` read themselves with it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from typing import Any

from mlirforge.llm_rewrite.types import Stage


class ManifestError(ValueError):
    """One defect of a manifest, naming its key (`'rewrites[0].timing.ci_low' is missing`)."""


# -- checked reading ----------------------------------------------------------------------------

_NONFINITE = {"nan": float("nan"), "inf": float("inf"), "-inf": float("-inf")}  # as `json_safe` writes them


@dataclasses.dataclass(frozen=True)
class Kind:
    """A JSON type a key must have: what to call it in an error, how to test and convert a value."""

    what: str
    plural: str
    ok: Callable[[Any], bool]
    convert: Callable[[Any], Any] = lambda v: v


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return _is_int(v) or isinstance(v, float) or (isinstance(v, str) and v in _NONFINITE)


STR = Kind("a string", "strings", lambda v: isinstance(v, str))
INT = Kind("an integer", "integers", _is_int)
BOOL = Kind("a boolean", "booleans", lambda v: isinstance(v, bool))
NUM = Kind("a number", "numbers", _is_number, lambda v: _NONFINITE[v] if isinstance(v, str) else float(v))
OBJ = Kind("an object", "objects", lambda v: isinstance(v, dict))


def list_of(k: Kind) -> Kind:
    return Kind(f"a list of {k.plural}", f"lists of {k.plural}",
                 lambda v: isinstance(v, list) and all(k.ok(x) for x in v), lambda v: [k.convert(x) for x in v])


def dict_of(k: Kind) -> Kind:
    return Kind(f"an object of {k.plural}", f"objects of {k.plural}",
                 lambda v: isinstance(v, dict) and all(k.ok(x) for x in v.values()),
                 lambda v: {key: k.convert(x) for key, x in v.items()})


def nullable(k: Kind) -> Kind:
    return Kind(f"{k.what} or null", k.plural, lambda v: v is None or k.ok(v),
                 lambda v: None if v is None else k.convert(v))


OUT_KINDS = ("computed", "input", "const")  # an output is a module result, an input passed through, or a constant


def _is_out_step(v: Any) -> bool:
    return (isinstance(v, list) and len(v) == 2 and v[0] in OUT_KINDS
            and (v[0] == "const" or _is_int(v[1])))


OUT_PLAN = Kind("a list of [kind, value] pairs (kind computed or input with an integer, or const)", "plans",
                 lambda v: isinstance(v, list) and all(_is_out_step(x) for x in v),
                 lambda v: [(kind, value) for kind, value in v])


def show(v: Any) -> str:
    text = json.dumps(v)
    return text if len(text) <= 40 else text[:37] + "..."


class Fields:
    """One JSON object being read: each getter checks one key or raises a ManifestError naming it."""

    def __init__(self, data: Any, name: str = ""):
        if not isinstance(data, dict):
            raise ManifestError(f"'{name}' must be an object, not {show(data)}" if name
                                else f"the manifest must be a JSON object, not {show(data)}")
        self.data, self.name = data, name

    def key(self, key: str) -> str:
        return f"{self.name}.{key}" if self.name else key

    def has(self, *keys: str) -> bool:
        return any(k in self.data for k in keys)

    def get(self, key: str, kind: Kind) -> Any:
        if key not in self.data:
            raise ManifestError(f"'{self.key(key)}' is missing")
        value = self.data[key]
        if not kind.ok(value):
            raise ManifestError(f"'{self.key(key)}' must be {kind.what}, not {show(value)}")
        return kind.convert(value)

    def opt(self, key: str, kind: Kind, default: Any = None) -> Any:
        return self.get(key, kind) if key in self.data else default

    def obj(self, key: str) -> Fields:
        self.get(key, OBJ)
        return Fields(self.data[key], self.key(key))

    def obj_or_none(self, key: str) -> Fields | None:
        """A key that must be present and holds an object or null."""
        return None if self.get(key, nullable(OBJ)) is None else self.obj(key)

    def objs(self, key: str) -> list[Fields]:
        return [Fields(x, f"{self.key(key)}[{i}]") for i, x in enumerate(self.get(key, list_of(OBJ)))]

    def stage(self, key: str) -> Stage:
        name = self.get(key, STR)
        try:
            return Stage(name)
        except ValueError:
            raise ManifestError(f"'{self.key(key)}' is {name!r}, not a stage of the evaluation "
                                f"({', '.join(s.value for s in Stage)})") from None

    def rest(self, known: tuple[str, ...]) -> dict[str, Any]:
        return {k: v for k, v in self.data.items() if k not in known}


def present(d: dict[str, Any]) -> dict[str, Any]:
    """`d` without its None values: optional keys that were absent stay absent."""
    return {k: v for k, v in d.items() if v is not None}
