"""The IREE flags a proposer may use: a whitelist, with legal values.

Only flags that change how code is generated, not what it computes beyond
floating-point reassociation, are listed; anything else in a candidate is
rejected before it costs a build.
"""

from __future__ import annotations

BOOL = ("true", "false")

# flag -> allowed values (None: a bare switch)
FLAG_WHITELIST: dict[str, tuple[str, ...] | None] = {
    "--iree-opt-data-tiling": BOOL,
    "--iree-opt-level": ("O0", "O1", "O2", "O3"),
    "--iree-llvmcpu-enable-ukernels": ("none", "all", "mmt4d", "default"),
    "--iree-global-opt-use-im2col-for-convs": BOOL,
    "--iree-opt-aggressively-propagate-transposes": BOOL,
    "--iree-dispatch-creation-enable-aggressive-fusion": BOOL,
    "--iree-dispatch-creation-enable-split-reduction": BOOL,
    "--iree-llvmcpu-reassociate-fp-reductions": BOOL,
    "--iree-opt-generalize-matmul": BOOL,
    "--iree-opt-outer-dim-concat": BOOL,
    "--iree-llvmcpu-distribution-size": tuple(str(v) for v in (8, 16, 32, 64, 128, 256)),
}


class FlagError(ValueError):
    pass


def validate_flags(flags: list[str]) -> list[str]:
    """Return the flags unchanged, or raise FlagError naming the first bad one."""
    if not isinstance(flags, list) or not all(isinstance(f, str) for f in flags):
        raise FlagError("iree_flags must be a list of strings")
    for flag in flags:
        name, eq, value = flag.partition("=")
        if name not in FLAG_WHITELIST:
            raise FlagError(f"flag '{name}' is not in the whitelist")
        allowed = FLAG_WHITELIST[name]
        if eq and (allowed is None or value not in allowed):
            raise FlagError(f"flag '{name}': value '{value}' not allowed (allowed: {', '.join(allowed or ())})")
    return flags


def describe_whitelist() -> str:
    return "\n".join(
        f"{name}" + (f"=<{'|'.join(values)}>" if values else "") for name, values in FLAG_WHITELIST.items()
    )
