"""Faults while writing (issue "Hardening", items 3 and 5): a full disk, a process killed mid-write,
two processes sharing the rewrite cache. After each, nothing that was good is lost or half-written.

LLM endpoint faults (dropped connections, stalled answers, bodies of another
content type) are in test_llm.py with the scripted server.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import mlirforge
import mlirforge.api
import mlirforge.artifact
from mlirforge.llm_rewrite.cache import RewriteCache
from mlirforge.llm_rewrite.types import Candidate, Stage, Verdict
from mlirforge.lowering.errors import UserError

MODEL = textwrap.dedent("""
    import torch
    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(16, 8)
        def forward(self, x):
            return torch.relu(self.lin(x)) * 2
    def get_inputs():
        return [torch.randn(4, 16)]
    def get_init_inputs():
        return []
""")


@pytest.fixture(scope="module")
def good_artifact(tmp_path_factory):
    """A model file and a good artifact of it."""
    root = tmp_path_factory.mktemp("faults")
    (root / "model.py").write_text(MODEL)
    mlirforge.api.compile_model_file(root / "model.py", root / "out", {"use_cache": False}, time_it=False)
    return root


def _runs_like_eager(root: Path) -> None:
    from mlirforge.kernelbench import load_model_file

    problem = load_model_file(root / "model.py")
    artifact = mlirforge.load(root / "out")
    with torch.no_grad():
        torch.testing.assert_close(artifact(*problem.inputs), problem.model(*problem.inputs))


def _leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.startswith(".out."))


def test_a_full_disk_while_writing_leaves_the_old_artifact_whole_and_says_so(good_artifact, monkeypatch):
    root = good_artifact
    before = (root / "out" / "manifest.json").read_text()

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(mlirforge.artifact, "write_manifest", disk_full)
    with pytest.raises(UserError, match=r"out: cannot write the artifact: No space left on device; nothing was changed"):
        mlirforge.api.compile_model_file(root / "model.py", root / "out", {"use_cache": False}, time_it=False)
    assert (root / "out" / "manifest.json").read_text() == before and not _leftovers(root)
    _runs_like_eager(root)


KILLED_WRITER = textwrap.dedent("""
    import sys, time
    import mlirforge.api, mlirforge.artifact
    root = sys.argv[1]
    real = mlirforge.artifact.write_manifest if sys.argv[2] == "writing" else mlirforge.artifact._move_into_place
    def stall(*args, **kwargs):
        if sys.argv[2] == "writing":
            real(*args, **kwargs)          # half the new artifact is on disk
        print("ready", flush=True)
        time.sleep(60)                      # killed here
    if sys.argv[2] == "writing":
        mlirforge.artifact.write_manifest = stall
    else:
        mlirforge.artifact._move_into_place = stall
    mlirforge.api.compile_model_file(root + "/model.py", root + "/out", {"use_cache": False}, time_it=False)
""")


@pytest.mark.parametrize("when", ["writing", "before-the-swap"])
def test_a_writer_killed_mid_artifact_leaves_the_old_artifact_whole(good_artifact, when):
    root = good_artifact
    before = (root / "out" / "manifest.json").read_text()
    child = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(root), when], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    assert (root / "out" / "manifest.json").read_text() == before
    _runs_like_eager(root)
    # The next write replaces it whole, and only the killed writer's hidden staging directory remains.
    mlirforge.api.compile_model_file(root / "model.py", root / "out", {"use_cache": False}, time_it=False)
    _runs_like_eager(root)
    assert all(name.startswith(".out.") for name in _leftovers(root))


def _rewrite(i: int, speedup: float) -> tuple[Candidate, Verdict]:
    cand = Candidate("kernel", {"mlir": f"// rewrite {i} {speedup}"}, f"{i:016x}")
    return cand, Verdict(cand.id, stage=Stage.DONE, built=True, equivalent=True, accepted=True,
                         timing={"speedup": speedup, "ci_low": speedup - 0.05, "ci_high": speedup + 0.05})


CACHE_WRITER = textwrap.dedent("""
    import random, sys
    sys.path.insert(0, sys.argv[3])
    from test_faults import _rewrite
    from mlirforge.llm_rewrite.cache import RewriteCache
    cache = RewriteCache(sys.argv[1])
    rng = random.Random(int(sys.argv[2]))
    for n in range(100000):
        i = rng.randrange(20)
        speedup = round(1.0 + rng.random(), 4)
        cache.store(f"{i:016x}", "ctx", *_rewrite(i, speedup))
        cache.mark_searched(f"{i:016x}", "ctx", n, 0.1)
        print(i, speedup, flush=True)   # committed: each store is its own transaction
        if n + 1 == int(sys.argv[4]):
            break
