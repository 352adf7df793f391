"""The machine a bench ran on: CPU and its fp32 peak, memory, versions, in one dict and one line.

    m = machine_info()          # date, cpu (cpu_peak), memory_gib, torch_threads, platform, versions
    cpu_text(m), versions_text(m["versions"])

Every bench records this dict in its JSON and prints these lines above its tables.
"""

from __future__ import annotations

import datetime
import importlib.metadata
import os
import platform
from pathlib import Path
from typing import Any

PACKAGES = ("torch", "torch-mlir", "iree-base-compiler", "iree-base-runtime", "iree-turbine", "mlirforge",
            "numpy", "matplotlib")


def _cpuinfo() -> list[dict[str, str]]:
    """/proc/cpuinfo as one dict per logical CPU."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    cpus = []
    for block in text.strip().split("\n\n"):
        entry = {}
        for line in block.splitlines():
            key, _, value = line.partition(":")
            entry[key.strip()] = value.strip()
        cpus.append(entry)
    return cpus


def _max_freq_mhz() -> float | None:
    path = Path("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
    try:
        return int(path.read_text()) / 1000.0
    except (OSError, ValueError):
        return None


def memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def cpu_peak(fma_units: int | None = None, clock_mhz: float | None = None) -> dict[str, Any]:
    """The CPU's fp32 peak: physical cores x clock x FMA units x fp32 lanes x 2 flops (one FMA).

    Cores: distinct (physical id, core id) pairs of /proc/cpuinfo (SMT siblings share
    their core's FMA units), else the logical CPU count. Lanes: 16 with avx512f, 8 with
    avx2/avx, else 4. Clock: /sys cpuinfo_max_freq if present, else /proc/cpuinfo
    "cpu MHz". FMA units per core: 2 unless given (server cores with AVX-512 issue two
    vector FMAs per cycle; see the doc for when that is an overestimate).
    """
    cpus = _cpuinfo()
    flags = set(cpus[0].get("flags", "").split()) if cpus else set()
    cores_ids = {(c.get("physical id"), c.get("core id")) for c in cpus if "core id" in c}
    logical = len(cpus) or (os.cpu_count() or 1)
    cores = len(cores_ids) or logical
    lanes, isa = (
        (16, "avx512f")
        if "avx512f" in flags
        else (8, "avx2")
        if "avx2" in flags
        else (8, "avx")
        if "avx" in flags
        else (4, "sse/neon")
    )
    clock_source = "--clock-mhz"
    if clock_mhz is None:
        clock_mhz, clock_source = (
            _max_freq_mhz(),
            "/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq",
        )
    if clock_mhz is None and cpus and cpus[0].get("cpu MHz"):
        clock_mhz, clock_source = float(cpus[0]["cpu MHz"]), '/proc/cpuinfo "cpu MHz"'
    if clock_mhz is None:
        clock_mhz, clock_source = 2000.0, "unknown (assumed 2000 MHz)"
    fma_source = "--fma-units"
    if fma_units is None:
        fma_units, fma_source = 2, "assumed (2 vector FMA pipes per core)"
    peak = cores * clock_mhz * 1e6 * fma_units * lanes * 2
    return {
        "model_name": cpus[0].get("model name", platform.processor())
        if cpus
        else platform.processor(),
        "cpu_family": cpus[0].get("cpu family") if cpus else None,
        "cpu_model": cpus[0].get("model") if cpus else None,
        "logical_cpus": logical,
        "cores": cores,
        "clock_mhz": clock_mhz,
        "clock_source": clock_source,
        "isa": isa,
        "fp32_lanes": lanes,
        "fma_units": fma_units,
        "fma_source": fma_source,
        "peak_gflops": peak / 1e9,
        "formula": f"{cores} cores x {clock_mhz / 1000:.3f} GHz x {fma_units} FMA units x "
        f"{lanes} fp32 lanes x 2 flops = {peak / 1e9:.1f} GFLOP/s",
        "features": sorted(
            f for f in flags if f.startswith(("avx", "fma", "amx", "sse", "f16c", "neon", "sve"))
        ),
    }


def _version(package: str) -> str:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def versions() -> dict[str, str]:
    """Python's version and each of PACKAGES'."""
    return {"python": platform.python_version(), **{name: _version(name) for name in PACKAGES}}


def machine_info(fma_units: int | None = None, clock_mhz: float | None = None,
                 torch_threads: int | None = None) -> dict[str, Any]:
    """What `cpu_text` and `versions_text` describe, and the date; `torch_threads` default: torch's."""
    import torch

    return {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "cpu": cpu_peak(fma_units, clock_mhz),
        "memory_gib": memory_gib(),
        "torch_threads": torch_threads or torch.get_num_threads(),
        "platform": platform.platform(),
        "versions": versions(),
    }


def cpu_text(machine: dict[str, Any]) -> str:
    c = machine["cpu"]
    memory = f"{machine['memory_gib']:.1f} GiB" if machine.get("memory_gib") is not None else "? GiB"
    return (
        f"{c['model_name']} (family {c['cpu_family']} model {c['cpu_model']}), {c['cores']} cores "
        f"({c['logical_cpus']} logical), {c['isa']}, {memory}, torch threads {machine['torch_threads']}"
    )


def versions_text(v: dict[str, str]) -> str:
    return ", ".join(f"{k} {v[k]}" for k in (*PACKAGES, "python") if k in v)
