"""The same entry point under torchrun: 2 CPU processes (gloo), each on its own shard, rank 0 writes."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import engine
from trainers import runfiles

REPO = Path(__file__).resolve().parents[2]


def test_torchrun_two_cpu_processes(tmp_path):
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists() and not shutil.which("torchrun"):
        pytest.skip("torchrun is not installed")
    data = tmp_path / "text.txt"
    data.write_text("hello world, " * 200)
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    cmd = [str(torchrun if torchrun.exists() else shutil.which("torchrun")), "--standalone", "--nproc_per_node=2",
           "-m", "trainers", "train", "--family", "bytenet", "--data", str(data), "--out", str(out),
           "--max-steps", "4", "--seq-len", "16", "--batch-size", "2", "--threads", "1", "--no-progress",
           "--set", "sets=1", "--set", "set_size=2", "--set", "eval_every=4", "--set", "log_every=1",
           "--set", "d=8"]
    res = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stderr[-3000:]
    status = runfiles.read_status(out)
    assert status["state"] == "finished" and status["world_size"] == 2 and status["step"] == 4
    assert [m["step"] for m in runfiles.read_metrics(out) if m["split"] == "train"] == [1, 2, 3, 4]  # rank 0 only
    engine.load_model(out / "best")
    assert (out / "last" / "optimizer.safetensors").is_file()
    # no stray temp folders from rank 1 (.lock: rank 0 owns the folder, trainers.runlock)
    assert not [p for p in out.iterdir() if p.name.startswith(".") and p.name != runfiles.LOCK_FILE]
