"""`bench-problems`: the problem-set runner, end to end through real subprocesses.

One run over a subset of `problems/` (copied to a temporary folder) checks the
statuses, the table, the totals and the JSON; smaller runs check the time and
memory bounds, Ctrl-C, option passthrough and the usage errors. The children
inherit conftest's isolated MLIRFORGE_CACHE_DIR.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mlirforge import problems as runner

ROOT = Path(__file__).resolve().parent.parent
PROBLEMS = ROOT / "problems"
SUBSET = ("1_matmul.py", "4_softmax.py", "8_unsupported_erfinv.py", "9_random_in_forward.py",
          "10_too_large.py", "11_broken.py")
EXPECTED = {"1_matmul.py": "pass", "4_softmax.py": "pass", "8_unsupported_erfinv.py": "fell-back",
            "9_random_in_forward.py": "mismatch", "10_too_large.py": "skipped", "11_broken.py": "error"}

SLEEPY = '''
import os, time
import torch
from torch import nn

PID_FILE = {pid_file!r}

class Model(nn.Module):
    def forward(self, x):
        time.sleep(120)
        return x

def get_inputs():
    with open(PID_FILE, "w") as f:
        f.write(str(os.getpid()))
    return [torch.randn(4)]

def get_init_inputs():
    return []
'''

# Allocates 4 GB inside forward: invisible to the size estimate (its output is
# 4 floats), so only the child's RLIMIT_AS can stop it.
MEMORY_HOG = '''
import torch
from torch import nn

class Model(nn.Module):
    def forward(self, x):
        big = torch.ones(2**30)
        return x + big[:4]

def get_inputs():
    return [torch.randn(4)]

def get_init_inputs():
    return []
'''


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mlirforge.problems", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT, check=False)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead too (it only waits for its parent to reap it).
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


@pytest.fixture(scope="module")
def subset_run(tmp_path_factory):
    """One runner invocation over the subset; returns (process, JSON data)."""
    folder = tmp_path_factory.mktemp("problems")
    for name in SUBSET:
        shutil.copy(PROBLEMS / name, folder / name)
    out = folder / "results.json"
    start = time.monotonic()
    proc = run_cli("bench-problems", folder, "--rounds", "3", "--json", out, timeout=300)
    print(f"subset run: {time.monotonic() - start:.1f} s\n{proc.stderr}")
    assert proc.returncode == 0, proc.stderr
    return proc, json.loads(out.read_text())


def by_name(data: dict) -> dict[str, dict]:
    return {r["problem"]: r for r in data["results"]}


def test_each_problem_gets_its_status(subset_run):
    _, data = subset_run
    got = {name: r["status"] for name, r in by_name(data).items()}
    assert got == EXPECTED, {n: (r["status"], r["reason"]) for n, r in by_name(data).items()}


def test_passing_problems_ran_in_iree_and_were_timed(subset_run):
    _, data = subset_run
    for name in ("1_matmul.py", "4_softmax.py"):
        r = by_name(data)[name]
        assert r["iree_calls_per_call"] >= 1
        assert r["stats_delta"]["graphs_compiled"] >= 1 and r["stats_delta"]["eager_graphs"] == 0
        assert r["fallback_ops"] == [] and r["graph_breaks"] == []
        assert 0 <= r["max_abs_error"] < 1e-3
        assert r["eager_us"] > 0 and r["mlirforge_us"] > 0 and r["compile_s"] > 0
        assert r["speedup"] == pytest.approx(r["eager_us"] / r["mlirforge_us"])
        assert r["timing"]["rounds"] == 3 and len(r["timing"]["eager_samples_us"]) == 3


def test_unsupported_op_is_named_as_fallen_back(subset_run):
    proc, data = subset_run
    r = by_name(data)["8_unsupported_erfinv.py"]
    assert any("erfinv" in op for op in r["fallback_ops"]), r
    assert "erfinv" in r["reason"]
    assert r["iree_calls_per_call"] >= 1  # the linear parts still ran in IREE
    row = next(line for line in proc.stdout.splitlines() if line.startswith("8_unsupported_erfinv.py"))
    assert "fell-back" in row and "erfinv" in row


def test_random_forward_is_a_mismatch_with_its_error(subset_run):
    _, data = subset_run
    r = by_name(data)["9_random_in_forward.py"]
    assert r["max_abs_error"] > 0.01
    assert "max abs error" in r["reason"]


def test_too_large_problem_is_skipped_without_allocating(subset_run):
    _, data = subset_run
    r = by_name(data)["10_too_large.py"]
    assert r["estimate"]["param_bytes"] == 131072 * 131072 * 4  # 64 GiB, counted on the meta device
    assert "too large" in r["reason"] and "--max-memory-mb" in r["reason"]
    assert r["phase"] == "estimate"  # it never got to building real tensors
    assert r["compile_s"] is None and r["eager_us"] is None


def test_broken_problem_is_an_error_with_one_line(subset_run):
    _, data = subset_run
    r = by_name(data)["11_broken.py"]
    assert "broken on purpose" in r["reason"] and "\n" not in r["reason"]


def test_table_progress_and_totals(subset_run):
    proc, data = subset_run
    lines = proc.stdout.splitlines()
    assert lines[0].split()[:3] == ["problem", "status", "max"]
    for name, status in EXPECTED.items():
        row = next(line for line in lines if line.startswith(name + " "))
        assert row.split()[1] == status
    assert lines[-1].startswith("totals: 6 problems: 2 pass, 1 mismatch, 1 fell-back, 1 error, 1 skipped;")
    # Progress on stderr, in natural order (1, 4, 8, 9, 10, 11), one line per problem.
    progress = [line for line in proc.stderr.splitlines() if line.startswith("[")]
    assert [p.split()[:3] for p in progress] == [[f"[{i}/6]", n, EXPECTED[n]] for i, n in enumerate(SUBSET, 1)]

    totals = data["totals"]
    assert totals["counts"] == {"pass": 2, "mismatch": 1, "fell-back": 1, "error": 1, "timeout": 0, "skipped": 1}
    speedups = [r["speedup"] for r in data["results"] if r["status"] == "pass"]
    assert totals["timed_passes"] == 2
    assert totals["geomean_speedup"] == pytest.approx(math.exp(sum(map(math.log, speedups)) / 2))
    assert f"geometric-mean speedup over 2 passing: {totals['geomean_speedup']:.2f}x" in lines[-1]
    assert data["planned"] == 6 and data["interrupted"] is False and data["rounds"] == 3


def test_time_bound_kills_the_problem_and_its_group(tmp_path):
    pid_file = tmp_path / "sleepy.pid"
    (tmp_path / "sleepy.py").write_text(SLEEPY.format(pid_file=str(pid_file)))
    out = tmp_path / "r.json"
    proc = run_cli(tmp_path, "--timeout-s", "4", "--json", out)
    assert proc.returncode == 0, proc.stderr
    r = json.loads(out.read_text())["results"][0]
    assert r["status"] == "timeout", r
    assert r["reason"].startswith("exceeded 4 s (during ")  # the phase it was in
    assert 4 <= r["wall_s"] < 15
    assert not pid_alive(int(pid_file.read_text()))
    assert proc.stdout.splitlines()[-1].startswith("totals: 1 problem: 1 timeout;")


def test_options_and_memory_bound_reach_the_child(tmp_path):
    """An iree-compile flag that does not exist makes the graph run eagerly (fell-back, not pass);
    a 4 GB allocation that the size estimate cannot see hits the child's RLIMIT_AS."""
    shutil.copy(PROBLEMS / "4_softmax.py", tmp_path)
    (tmp_path / "memory_hog.py").write_text(MEMORY_HOG)
    out = tmp_path / "r.json"
    proc = run_cli(tmp_path, "--rounds", "2", "--json", out, "--max-memory-mb", "3000",
                   "--options", 'iree_flags=["--iree-no-such-flag"]', "--options", "use_cache=false")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    assert data["options"] == {"iree_flags": ["--iree-no-such-flag"], "use_cache": False}
    softmax, hog = by_name(data)["4_softmax.py"], by_name(data)["memory_hog.py"]
    assert softmax["status"] == "fell-back", softmax
    assert softmax["iree_calls_per_call"] == 0 and softmax["stats_delta"]["eager_graphs"] == 1
    assert hog["status"] == "error", hog
    assert "out of memory (address-space bound 3000 MB)" in hog["reason"]


