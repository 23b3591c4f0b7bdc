"""The files of a run folder, shared by the training process (writer) and the job manager (reader).

RUN_DIR/
  run.json        the TrainConfig (so --resume and jobs rebuild the same run)
  status.json     {"state": queued|running|finished|failed|cancelled, "step", "total", "eta_s", "error", "pid", ...}
  metrics.jsonl   one {"step", "split": "train"|"val", "loss" (nats/token), "bits", "lr", "time"} per line
  train.log       the process's stdout and stderr (background jobs)
  best/           engine checkpoint with the lowest held-out loss (engine.load_model reads it)
  last/           resumable checkpoint: engine checkpoint + optimizer.safetensors + trainer_state.json
Every JSON file is written to a temp file and renamed, so a reader never sees half of one.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

RUN_FILE, STATUS_FILE, METRICS_FILE, LOG_FILE = "run.json", "status.json", "metrics.jsonl", "train.log"
BEST, LAST = "best", "last"
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
