"""Running one problem in a bounded child process, from the parent's side.

Why a subprocess per problem: a crash, a hang or a memory blow-up of one
problem must not take down the run. The parent starts `python -m
mlirforge.problems --one FILE ...` (`mlirforge.problem_child`) in a session
of its own, bounds its wall time (killing its process group, which holds any
`iree-compile` it started) and reads one JSON line from its stdout; a child
that dies without one is an `error` with the signal and the last stderr line.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from mlirforge.benchmarking import load_average
from mlirforge.problem_child import OOM_PATTERN, PHASE_MARKER, RESULT_MARKER
from mlirforge.problem_results import ProblemResult


def _child_command(path: Path, args: argparse.Namespace, options: dict[str, Any]) -> list[str]:
    return [sys.executable, "-m", "mlirforge.problems", "--one", str(path),
            "--max-memory-mb", str(args.max_memory_mb), "--rounds", str(args.rounds),
            "--options-json", json.dumps(options)]


def _kill_group(proc: subprocess.Popen) -> None:
    """Kill the child and whatever it started (iree-compile): they share its session."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _last_phase(stderr: str) -> str | None:
    phases = [ln[len(PHASE_MARKER):].strip() for ln in stderr.splitlines() if ln.startswith(PHASE_MARKER)]
    return phases[-1] if phases else None


def _stderr_tail(stderr: str, lines: int = 15) -> str:
    kept = [ln for ln in stderr.splitlines() if not ln.startswith(PHASE_MARKER)]
    return "\n".join(kept[-lines:])


def _crash_reason(returncode: int, stderr: str, max_memory_mb: int) -> str:
    """One line for a child that died without a result."""
    if returncode < 0:
        try:
            how = signal.Signals(-returncode).name
        except ValueError:
            how = f"signal {-returncode}"
    else:
        how = f"exit status {returncode}"
    if OOM_PATTERN.search(stderr):
        return f"out of memory (bound {max_memory_mb} MB), child died ({how})"
    last = next((ln.strip() for ln in reversed(stderr.splitlines())
                 if ln.strip() and not ln.startswith(PHASE_MARKER)), "")
    return f"child died ({how}){': ' + last[:160] if last else ''}"


def run_problem(path: Path, args: argparse.Namespace, options: dict[str, Any]) -> ProblemResult:
    """Run one problem in a child process under the time bound; never raises for its failures."""
    start = time.monotonic()
    proc = subprocess.Popen(_child_command(path, args, options), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, errors="replace", start_new_session=True)
    timed_out = False
    try:
        stdout, stderr = proc.communicate(timeout=args.timeout_s)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill_group(proc)
        stdout, stderr = proc.communicate()
    finally:
        if proc.poll() is None:  # interrupted (Ctrl-C): take the child down with us
            _kill_group(proc)
            proc.wait()
    wall = time.monotonic() - start
    phase = _last_phase(stderr)
    result_lines = [ln for ln in stdout.splitlines() if ln.startswith(RESULT_MARKER)]
    if timed_out:
        where = f" (during {phase})" if phase else ""
        result = ProblemResult(path.name, str(path), "timeout", f"exceeded {args.timeout_s:g} s{where}")
    elif result_lines:
        result = ProblemResult.from_json(json.loads(result_lines[-1][len(RESULT_MARKER):]))
    else:
        result = ProblemResult(path.name, str(path), "error",
                               _crash_reason(proc.returncode, stderr, args.max_memory_mb))
    result.phase, result.wall_s, result.load_avg = phase, round(wall, 2), load_average()
    result.stderr_tail = _stderr_tail(stderr)
    return result
