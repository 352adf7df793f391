"""What we compile for: the host CPU (llvm-cpu) or a named NVIDIA GPU (IREE's CUDA target), and its IREE flags.

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


IREE_CUDA_CAPABILITIES: tuple[int, ...] = (70, 75, 80, 86, 89)
"""Compute capabilities (sm_XX) the installed IREE's CUDA target knows. Measured with iree-compile 3.13
on a 1024^2 matmul: sm_70/75/80/86/89 compile; sm_90, sm_90a and sm_100 fail with "missing GPU target in
#hal.executable.target" (IREE's known-target table stops before Hopper: iree-org/iree#22147). IREE embeds
PTX, which the CUDA driver JIT-compiles for a newer GPU, so a newer GPU is given the newest of these."""


@dataclasses.dataclass(frozen=True)
class CudaTarget:
    """An NVIDIA GPU as iree-compile targets it: `arch` is what it is told, `requested` what was asked for."""

    arch: str
    """`sm_XX` passed as `--iree-cuda-target`, one of `IREE_CUDA_CAPABILITIES`."""
    requested: str
    """The architecture asked for (`sm_90` for an H100/H200); differs from `arch` when IREE lacks it."""

    driver: str = "cuda"
    """The IREE HAL driver that runs what is compiled for it."""

    @property
    def fingerprint(self) -> str:
        return hashlib.sha256(f"cuda|{self.arch}".encode()).hexdigest()[:16]

    def iree_flags(self) -> list[str]:
        return ["--iree-hal-target-device=cuda", f"--iree-cuda-target={self.arch}"]

    def describe(self) -> dict[str, object]:
        return {"arch": self.arch, "requested": self.requested, "driver": self.driver,
                "fingerprint": self.fingerprint}


def cuda_target(arch: str) -> CudaTarget:
    """The CUDA target for `arch` (`sm_80`, `sm_90a` or a bare `80`): the newest capability IREE knows that is
    not newer than it. ValueError for another spelling or a GPU older than sm_70 (IREE's oldest)."""
    text = arch.strip().lower()
    digits = text[3:] if text.startswith("sm_") else text
    digits = digits[:-1] if digits.endswith("a") else digits  # sm_90a: Hopper's arch-specific features
    if not digits.isdigit():
        raise ValueError(f"CUDA architecture {arch!r}: expected sm_XX (e.g. sm_80, sm_90)")
    capability = int(digits)
    known = [c for c in IREE_CUDA_CAPABILITIES if c <= capability]
    if not known:
        raise ValueError(f"CUDA architecture {arch!r}: IREE's CUDA target starts at sm_{IREE_CUDA_CAPABILITIES[0]}")
    return CudaTarget(arch=f"sm_{known[-1]}", requested=f"sm_{digits}" + ("a" if text.endswith("a") else ""))


TARGET_SPELLINGS = "host (this CPU, llvm-cpu), cuda:sm_XX (a named NVIDIA GPU) or cuda (the visible GPU)"


def parse_target(text: str) -> CpuTarget | CudaTarget:
    """`host` -> `host_cpu()`; `cuda:sm_XX` -> `cuda_target`; `cuda` -> the first visible GPU's capability (as
    torch reports it). ValueError naming `text` otherwise, or for `cuda` when no GPU is visible."""
    kind, _, arch = text.strip().partition(":")
    if kind in ("host", "cpu", "llvm-cpu") and not arch:
        return host_cpu()
    if kind == "cuda" and arch:
        return cuda_target(arch)
    if kind == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ValueError("target 'cuda': no CUDA GPU is visible here; name one to compile for it "
                             "without a GPU (cuda:sm_80)")
        major, minor = torch.cuda.get_device_capability(0)
        return cuda_target(f"sm_{major}{minor}")
    raise ValueError(f"unknown target {text!r}; expected {TARGET_SPELLINGS}")