def test_ctrl_c_prints_the_table_so_far(tmp_path):
    shutil.copy(PROBLEMS / "11_broken.py", tmp_path / "1_broken.py")
    pid_file = tmp_path / "sleepy.pid"
    (tmp_path / "2_sleepy.py").write_text(SLEEPY.format(pid_file=str(pid_file)))
    # As a terminal's Ctrl-C finds it: SIGINT at its default. A test run started in the background by a
    # shell without job control inherits SIGINT ignored, and Python then installs no KeyboardInterrupt.
    proc = subprocess.Popen([sys.executable, "-m", "mlirforge.problems", str(tmp_path)], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    while not pid_file.exists() and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.1)
    assert pid_file.exists(), "the second problem never started"
    child = int(pid_file.read_text())
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    assert "interrupted after 1 of 2 problems" in stderr
    assert any(line.startswith("1_broken.py") and " error " in line for line in stdout.splitlines())
    assert "2_sleepy.py" not in stdout
    assert stdout.splitlines()[-1].startswith("totals: 1 problem: 1 error;")
    time.sleep(0.2)
    assert not pid_alive(child)


def _folder(tmp_path: Path, kind: str) -> Path:
    """missing: no folder; empty; readme: no .py file; one: one (empty) problem file."""
    if kind == "missing":
        return tmp_path / "missing"
    if kind == "readme":
        (tmp_path / "README.md").write_text("not a problem")
    if kind == "one":
        (tmp_path / "1_x.py").write_text("")
    return tmp_path


