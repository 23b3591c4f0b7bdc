"""Crash safety: SIGKILL a training job at random points, ten times; kill the app that started a job.

After every kill the job is reported failed with the reason, every checkpoint on disk loads (never half-written),
and resuming continues from the last checkpoint's step rather than starting over.
"""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import engine
from trainers import runfiles
from trainers.jobs import JobManager
from trainers.state import find_last, load_last

# checkpoint_every=1: a tiny model spends much of its time writing checkpoints, so kills land mid-write too
TINY = {"d": 8, "sets": 1, "set_size": 2,  # a tiny bytenet (the data is text)
        "seq_len": 16, "batch_size": 2, "eval_every": 3, "eval_tokens": 64, "log_every": 1,
        "checkpoint_every": 1, "threads": 1, "warmup_steps": 2}


def _wait(pred, timeout=120.0):
    start = time.time()
    while time.time() - start < timeout:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")


def _assert_checkpoints_load(folder):
    best = folder / runfiles.BEST
    if best.exists():
        engine.load_model(best)
    last = find_last(folder / runfiles.LAST)
    if last is not None:
        engine.load_model(last)
        state, tensors = load_last(last)
        assert state["step"] >= 1 and tensors
        return state["step"]
    return 0


def test_ten_random_sigkills_never_lose_or_corrupt_a_checkpoint(tmp_path):
    data = tmp_path / "text.txt"
    data.write_text("the cat sat on the mat. " * 60)
    jobs = JobManager(tmp_path / "runs")
    rng = random.Random(8)
    job_id = jobs.start("bytenet", data, max_steps=10**6, name="crashy", overrides=TINY)
    saved_step = reported_step = 0
    for kill in range(10):
        _wait(lambda: jobs.get(job_id).state == "running" and jobs.get(job_id).pid)
        pid = jobs.get(job_id).pid
        _wait(lambda: jobs.get(job_id).step > reported_step)  # it (re)started and trains again
        time.sleep(rng.uniform(0.0, 0.6))
        os.kill(pid, signal.SIGKILL)
        _wait(lambda: jobs.get(job_id).state == "failed")
        job = jobs.get(job_id)
        reported_step = job.step
        assert "SIGKILL" in job.error or "killed" in job.error, job.error
        assert "resumed" in job.error and job.resumable
        step = _assert_checkpoints_load(job.dir)
        assert step >= saved_step, f"kill {kill}: the last checkpoint went back from {saved_step} to {step}"
        saved_step = step
        if kill < 9:
            jobs.resume(job_id)
    assert saved_step >= 10
    jobs.resume(job_id, max_steps=saved_step + 2)
    _wait(lambda: jobs.get(job_id).state in ("finished", "failed"))
    assert jobs.get(job_id).state == "finished", jobs.log(job_id)
    train_steps = [m["step"] for m in jobs.metrics(job_id) if m["split"] == "train"]
    assert max(train_steps) == saved_step + 2


def test_killing_the_app_loses_no_job_state(tmp_path):
    """The process that started a job (the app) dies; the job keeps running and the table comes back."""
    data = tmp_path / "text.txt"
    data.write_text("abcabcabd " * 100)
    root = tmp_path / "runs"
    script = (f"import json, sys, time\nfrom trainers.jobs import JobManager\n"
              f"jobs = JobManager({str(root)!r})\n"
              f"job = jobs.start('bytenet', {str(data)!r}, max_steps=6, name='survivor', overrides={TINY!r})\n"
              "print(job, flush=True)\ntime.sleep(600)\n")
    app = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True,
                           cwd=os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    job_id = app.stdout.readline().strip()
    assert job_id, "the stand-in app did not start a job"
    app.kill()
    app.wait(timeout=30)
    restarted = JobManager(root)
    _wait(lambda: restarted.get(job_id).state in ("finished", "failed"))
    job = restarted.get(job_id)
    assert job.state == "finished", restarted.log(job_id)
    assert job.step == 6 and engine.load_model(job.best) is not None

