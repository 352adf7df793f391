"""What confines a candidate that is Python code (a `triton` kernel) inside the evaluation worker.

A compiled IREE module can only compute on its buffers; a Triton kernel is a
Python file, imported and (under `TRITON_INTERPRET=1`) executed as Python. The
worker that runs one therefore adds, to its usual time, memory and CPU limits
(`worker_protocol`), four confinements, each named by what it stops:

- **No environment secrets.** Every worker starts with `worker_environment()`:
  an allow-list of variable names (paths, locale, CUDA/Triton switches), so an
  API key in the user's shell never reaches a candidate.
- **No network.** `isolate_network()` moves the worker into new, empty user and
  network namespaces (Linux `unshare`), where no address is reachable; where
  the kernel refuses that, the audit hook below still refuses sockets.
- **No files outside its work directory.** `confine()` installs a CPython audit
  hook (PEP 578) after the worker has loaded what it needs and before the
  candidate's file is imported: from then on, opening, listing, creating or
  removing a path is allowed only inside the candidate's own directory, and
  reading also inside the Python installation (the interpreter's modules and
  packages, which the kernel's imports and Triton's interpreter read).
- **No other programs.** Processes, `os.system`, `exec`, `fork` and new native
  libraries (`ctypes`) are refused, except the executables named to `confine`
  (on a GPU: the compiler Triton runs to build its launcher, and `ptxas`).

An attempt is refused with PermissionError and also recorded (`violations`):
the worker turns any recorded attempt into the candidate's verdict even if the
kernel caught the error. An audit hook is not a boundary against native code,
which is why new native libraries are refused and the candidate kind admits
only Triton source (`candidates.triton.screen_source`) in the first place.
"""

from __future__ import annotations

import os
import sys
import threading
from pathlib import Path

ENVIRONMENT_NAMES = ("PATH", "LANG", "LANGUAGE", "TZ", "PYTHONPATH", "LD_LIBRARY_PATH", "CUDA_VISIBLE_DEVICES",
                     "CUDA_HOME", "CUDA_PATH", "CC", "OMP_NUM_THREADS")
ENVIRONMENT_PREFIXES = ("LC_", "TRITON_", "MLIRFORGE_TEST_")
"""What a worker may see of its parent's environment: names and prefixes without secrets in them."""

violations: list[str] = []
"""Every refused attempt since `confine`, in order, as one line each."""

_BLOCKED = {
    "socket.connect": "open a network connection", "socket.bind": "bind a network socket",
    "socket.sendto": "send on the network", "socket.sendmsg": "send on the network",
    "socket.getaddrinfo": "look up a network address", "socket.gethostbyname": "look up a network address",
    "os.system": "run a shell command", "os.exec": "run another program", "os.posix_spawn": "start a process",
    "os.spawn": "start a process", "os.fork": "fork the process", "os.forkpty": "fork the process",
    "ctypes.dlopen": "load a native library", "os.kill": "signal a process", "sys.addaudithook": "change the sandbox",
}
_PATH_WRITE_EVENTS = ("os.remove", "os.rename", "os.rmdir", "os.mkdir", "os.chmod", "os.chown", "os.link",
                      "os.symlink", "os.truncate", "os.utime", "shutil.rmtree", "shutil.copyfile", "shutil.move")
_PATH_READ_EVENTS = ("os.listdir", "os.scandir", "glob.glob", "os.chdir")
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def worker_environment(base: dict[str, str] | None = None, **extra: str) -> dict[str, str]:
    """The environment a worker starts with: `base` (default os.environ) cut to the allow-list, plus `extra`."""
    base = os.environ if base is None else base
    env = {k: v for k, v in base.items() if k in ENVIRONMENT_NAMES or k.startswith(ENVIRONMENT_PREFIXES)}
    env.update(extra)
    return env


def isolate_network() -> bool:
    """Enter new user and network namespaces (no interface but a down loopback); False where Linux refuses.

    Must run while the process has one thread (before torch or any runtime starts threads).
    """
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        clone_newuser, clone_newnet = 0x10000000, 0x40000000
        return libc.unshare(clone_newuser | clone_newnet) == 0
    except (OSError, AttributeError):
        return False


def _path_of(value) -> str | None:
    if isinstance(value, int) or value is None:
        return None  # an open file descriptor: what it names was checked when it was opened
    try:
        return os.path.realpath(os.fsdecode(value))
    except (TypeError, ValueError):
        return None


def _inside(path: str, roots: tuple[str, ...]) -> bool:
    return any(path == r or path.startswith(r.rstrip(os.sep) + os.sep) for r in roots)


def python_roots() -> tuple[str, ...]:
    """Where the interpreter and its packages live (read-only for a confined candidate)."""
    roots = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    roots.update(p for p in sys.path if p and os.path.isdir(p))
    # An editable install of mlirforge lives outside the prefix: its package directories.
    for name, module in list(sys.modules.items()):
        if name.split(".", 1)[0] == "mlirforge":
            roots.update(getattr(module, "__path__", []) or [])
    return tuple(sorted(os.path.realpath(r) for r in roots))


def confine(workdir: str | Path, executables: tuple[str, ...] = ()) -> None:
    """From now on, this process reaches only `workdir` (read/write) and Python's installation (read).

    `executables`: programs it may still start (resolved paths). Not undoable: a
    hook cannot be removed, and a further hook is refused.
    """
    own = (os.path.realpath(str(workdir)),)
    readable = own + python_roots() + ("/dev/null", "/dev/urandom", "/proc/self", "/sys/devices/system/cpu",
                                       "/proc/cpuinfo", "/proc/meminfo")
    allowed_programs = {os.path.realpath(e) for e in executables}
    guard = threading.local()

    def refuse(what: str) -> None:
        violations.append(what)
        raise PermissionError(f"sandbox: the candidate may not {what}")

    def hook(event: str, args: tuple) -> None:
        if getattr(guard, "busy", False):
            return
        guard.busy = True
        try:
            check(event, args)
        finally:
            guard.busy = False

    def check(event: str, args: tuple) -> None:
        if event == "open":
            path = _path_of(args[0])
            if path is None:
                return
            mode, flags = (args[1] or ""), (args[2] or 0) if len(args) > 2 else 0
            writes = any(c in mode for c in "wax+") or bool(flags & _WRITE_FLAGS)
            if not _inside(path, own if writes else readable):
                refuse(f"{'write' if writes else 'read'} {path} (outside its work directory)")
        elif event in _PATH_READ_EVENTS:
            path = _path_of(args[0] if args else None)
            if path is not None and not _inside(path, readable):
                refuse(f"list {path} (outside its work directory)")
        elif event in _PATH_WRITE_EVENTS:
            for value in args[:2]:
                path = _path_of(value) if isinstance(value, str | bytes | os.PathLike) else None
                if path is not None and not _inside(path, own):
                    refuse(f"change {path} (outside its work directory)")
        elif event == "subprocess.Popen":
            program = _path_of(args[0]) if args and args[0] else None
            if program is None and len(args) > 1 and args[1]:
                first = args[1][0] if isinstance(args[1], list | tuple) else str(args[1]).split()[0]
                program = _path_of(first)
            if program not in allowed_programs:
                refuse(f"start the program {program or args[:2]}")
        elif event in ("os.posix_spawn", "os.exec") and args and _path_of(args[0]) in allowed_programs:
            return  # how subprocess starts a program it already let through (`subprocess.Popen` above)
        elif event in _BLOCKED or event.startswith("os.exec") or event.startswith("os.spawn"):
            refuse(_BLOCKED.get(event, "run another program") + f" ({event})")

    sys.addaudithook(hook)
