"""One owner per run folder (defect 3), resume budgets as totals (defect 5), PLAYGROUND_MAX_JOBS (defect 11)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from trainers import cli, runfiles, runlock
from trainers.jobs import JobError, JobManager, max_jobs_setting

REPO = Path(__file__).resolve().parents[2]
TINY = {"d": 8, "sets": 1, "set_size": 2, "seq_len": 16, "batch_size": 2, "eval_every": 1000, "eval_tokens": 200,
        "log_every": 1, "checkpoint_every": 2, "threads": 1, "warmup_steps": 2}
SETS = [x for k, v in TINY.items() for x in ("--set", f"{k}={v}")]


@pytest.fixture
def text(tmp_path):
    p = tmp_path / "text.txt"
    p.write_text("abcabcabd " * 100)
    return p


def _env():
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


def _wait(pred, timeout=90.0):
    t = time.time()
    while time.time() - t < timeout:
        if pred():
            return True
        time.sleep(0.2)
    raise AssertionError("timed out")


def _trainer(args, **kw):
    return subprocess.run([sys.executable, "-m", "trainers", "train", *args], env=_env(), cwd=REPO,
                          capture_output=True, text=True, timeout=120, **kw)


def _has_last(run) -> bool:
    return (run / "last" / "trainer_state.json").is_file()


def test_a_second_trainer_on_a_folder_being_trained_is_refused_and_touches_nothing(tmp_path, text):
    run = tmp_path / "run"
    owner = subprocess.Popen([sys.executable, "-m", "trainers", "train", "--family", "bytenet", "--data", str(text),
                              "--out", str(run), "--max-steps", "100000", "--no-progress", "--no-samples", *SETS],
                             env=_env(), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait(lambda: _has_last(run) and runfiles.read_status(run).get("state") == "running")
        assert runlock.owner(run) == owner.pid
        status_before = runfiles.read_status(run)
        for args in (["--out", str(run), "--resume", "--no-progress"],
                     ["--family", "bytenet", "--data", str(text), "--out", str(run), "--no-progress"]):
            res = _trainer(args)
            assert res.returncode == 2 and "Traceback" not in res.stderr, res.stderr
            assert res.stderr.strip().splitlines()[-1] == (
                f"error: {run} is being trained by another process (pid {owner.pid}); stop it (or wait for it "
                "to finish) before training in this folder")
        status = runfiles.read_status(run)
        assert status["state"] == "running" and status["pid"] == owner.pid and not status.get("error")
        assert status["started"] == status_before["started"] and owner.poll() is None
    finally:
        owner.send_signal(signal.SIGKILL)  # a crash: the OS drops the lock with the process
        owner.wait(30)
    assert runlock.owner(run) is None
    res = _trainer(["--out", str(run), "--resume", "--no-progress", "--max-steps",
                    str(runfiles.read_json(run / "last" / "trainer_state.json")["step"] + 2)])
    assert res.returncode == 0, res.stderr
    assert runfiles.read_status(run)["state"] == "finished"


def test_a_job_survives_a_cli_resume_on_its_folder_and_stop_and_resume_still_work(tmp_path, text):
    jobs = JobManager(tmp_path / "runs", max_concurrent=1)
    job_id = jobs.start("bytenet", text, max_steps=100000, overrides={**TINY, "samples": False})
    folder = tmp_path / "runs" / job_id
    _wait(lambda: _has_last(folder) and jobs.get(job_id).step > 0)
    pid = jobs.get(job_id).pid
    res = _trainer(["--out", str(folder), "--resume", "--no-progress"])
    assert res.returncode == 2 and f"pid {pid}" in res.stderr
    job = jobs.get(job_id)
    assert job.state == "running" and job.pid == pid and not job.error
    with pytest.raises(JobError, match=f"job {job_id} is already running"):
        jobs.resume(job_id)
    assert jobs.cancel(job_id, grace_s=20).state == "cancelled"
    assert not _alive(pid) and runlock.owner(folder) is None
    step = runfiles.read_json(folder / "last" / "trainer_state.json")["step"]
    assert jobs.resume(job_id, max_steps=step + 2).state in ("queued", "running")
    _wait(lambda: jobs.get(job_id).state == "finished")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_a_resume_with_its_budget_spent_says_so_and_a_larger_total_extends_it(tmp_path, text, capsys):
    out = tmp_path / "run"
    base = ["train", "--family", "bytenet", "--data", str(text), "--out", str(out), "--no-progress", *SETS]
    assert cli.main([*base, "--max-steps", "4"]) == 0
    status = runfiles.read_status(out)
    assert status["state"] == "finished" and status["total"] == 4
    capsys.readouterr()
    assert cli.main(["train", "--out", str(out), "--resume", "--no-progress"]) == 2
    assert capsys.readouterr().err.strip() == ("error: the run already reached max steps 4 (it is at step 4); pass "
                                               "--max-steps N (a larger total) to continue")
    assert runfiles.read_status(out)["state"] == "finished"  # left as it was, not marked failed
    assert cli.main(["train", "--out", str(out), "--resume", "--no-progress", "--max-steps", "6"]) == 0
    assert "6 steps" in capsys.readouterr().out and runfiles.read_status(out)["step"] == 6
    # minutes are a total as well
    assert cli.main(["train", "--out", str(out), "--resume", "--no-progress", "--max-steps", "100",
                     "--minutes", "0.0001"]) == 2
    assert "already used its 0.0001 minutes" in capsys.readouterr().err


def test_job_resume_with_nothing_left_is_refused_not_reported_running(tmp_path, text):
    jobs = JobManager(tmp_path / "runs", max_concurrent=1)
    job_id = jobs.start("bytenet", text, max_steps=4, overrides={**TINY, "samples": False})
    _wait(lambda: jobs.get(job_id).state == "finished")
    with pytest.raises(JobError, match="already reached max steps 4 .*a total"):
        jobs.resume(job_id)
    with pytest.raises(JobError, match="already trained its 0.0001 minutes"):
        jobs.resume(job_id, minutes=0.0001, max_steps=10)
    assert jobs.get(job_id).state == "finished"
    assert jobs.resume(job_id, max_steps=6).state in ("queued", "running")
    _wait(lambda: jobs.get(job_id).state == "finished")
    assert jobs.get(job_id).step == 6


def test_max_jobs_setting_gives_that_many_slots(tmp_path, text, monkeypatch):
    monkeypatch.setenv("PLAYGROUND_MAX_JOBS", "2")
    jobs = JobManager(tmp_path / "runs")
    assert jobs.max_concurrent == 2
    ids = [jobs.start("bytenet", text, max_steps=100000, overrides={**TINY, "samples": False}) for _ in range(3)]
    try:
        states = [jobs.get(i).state for i in ids]
        assert states == ["running", "running", "queued"], states
    finally:
        for i in ids:
            jobs.cancel(i, grace_s=20)
    monkeypatch.delenv("PLAYGROUND_MAX_JOBS")
    assert JobManager(tmp_path / "runs").max_concurrent == 1 and JobManager(tmp_path / "r", 3).max_concurrent == 3
    for bad in ("0", "-1", "x"):
        with pytest.raises(ValueError, match="PLAYGROUND_MAX_JOBS"):
            max_jobs_setting({"PLAYGROUND_MAX_JOBS": bad})
