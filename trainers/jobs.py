"""Background training jobs: each run is its own OS process and its own folder, so jobs survive the app.

    from trainers.jobs import JobManager
    jobs = JobManager()                       # root = engine.paths.runs_dir(); max_concurrent = $PLAYGROUND_MAX_JOBS or 1
    job_id = jobs.start("wavenet", "clips/", preset="small", minutes=10, max_steps=None, name="my voice",
                        overrides={"labels": "prefix"})   # -> "20261123-101500-my-voice"; queued or running
    jobs.list()            # [Job, ...] newest first, rebuilt from the run folders every call
    jobs.get(job_id)       # Job(id, name, state, step, total, eta_s, error, val_loss, best, ...)
    jobs.metrics(job_id)   # [{"step", "split": "train"|"val", "loss", "bits", ...}, ...] from metrics.jsonl
    jobs.log(job_id)       # the tail of train.log
    jobs.cancel(job_id)    # SIGTERM to the process and its children (psutil), SIGKILL after a grace period
    jobs.resume(job_id, minutes=20)  # a failed/cancelled/finished job continues from its last/ checkpoint
                                     # (minutes and max_steps are totals, resumes included: 20 = a 20-minute run)

A job folder (ROOT/<job id>/) holds job.json (what to run), plus everything trainers.runfiles lists:
status.json, metrics.jsonl, train.log, best/ (the model, `engine.load_model` reads it) and last/.
The job table is nothing but these folders, so a restarted app sees every job again.  A job whose process died
without saying so (killed, out of memory, machine restart) is shown as failed with the reason, and can be resumed.
At most `max_concurrent` jobs run at once (default: the PLAYGROUND_MAX_JOBS setting, else 1); the others wait as "queued" and are started by the next call to
`list`, `get`, `start`, `cancel` or `resume` after a slot frees up (the app polls `list` to refresh its table).
Scheduling is guarded by a file lock, so two managers on one root do not start the same job twice, and each run
folder has one owner at a time (trainers.runlock): a job whose folder another trainer holds is not resumed.
"""
from __future__ import annotations

import fcntl
import os
import re
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from engine.errors import UserError
from engine.paths import REPO_ROOT, runs_dir

from . import runfiles, runlock
from .state import STATE_FILE, find_last

JOB_FILE = "job.json"
TERMINAL = ("finished", "failed", "cancelled")
JOB_NICENESS = 10  # background training runs below the app (see _lower_priority)
MAX_JOBS_ENV = "PLAYGROUND_MAX_JOBS"  # the app's setting (app/limits.py) for jobs running at once


def max_jobs_setting(env: dict | None = None) -> int:
    """PLAYGROUND_MAX_JOBS as a whole number of job slots (1 when unset)."""
    raw = (os.environ if env is None else env).get(MAX_JOBS_ENV)
    if raw is None or str(raw).strip() == "":
        return 1
    try:
        number = float(raw)
    except ValueError:
        number = float("nan")
    if not number >= 1:
        raise UserError(f"{MAX_JOBS_ENV} must be a positive number, got {raw!r}")
    return int(number)


class JobError(UserError):
    """A job request that cannot be done (unknown id, nothing to resume); one line for the user."""


@dataclass
class Job:
    id: str
    dir: Path
    name: str
    family: str
    state: str  # queued | running | finished | failed | cancelled
    step: int = 0
    total: int | None = None
    eta_s: float | None = None
    error: str | None = None
    val_loss: float | None = None  # best held-out nats/token so far
    val_bits: float | None = None
    created: float = 0.0
    pid: int | None = None
    spec: dict = field(default_factory=dict)
    elapsed_s: float | None = None  # training seconds so far, resumes included
    minutes: float | None = None  # the time budget: a total, resumes included (None: max steps only)

    @property
    def best(self) -> Path | None:
        """The best checkpoint so far (an engine checkpoint folder), if one was written."""
        p = self.dir / runfiles.BEST
        return p if (p / "config.json").is_file() else None

    @property
    def resumable(self) -> bool:
        return self.state in TERMINAL and find_last(self.dir / runfiles.LAST) is not None


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "run"


