"""Background jobs: real training processes, killed, resumed, cancelled, queued, and rebuilt from disk."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

import engine
from trainers.jobs import JOB_NICENESS, JobError, JobManager, _stop_tree

TINY = {"d": 8, "sets": 1, "set_size": 2,  # a tiny bytenet
        "seq_len": 16, "batch_size": 2, "eval_every": 1000, "eval_tokens": 200, "log_every": 1,
        "checkpoint_every": 2, "threads": 1, "warmup_steps": 2}


@pytest.fixture
def text(tmp_path):
    p = tmp_path / "text.txt"
    p.write_text("abcabcabd " * 100)
    return p


def _wait(pred, timeout=90.0):
    t = time.time()
    while time.time() - t < timeout:
        if pred():
            return True
        time.sleep(0.2)
    raise AssertionError("timed out")


def test_killed_job_fails_with_reason_queue_rebuild_and_resume(tmp_path, text):
    jobs = JobManager(tmp_path / "runs", max_concurrent=1)
    a = jobs.start("bytenet", text, max_steps=100000, name="long", overrides=TINY)
    b = jobs.start("bytenet", text, max_steps=3, name="short", overrides=TINY)
    assert jobs.get(b).state == "queued"  # one slot, taken by a
    _wait(lambda: jobs.get(a).step >= 4)
    pid = jobs.get(a).pid
    os.kill(pid, signal.SIGKILL)
    _wait(lambda: jobs.get(a).state == "failed")
    job = jobs.get(a)
    assert "SIGKILL" in job.error and job.resumable
    _wait(lambda: jobs.get(b).state == "finished")  # the queued job took the free slot
    killed_at = job.step

    fresh = JobManager(tmp_path / "runs")  # an app restart: the table comes back from the folders
    table = {j.id: j for j in fresh.list()}
    assert table[a].state == "failed" and table[b].state == "finished" and table[b].step == 3
    engine.load_model(table[b].best)

    fresh.resume(a, max_steps=killed_at + 2)
    _wait(lambda: fresh.get(a).state in ("finished", "failed"))
    assert fresh.get(a).state == "finished", fresh.log(a)
    steps = [m["step"] for m in fresh.metrics(a) if m["split"] == "train"]
    assert steps[-1] == killed_at + 2 and max(steps) == killed_at + 2  # continued, not restarted
    with pytest.raises(JobError, match="is already running"):  # not "the job limit is reached"
        fresh.resume(fresh.start("bytenet", text, max_steps=1, overrides=TINY))


def test_cancel_stops_the_training_process(tmp_path, text):
    jobs = JobManager(tmp_path / "runs")
    a = jobs.start("bytenet", text, max_steps=100000, overrides=TINY)
    _wait(lambda: jobs.get(a).step >= 1)
    proc = psutil.Process(jobs.get(a).pid)
    if os.name == "posix":  # background training yields the CPU to live generation
        assert proc.nice() == min(19, os.nice(0) + JOB_NICENESS)
    job = jobs.cancel(a, grace_s=10)
    assert job.state == "cancelled"
    assert not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE


def test_stop_tree_kills_children_too():
    parent = subprocess.Popen([sys.executable, "-c", "import subprocess, sys, time; "
                               "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
                               "time.sleep(60)"], start_new_session=True)
    proc = psutil.Process(parent.pid)
    _wait(lambda: len(proc.children()) == 1, timeout=20)
    child = proc.children()[0]
    _stop_tree(proc, grace_s=2)
    parent.wait(timeout=5)
    assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE


def test_bad_requests(tmp_path):
    jobs = JobManager(tmp_path / "runs")
    with pytest.raises(JobError, match="data not found"):
        jobs.start("wavenet", tmp_path / "nope.txt")
    with pytest.raises(JobError, match="no job"):
        jobs.get("missing")
