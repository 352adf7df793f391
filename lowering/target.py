"""What we compile for: the host CPU (llvm-cpu) or a named NVIDIA GPU (IREE's CUDA target), and their IREE flags.

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
import re
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


IREE_CUDA_CAPABILITIES: tuple[int, ...] = (60, 61, 70, 72, 75, 80, 86, 87, 89, 120, 121)
"""Compute capabilities (sm_XX) the installed IREE's CUDA target knows. Measured with iree-compile 3.13
on a matmul: these compile; sm_52, sm_90, sm_90a, sm_100 and sm_100a-110 fail with "missing GPU target in
#hal.executable.target" (no entry in IREE's known-target table for Hopper and data-centre Blackwell:
iree-org/iree#22147). IREE embeds PTX, which the CUDA driver JIT-compiles for a newer GPU, so a GPU
without an entry is given the newest entry not newer than it (an H100/H200, sm_90, gets sm_89)."""

_CUDA_ARCH = re.compile(r"sm_(\d{2,3})(a?)", re.ASCII)


@dataclasses.dataclass(frozen=True)
class CudaTarget:
    """An NVIDIA GPU as iree-compile targets it: `arch` is what it is told, `requested` what was asked for."""

    arch: str
    """`sm_XX` passed as `--iree-cuda-target`, one of `IREE_CUDA_CAPABILITIES`."""
    requested: str
    """The architecture asked for (`sm_90` for an H100/H200); differs from `arch` when IREE lacks it."""

    driver: str = "cuda"
    """The IREE HAL driver that runs what is compiled for it."""

    def iree_flags(self) -> list[str]:
        return ["--iree-hal-target-device=cuda", f"--iree-cuda-target={self.arch}"]


def cuda_target(arch: str) -> CudaTarget:
    """The CUDA target for `arch` (`sm_80`, or `sm_90a` with Hopper's and later GPUs' arch-specific suffix):
    the newest capability IREE knows that is not newer than it. ValueError for another spelling or a GPU
    older than IREE's oldest (sm_60)."""
    match = _CUDA_ARCH.fullmatch(arch)
    if match is None or (match.group(2) and int(match.group(1)) < 90):
        raise ValueError(f"CUDA architecture {arch!r}: expected sm_XX (e.g. sm_80, sm_90, sm_90a)")
    capability = int(match.group(1))
    known = [c for c in IREE_CUDA_CAPABILITIES if c <= capability]
    if not known:
        raise ValueError(f"CUDA architecture {arch!r}: IREE's CUDA target starts at sm_{IREE_CUDA_CAPABILITIES[0]}")
    return CudaTarget(arch=f"sm_{known[-1]}", requested=arch)


TARGET_SPELLINGS = "host (this CPU, llvm-cpu), cuda:sm_XX (a named NVIDIA GPU) or cuda (the visible GPU)"


def parse_target(text: str) -> CpuTarget | CudaTarget:
    """`host` -> `host_cpu()`; `cuda:sm_XX` -> `cuda_target`; `cuda` -> the first visible GPU's capability (as
    torch reports it). Lower case, as written. ValueError naming `text` otherwise, or for `cuda` when no GPU is
    visible."""
    kind, colon, arch = text.partition(":")
    if kind == "host" and not colon:
        return host_cpu()
    if kind == "cuda" and colon:
        return cuda_target(arch)
    if kind == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ValueError("target 'cuda': no CUDA GPU is visible here; name one to compile for it "
                             "without a GPU (cuda:sm_80)")
        major, minor = torch.cuda.get_device_capability(0)
        return cuda_target(f"sm_{major}{minor}")
    raise ValueError(f"unknown target {text!r}; expected {TARGET_SPELLINGS}")