class JobManager:
    def __init__(self, root: str | os.PathLike | None = None, max_concurrent: int | None = None,
                 python: str = sys.executable):
        self.root = Path(root) if root is not None else runs_dir()
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_concurrent = max(1, int(max_jobs_setting() if max_concurrent is None else max_concurrent))
        self.python = python
        self._procs: dict[str, subprocess.Popen] = {}  # children started by this manager (reaped on refresh)

    # ---- public API -------------------------------------------------------------------------------------
    def start(self, family: str, data_path: str | os.PathLike, preset: str = "small", minutes: float | None = None,
              max_steps: int | None = None, name: str | None = None, overrides: dict[str, Any] | None = None) -> str:
        """Queue a training run; it starts at once if a slot is free.  Returns the job id."""
        data = Path(data_path)
        if not data.exists():
            raise JobError(f"data not found: {data}")
        with self._lock():
            job_id = self._new_id(name or f"{family}-{data.stem}")
            folder = self.root / job_id
            folder.mkdir(parents=True)
            spec = {"id": job_id, "name": name or job_id, "family": family, "data": str(data.resolve()),
                    "preset": preset, "minutes": minutes, "max_steps": max_steps,
                    "overrides": dict(overrides or {}), "resume": False, "created": time.time()}
            runfiles.write_json(folder / JOB_FILE, spec)
            runfiles.update_status(folder, state="queued", step=0, total=max_steps, family=family, error=None)
        self._schedule()
        return job_id

    def list(self) -> list[Job]:
        self._schedule()
        return sorted((self._job(p) for p in self._folders()), key=lambda j: j.created, reverse=True)

    def get(self, job_id: str) -> Job:
        self._schedule()
        return self._job(self._folder(job_id))

    def metrics(self, job_id: str) -> list[dict]:
        return runfiles.read_metrics(self._folder(job_id))

    def log(self, job_id: str, max_chars: int = 20000) -> str:
        p = self._folder(job_id) / runfiles.LOG_FILE
        if not p.is_file():
            return ""
        with open(p, "rb") as fh:
            fh.seek(max(0, p.stat().st_size - max_chars))
            return fh.read().decode("utf-8", errors="replace")

    def cancel(self, job_id: str, grace_s: float = 10.0) -> Job:
        """Stop a queued or running job: SIGTERM to its process tree, SIGKILL to whatever is left after grace_s."""
        folder = self._folder(job_id)
        with self._lock():
            status = runfiles.read_status(folder)
            if status.get("state") == "queued":
                runfiles.update_status(folder, state="cancelled", error=None)
            elif status.get("state") == "running":
                proc = self._process(status)
                if proc is not None:
                    _stop_tree(proc, grace_s)
                popen = self._procs.pop(job_id, None)
                if popen is not None:
                    popen.poll()
                runfiles.update_status(folder, state="cancelled", eta_s=0, error=None, pid=None)
        return self.get(job_id)

    def resume(self, job_id: str, minutes: float | None = None, max_steps: int | None = None) -> Job:
        """Queue a stopped job to continue from its last/ checkpoint (new budgets optional)."""
        folder = self._folder(job_id)
        job = self.get(job_id)
        if job.state in ("running", "queued"):
            raise JobError(f"job {job_id} is already {job.state}")
        pid = runlock.owner(folder)
        if pid is not None:
            raise JobError(f"job {job_id} is already running" + (f" (training process pid {pid})" if pid else ""))
        last = find_last(folder / runfiles.LAST)
        if last is None or not (folder / runfiles.RUN_FILE).is_file():
            raise JobError(f"job {job_id} has no checkpoint to resume from (it stopped before its first save)")
        with self._lock():
            spec = runfiles.read_json(folder / JOB_FILE, {})
            run = runfiles.read_json(folder / runfiles.RUN_FILE, {}) or {}
            total_steps = max_steps if max_steps is not None else spec.get("max_steps") or run.get("max_steps")
            total_minutes = minutes if minutes is not None else (spec.get("minutes") if spec.get("minutes")
                                                                 is not None else run.get("minutes"))
            _check_budget_left(job_id, runfiles.read_json(last / STATE_FILE, {}) or {}, total_steps, total_minutes)
            spec.update(resume=True, resumed=time.time())
            if minutes is not None:
                spec["minutes"] = minutes
            if max_steps is not None:
                spec["max_steps"] = max_steps
            runfiles.write_json(folder / JOB_FILE, spec)
            runfiles.update_status(folder, state="queued", error=None, pid=None)
        self._schedule()
        return self.get(job_id)

    # ---- internals --------------------------------------------------------------------------------------
    def _folders(self) -> list[Path]:
        return [p for p in self.root.iterdir() if p.is_dir() and (p / JOB_FILE).is_file()]

    def _folder(self, job_id: str) -> Path:
        if not job_id or "/" in job_id or job_id.startswith("."):
            raise JobError(f"bad job id {job_id!r}")
        p = self.root / job_id
        if not (p / JOB_FILE).is_file():
            raise JobError(f"no job {job_id!r} under {self.root}")
        return p

    def _new_id(self, name: str) -> str:
        base = f"{time.strftime('%Y%m%d-%H%M%S')}-{_slug(name)}"
        job_id, n = base, 1
        while (self.root / job_id).exists():
            n += 1
            job_id = f"{base}-{n}"
        return job_id

    @contextmanager
    def _lock(self):
        with open(self.root / ".jobs.lock", "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def _job(self, folder: Path) -> Job:
        spec = runfiles.read_json(folder / JOB_FILE, {}) or {}
        s = runfiles.read_status(folder)
        return Job(id=folder.name, dir=folder, name=spec.get("name", folder.name), family=spec.get("family", "?"),
                   state=s.get("state", "failed"), step=s.get("step", 0) or 0, total=s.get("total"),
                   eta_s=s.get("eta_s"), error=s.get("error"), val_loss=s.get("val_loss"),
                   val_bits=s.get("val_bits"), created=spec.get("created", 0.0), pid=s.get("pid"), spec=spec,
                   elapsed_s=s.get("elapsed_s"), minutes=s.get("minutes", spec.get("minutes")))

    def _process(self, status: dict) -> psutil.Process | None:
        """The job's live process, or None; a recycled pid (other start time) does not count."""
        pid = status.get("pid")
        if not pid:
            return None
        try:
            proc = psutil.Process(pid)
            if status.get("pid_created") and abs(proc.create_time() - status["pid_created"]) > 1.0:
                return None
            if proc.status() == psutil.STATUS_ZOMBIE:
                return None
            return proc
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return None

    def _refresh(self, folder: Path) -> str:
        """Bring a running job's status in line with its process; returns the state."""
        status = runfiles.read_status(folder)
        if status.get("state") != "running":
            return status.get("state", "failed")
        if self._process(status) is not None:
            return "running"
        popen = self._procs.get(folder.name)
        code = None
        if popen is not None:
            try:  # a killed multi-threaded process shows as a zombie a moment before waitpid can reap it
                code = popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                code = None
        status = runfiles.read_status(folder)  # it may have written its final state just before exiting
        if status.get("state") != "running":
            self._procs.pop(folder.name, None)
            return status.get("state")
        if code is not None and code < 0:
            reason = f"the training process was killed by {signal.Signals(-code).name}"
        elif code is not None:
            reason = f"the training process exited with status {code}"
        else:
            reason = "the training process is gone (killed, crashed, or the machine restarted)"
        last_error = _last_error_line(folder / runfiles.LOG_FILE)
        runfiles.update_status(folder, state="failed", pid=None, eta_s=None,
                               error=reason + (f": {last_error}" if last_error else "") + "; it can be resumed"
                               if find_last(folder / runfiles.LAST) else reason + (f": {last_error}" if last_error else ""))
        self._procs.pop(folder.name, None)
        return "failed"

    def _schedule(self) -> None:
        with self._lock():
            folders = self._folders()
            states = {f: self._refresh(f) for f in folders}
            running = sum(s == "running" for s in states.values())
            queued = sorted((f for f, s in states.items() if s == "queued"),
                            key=lambda f: (runfiles.read_json(f / JOB_FILE, {}) or {}).get("created", 0))
            free = [f for f in queued if runlock.owner(f) is None]  # another trainer holds it: it waits
            for folder in free[: max(0, self.max_concurrent - running)]:
                self._spawn(folder)

    def _spawn(self, folder: Path) -> None:
        spec = runfiles.read_json(folder / JOB_FILE, {})
        cmd = [self.python, "-m", "trainers", "train", "--out", str(folder), "--no-progress"]
        if spec.get("resume"):
            cmd.append("--resume")
        else:
            cmd += ["--family", spec["family"], "--data", spec["data"], "--preset", spec.get("preset") or "small"]
            for key, value in (spec.get("overrides") or {}).items():
                cmd += ["--set", f"{key}={value}"]
        if spec.get("minutes") is not None:
            cmd += ["--minutes", str(spec["minutes"])]
        if spec.get("max_steps") is not None:
            cmd += ["--max-steps", str(spec["max_steps"])]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p)
        env.setdefault("PYTHONUNBUFFERED", "1")
        with open(folder / runfiles.LOG_FILE, "ab") as log:
            log.write(f"\n$ {' '.join(cmd)}\n".encode())
            log.flush()
            popen = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     cwd=str(REPO_ROOT), env=env, start_new_session=True)
        self._procs[folder.name] = popen
        _lower_priority(popen.pid)
        try:
            created = psutil.Process(popen.pid).create_time()
        except psutil.NoSuchProcess:
            created = None
        runfiles.update_status(folder, state="running", pid=popen.pid, pid_created=created, error=None,
                               started=time.time())


