"""What we compile for: the host CPU (llvm-cpu) and its IREE flags.

The CPU's identity (model name and ISA features) goes into cache keys because
`--iree-llvmcpu-target-cpu=host` bakes the host's features into the vmfb: a
module built on an AVX-512 machine must not be served to one without it.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
import platform
from pathlib import Path

# Features that matter to generated code; the rest of /proc/cpuinfo's flags
# (power management, virtualisation, ...) would only make keys noisier.
_ISA_PREFIXES = ("sse", "ssse", "avx", "fma", "f16c", "amx", "bmi", "popcnt", "neon", "sve", "asimd")


@dataclasses.dataclass(frozen=True)
class CpuTarget:
    """The host CPU as the compiler and the search see it."""

    arch: str
    model_name: str
    features: tuple[str, ...]
    cores: int
    l1d_bytes: int | None
    l2_bytes: int | None
    l3_bytes: int | None

    @property
    def vector_bits(self) -> int:
        if "avx512f" in self.features:
            return 512
        if "avx2" in self.features or "avx" in self.features:
            return 256
        return 128

    @property
    def fingerprint(self) -> str:
        """A short stable identity of the CPU for cache keys."""
        text = "|".join([self.arch, self.model_name, *self.features])
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def iree_flags(self) -> list[str]:
        return [
            "--iree-hal-target-device=local",
            "--iree-hal-local-target-device-backends=llvm-cpu",
            "--iree-llvmcpu-target-cpu=host",
        ]

    def describe(self) -> dict[str, object]:
        return {
            "arch": self.arch,
            "model_name": self.model_name,
            "cores": self.cores,
            "vector_bits": self.vector_bits,
            "isa": [f for f in self.features],
            "l1d_bytes": self.l1d_bytes,
            "l2_bytes": self.l2_bytes,
            "l3_bytes": self.l3_bytes,
            "fingerprint": self.fingerprint,
        }


def _cache_size(level: int, kind: str) -> int | None:
    base = Path("/sys/devices/system/cpu/cpu0/cache")
    if not base.is_dir():
        return None
    for index in sorted(base.glob("index*")):
        try:
            if int((index / "level").read_text()) != level:
                continue
            if (index / "type").read_text().strip() not in (kind, "Unified"):
                continue
            size = (index / "size").read_text().strip()
        except (OSError, ValueError):
            continue
        mult = {"K": 1024, "M": 1024 * 1024}.get(size[-1:], 1)
        digits = size.rstrip("KM")
        if digits.isdigit():
            return int(digits) * mult
    return None


@functools.cache
def host_cpu() -> CpuTarget:
    """Read the host CPU from /proc/cpuinfo (Linux); falls back to platform data."""
    model, flags = platform.processor() or "unknown", []
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key == "model name" and model in ("unknown", "", platform.processor()):
                model = value.strip()
            elif key in ("flags", "Features") and not flags:
                flags = value.split()
    except OSError:
        pass
    features = tuple(sorted(f for f in flags if f.startswith(_ISA_PREFIXES)))
    return CpuTarget(
        arch=platform.machine(),
        model_name=model,
        features=features,
        cores=os.cpu_count() or 1,
        l1d_bytes=_cache_size(1, "Data"),
        l2_bytes=_cache_size(2, "Unified"),
        l3_bytes=_cache_size(3, "Unified"),
    )