""")


def _writer(path: Path, seed: int, count: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", CACHE_WRITER, str(path), str(seed), str(Path(__file__).parent),
                             str(count)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_a_process_killed_while_writing_the_cache_loses_nothing_it_committed(tmp_path):
    path = tmp_path / "rewrites.sqlite"
    child = _writer(path, 1, 0)  # 0: never stops by itself
    committed: dict[int, float] = {}
    try:
        for _ in range(60):
            i, speedup = child.stdout.readline().split()
            committed[int(i)] = max(committed.get(int(i), 0.0), float(speedup))
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    cache = RewriteCache(path)
    for i, speedup in committed.items():
        hit = cache.lookup(f"{i:016x}", "ctx")
        assert hit is not None and hit[1].speedup >= speedup  # the kill came later: maybe one more landed
    cache.store("f" * 16, "ctx", *_rewrite(99, 1.5))  # and it is writable again
    assert cache.lookup("f" * 16, "ctx") is not None


def test_two_processes_sharing_the_cache_keep_the_fastest_rewrite_of_each_kernel(tmp_path):
    path = tmp_path / "rewrites.sqlite"
    writers = [_writer(path, seed, 300) for seed in (2, 3)]
    best: dict[int, float] = {}
    for w in writers:
        out, err = w.communicate(timeout=120)
        assert w.returncode == 0, err  # no "database is locked" under contention
        for line in out.splitlines():
            i, speedup = line.split()
            best[int(i)] = max(best.get(int(i), 0.0), float(speedup))
    cache = RewriteCache(path)
    stored = {int(e["kernel"], 16): e["speedup"] for e in cache.entries()}
    assert stored == best
    assert cache.searched_count() == len(best)


def test_replacing_an_artifact_never_leaves_its_path_without_a_whole_one(tmp_path, monkeypatch):
    """The old and new directories are swapped in one step; the fallback (no renameat2) renames aside."""
    from mlirforge.artifact import _move_into_place

    for swap_supported in (True, False):
        out, staging = tmp_path / f"out{swap_supported}", tmp_path / f".staging{swap_supported}"
        out.mkdir()
        (out / "manifest.json").write_text("old")
        staging.mkdir()
        (staging / "manifest.json").write_text("new")
        seen = []
        real_rmtree, real_replace = mlirforge.artifact.shutil.rmtree, os.replace
        monkeypatch.setattr(mlirforge.artifact.shutil, "rmtree",
                            lambda p, **kw: (seen.append((out / "manifest.json").read_text()), real_rmtree(p, **kw)))
        monkeypatch.setattr(mlirforge.artifact.os, "replace",
                            lambda a, b: (seen.append("exists" if out.exists() else "gone"), real_replace(a, b)))
        if not swap_supported:
            monkeypatch.setattr(mlirforge.artifact, "_exchange", lambda a, b: False)
        _move_into_place(staging, out)
        assert (out / "manifest.json").read_text() == "new" and not staging.exists()
        # With the swap, os.replace is never needed and the old one is removed after the new one is in place.
        assert seen == (["new"] if swap_supported else ["exists", "gone", "new"])
        monkeypatch.undo()