@pytest.mark.parametrize("kind, extra, message", [
    ("missing", [], "no such directory"),
    ("empty", [], "no .py problem files"),
    ("readme", [], "no .py problem files"),
    ("one", ["--filter", "nothing"], "matching --filter 'nothing'"),
    ("one", ["--options", "novalue"], "expected KEY=VALUE"),
    ("one", ["--options", "no_such_option=1"], "unknown mlirforge option"),
    ("one", ["--max-memory-mb", "100"], "--max-memory-mb must be at least"),
    ("one", ["--json", "/nonexistent/dir/r.json"], "its folder does not exist"),
])
def test_usage_errors_exit_2(tmp_path, kind, extra, message):
    proc = run_cli("bench-problems", _folder(tmp_path, kind), *extra, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr
    assert proc.stdout == ""


def test_every_problem_is_documented():
    readme = (PROBLEMS / "README.md").read_text()
    files = runner.problem_files(PROBLEMS, None)
    assert len(files) == 11
    for path in files:
        assert f"`{path.name}`" in readme, path.name


def test_natural_order_and_fallback_parsing():
    names = [p.name for p in runner.problem_files(PROBLEMS, None)]
    assert names[:2] == ["1_matmul.py", "2_matmul_tall.py"] and names[-2:] == ["10_too_large.py", "11_broken.py"]
    msg = ("mlirforge: these ops run in eager PyTorch: aten.erfinv (1 node at m.py:3), "
           "aten.foo.default (2 nodes at m.py:4, m.py:9); the rest of the graph is compiled")
    chosen = "mlirforge: these ops run in eager PyTorch by choice: aten.topk (1 node); why: aten.topk: slow"
    assert runner.fallback_ops([msg, chosen]) == ["aten.erfinv", "aten.foo.default", "aten.topk"]


def test_skip_reason_compares_with_bound_and_ram():
    small = runner.SizeEstimate(param_bytes=2**20, input_bytes=2**20, output_bytes=2**20)
    assert runner.skip_reason(small, 8192, 16000) is None
    big = runner.SizeEstimate(param_bytes=4 * 2**30, input_bytes=0, output_bytes=0)
    assert "--max-memory-mb 8192" in runner.skip_reason(big, 8192, 64000)
    assert "available RAM" in runner.skip_reason(big, 64000, 8000)
