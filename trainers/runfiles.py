"""The files of a run folder, shared by the training process (writer) and the job manager (reader).

RUN_DIR/
  run.json        the TrainConfig (so --resume and jobs rebuild the same run)
  status.json     {"state": queued|running|finished|failed|cancelled, "step", "total" (max steps), "minutes",
                  "elapsed_s" (training seconds), "eta_s", "error", "pid", ...}; total, minutes and elapsed_s
                  count the whole run, resumes included
  metrics.jsonl   one {"step", "split": "train"|"val", "loss" (nats/token), "bits", "lr", "time"} per line
  train.log       the process's stdout and stderr (background jobs)
  best/           engine checkpoint with the lowest held-out loss (engine.load_model reads it)
  last/           resumable checkpoint: engine checkpoint + optimizer.safetensors + trainer_state.json
  samples/        a sample of the model at every evaluation (trainers.samples): step-NNNNNN/ folders of .wav or
                  sample.txt, and index.jsonl, one {"step", "val_loss", "files", "labels", "text", ...} per line
  .lock           held (flock) by the one training process that owns the folder (trainers.runlock)
Every JSON file is written to a temp file and renamed, so a reader never sees half of one; a .jsonl line is
appended in one write and a reader skips an unfinished last line.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

RUN_FILE, STATUS_FILE, METRICS_FILE, LOG_FILE = "run.json", "status.json", "metrics.jsonl", "train.log"
BEST, LAST = "best", "last"
SAMPLES_DIR, SAMPLES_INDEX, LOCK_FILE = "samples", "index.jsonl", ".lock"
STATES = ("queued", "running", "finished", "failed", "cancelled")
ACTIVE = ("queued", "running")


def write_json(path: str | os.PathLike, data: Any) -> None:
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, default=str)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_json(path: str | os.PathLike, default: Any = None) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return default


def read_status(run_dir: str | os.PathLike) -> dict:
    return read_json(Path(run_dir) / STATUS_FILE, {}) or {}


def update_status(run_dir: str | os.PathLike, **fields: Any) -> dict:
    """Merge `fields` into status.json (read, update, atomic write); `updated` is stamped."""
    status = read_status(run_dir)
    status.update(fields, updated=time.time())
    write_json(Path(run_dir) / STATUS_FILE, status)
    return status


def append_metric(run_dir: str | os.PathLike, record: dict) -> None:
    with open(Path(run_dir) / METRICS_FILE, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record) + "\n")


def read_metrics(run_dir: str | os.PathLike) -> list[dict]:
    path = Path(run_dir) / METRICS_FILE
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass  # a line being written right now
    return out


def append_line(path: str | os.PathLike, line: str) -> None:
    """Append one line in a single write (O_APPEND), so concurrent readers see it whole or not at all."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line.rstrip("\n") + "\n").encode("utf-8"))
    finally:
        os.close(fd)


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """The complete JSON lines of a file (a last line without its newline is still being written: skipped)."""
    try:
        raw = Path(path).read_bytes().decode("utf-8", errors="replace")
    except OSError:
        return []
    out = []
    for line in raw.split("\n")[:-1]:
        try:
            rec = json.loads(line)
        except ValueError:
            continue
        if isinstance(rec, dict):
            out.append(rec)
    return out


def read_samples(run_dir: str | os.PathLike, include_skipped: bool = False) -> list[dict]:
    """A run's samples (samples/index.jsonl), oldest first: each {"step", "val_loss", "val_bits", "time",
    "seconds", "files" (relative to the run folder), "labels" (class name per file, or None), "text" (text models),
    "shortened", "skipped"} plus "paths": the absolute Paths of the files that exist.  Evaluations whose sample was
    skipped (budget, or a model not sampled) are left out unless `include_skipped`."""
    run_dir = Path(run_dir)
    out = []
    for rec in read_jsonl(run_dir / SAMPLES_DIR / SAMPLES_INDEX):
        if rec.get("skipped") and not include_skipped:
            continue
        rec["paths"] = [run_dir / f for f in rec.get("files") or [] if (run_dir / f).is_file()]
        out.append(rec)
    return out


def latest_sample(run_dir: str | os.PathLike) -> dict | None:
    """The newest sample that was not skipped, or None."""
    samples = read_samples(run_dir)
    return samples[-1] if samples else None