def _check_budget_left(job_id: str, state: dict, max_steps, minutes) -> None:
    """Max steps and minutes are totals, resumes included: a resume must leave something to do."""
    step, elapsed = state.get("step", 0) or 0, state.get("elapsed_s", 0.0) or 0.0
    if max_steps is not None and step >= int(max_steps):
        raise JobError(f"job {job_id} already reached max steps {int(max_steps)} (a total, resumes included); "
                       f"give a larger max steps to continue")
    if minutes and elapsed >= float(minutes) * 60:
        raise JobError(f"job {job_id} already trained its {float(minutes):g} minutes ({elapsed / 60:.1f} min; "
                       f"minutes are a total, resumes included); give more minutes to continue")


def _lower_priority(pid: int) -> None:
    """Background training yields the CPU to live generation (the product): a job runs JOB_NICENESS steps
    nicer than the app (below-normal priority on Windows); the threads and processes it starts inherit it."""
    try:
        proc = psutil.Process(pid)
        proc.nice(psutil.BELOW_NORMAL_PRIORITY_CLASS if os.name == "nt" else min(19, proc.nice() + JOB_NICENESS))
    except (psutil.Error, OSError):  # gone already, or not permitted: it runs at normal priority
        pass


def _stop_tree(proc: psutil.Process, grace_s: float) -> None:
    try:
        procs = [proc] + proc.children(recursive=True)
    except psutil.NoSuchProcess:
        return
    for p in procs:
        try:
            p.terminate()
        except psutil.NoSuchProcess:
            pass
    _, alive = psutil.wait_procs(procs, timeout=grace_s)
    for p in alive:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=5)


def _last_error_line(log: Path) -> str | None:
    if not log.is_file():
        return None
    with open(log, "rb") as fh:
        fh.seek(max(0, log.stat().st_size - 4000))
        lines = fh.read().decode("utf-8", errors="replace").splitlines()
    for line in reversed(lines):
        if line.startswith("error:"):
            return line[len("error:"):].strip()
    return None
