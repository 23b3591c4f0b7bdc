"""The Train tab's handlers as plain functions over `trainers.jobs.JobManager`.

Uploads are checked (count, size, type; zips unpacked safely: no paths outside the folder, only audio members,
a cap on the unpacked size) and staged under PLAYGROUND_HOME/uploads/, then a background job is started.  The tab
polls `job_view` for the status, progress, loss curve and log; the run's best checkpoint is an ordinary model
folder under the runs root, so the Generate picker lists it as soon as it is written.
"""
from __future__ import annotations

import html
import os
import re
import shutil
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import engine
from engine.paths import playground_home
from trainers.presets import get_preset, presets as list_presets
from trainers.jobs import Job, JobError, JobManager

from .errors import UserError
from .limits import Limits

AUDIO_EXT = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif", ".au")
TEXT_EXT = (".txt", ".tsv", ".text", ".csv", ".md")
DATA_KINDS = {  # label in the UI -> trainers' data_kind
    "Detect from the files": "auto",
    "Text (one document)": "text",
    "Names list (one per line)": "names",
    "Pairs (TSV: source<TAB>target)": "pairs",
    "Audio (files or a zip)": "audio",
}
MAX_FILES = 2000
MAX_UNZIPPED_FACTOR = 10  # a zip may unpack to at most this many times the upload cap


@dataclass
class JobView:
    status: str  # markdown
    fraction: float  # 0..1 for the progress bar
    metrics: list[dict] = field(default_factory=list)  # {"step", "loss", "split"}
    log: str = ""
    state: str = ""


# ---- choices ------------------------------------------------------------------------------------------------
def families() -> list[str]:
    """Families that have presets, so a user can train them without knowing their hyperparameters."""
    return sorted({p.family for p in list_presets()})


def preset_choices(family: str | None) -> list[tuple[str, str]]:
    out = []
    for p in list_presets(family) if family else []:
        out.append((f"{p.name}: {p.description}" if p.description else p.name, p.name))
    return out


def family_kind(family: str, preset: str) -> str:
    """'audio' or 'text': what the family's preset model eats (built once, small presets build in milliseconds)."""
    p = get_preset(family, preset)
    return engine.build_model(family, **p.model).tokens.kind


# ---- staging uploads ----------------------------------------------------------------------------------------
def _path_of(f) -> Path:
    """gr.File gives str paths (or objects with .name in older Gradio)."""
    return Path(f if isinstance(f, (str, os.PathLike)) else getattr(f, "name", str(f)))


def _safe_name(name: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).name).lstrip(".")
    return name or "file"


def _unique(folder: Path, name: str) -> Path:
    target, n = folder / name, 1
    while target.exists():
        n += 1
        target = folder / f"{Path(name).stem}-{n}{Path(name).suffix}"
    return target


def _unzip_audio(zpath: Path, folder: Path, budget: int, warn: Callable[[str], None]) -> int:
    """Extract the audio members of a zip, flattened into `folder`; returns bytes written."""
    try:
        zf = zipfile.ZipFile(zpath)
    except (zipfile.BadZipFile, OSError) as e:
        raise UserError(f"{zpath.name} is not a readable zip file ({e}).") from None
    written, skipped = 0, 0
    with zf:
        members = [m for m in zf.infolist() if not m.is_dir()]
        if len(members) > MAX_FILES:
            raise UserError(f"{zpath.name} holds {len(members)} files; the limit is {MAX_FILES}.")
        for m in members:
            base = Path(m.filename).name
            if Path(base).suffix.lower() not in AUDIO_EXT or base.startswith(".") or "__MACOSX" in m.filename:
                skipped += 1
                continue
            if written + m.file_size > budget:
                raise UserError(f"{zpath.name} unpacks to more than {budget / 2**20:.0f} MB; upload less audio.")
            target = _unique(folder, _safe_name(base))
            with zf.open(m) as src, open(target, "wb") as dst:  # name flattened: no path from the zip is used
                copied = 0
                while chunk := src.read(1 << 20):
                    copied += len(chunk)
                    if written + copied > budget:  # the header lied about the size
                        raise UserError(f"{zpath.name} unpacks to more than {budget / 2**20:.0f} MB.")
                    dst.write(chunk)
            written += copied
    if skipped:
        warn(f"{zpath.name}: {skipped} file(s) that are not audio were skipped.")
    return written


def stage_upload(files: Sequence | None, kind_label: str, limits: Limits, warn: Callable[[str], None],
                 root: Path | None = None) -> tuple[Path, str]:
    """Copy the uploads into a fresh folder; returns (the data path for trainers, data_kind)."""
    paths = [_path_of(f) for f in (files or []) if f]
    if not paths:
        raise UserError("Upload some data first: a text file, a names list, or audio files / a zip of audio.")
    if len(paths) > MAX_FILES:
        raise UserError(f"{len(paths)} files uploaded; the limit is {MAX_FILES}.")
    kind = DATA_KINDS.get(kind_label or "Detect from the files")
    if kind is None:
        raise UserError(f"Unknown data type {kind_label!r}.")
    cap = limits.max_upload_mb * 2**20
    for p in paths:
        if not p.is_file():
            raise UserError(f"Upload {p.name} is missing on the server; upload it again.")
        size = p.stat().st_size
        if size == 0:
            raise UserError(f"{p.name} is empty.")
        if size > cap:
            raise UserError(f"{p.name} is {size / 2**20:.1f} MB; the limit is {limits.max_upload_mb} MB per file.")
    suffixes = {p.suffix.lower() for p in paths}
    audio_like = suffixes <= set(AUDIO_EXT) | {".zip"}
    if kind == "auto":
        kind = "audio" if audio_like else "auto"
    folder = (root or playground_home() / "uploads") / time.strftime("%Y%m%d-%H%M%S")
    folder = _unique(folder.parent, folder.name)
    folder.mkdir(parents=True)
    if kind == "audio":
        if not audio_like:
            shutil.rmtree(folder, ignore_errors=True)
            bad = sorted(suffixes - set(AUDIO_EXT) - {".zip"})
            raise UserError(f"Audio training takes audio files ({', '.join(AUDIO_EXT)}) or a zip of them, "
                            f"not {', '.join(bad)}.")
        budget = cap * MAX_UNZIPPED_FACTOR
        used = 0
        try:
            for p in paths:
                if p.suffix.lower() == ".zip":
                    used += _unzip_audio(p, folder, budget - used, warn)
                else:
                    shutil.copyfile(p, _unique(folder, _safe_name(p.name)))
                    used += p.stat().st_size
        except UserError:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        if not any(folder.iterdir()):
            shutil.rmtree(folder, ignore_errors=True)
            raise UserError("No audio files found in the upload.")
        return folder, "audio"
    if len(paths) != 1:
        shutil.rmtree(folder, ignore_errors=True)
        raise UserError("Text training takes exactly one file (a text, a names list, or a TSV of pairs).")
    src = paths[0]
    if src.suffix.lower() == ".zip" or src.suffix.lower() in AUDIO_EXT:
        shutil.rmtree(folder, ignore_errors=True)
        raise UserError(f"{src.name} is not a text file; pick 'Audio' as the data type for audio.")
    raw = src.read_bytes()
    if b"\x00" in raw[:4096]:
        shutil.rmtree(folder, ignore_errors=True)
        raise UserError(f"{src.name} looks like a binary file, not text.")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        warn(f"{src.name} is not valid UTF-8; the model learns its raw bytes as they are.")
    suffix = ".tsv" if kind == "pairs" or src.suffix.lower() == ".tsv" else ".txt"
    target = folder / (_safe_name(src.stem) + suffix)
    shutil.copyfile(src, target)
    return target, kind


# ---- jobs ---------------------------------------------------------------------------------------------------
def active_jobs(manager: JobManager) -> list[Job]:
    return [j for j in manager.list() if j.state in ("queued", "running")]


def start_job(manager: JobManager, files, kind_label: str, family: str, preset: str, minutes, max_steps,
              name: str | None, limits: Limits, warn: Callable[[str], None] = lambda _m: None,
              root: Path | None = None) -> str:
    """Validate, stage the data, and start a background training job; returns its id."""
    if family not in families():
        raise UserError(f"Pick a model family ({', '.join(families())}).")
    if preset not in [v for _, v in preset_choices(family)]:
        raise UserError(f"Pick a preset for {family}.")
    try:
        minutes = float(minutes) if minutes not in (None, "") else None
    except (TypeError, ValueError):
        raise UserError(f"Minutes must be a number, got {minutes!r}") from None
    if minutes is not None and not 0 < minutes <= limits.train_max_minutes:
        raise UserError(f"Minutes must be more than 0 and at most {limits.train_max_minutes:g}.")
    try:
        steps = int(max_steps) if max_steps not in (None, "", 0) else None
    except (TypeError, ValueError, OverflowError):
        raise UserError(f"Max steps must be a whole number, got {max_steps!r}") from None
    if steps is not None and not 1 <= steps <= 10**7:
        raise UserError("Max steps must be from 1 to 10,000,000 (or empty for the preset's).")
    busy = active_jobs(manager)
    if len(busy) >= limits.max_jobs:
        raise UserError(f"{len(busy)} training job(s) already running or queued (the limit is {limits.max_jobs}); "
                        "stop one or wait for it to finish.")
    data, kind = stage_upload(files, kind_label, limits, warn, root)
    model_kind = family_kind(family, preset)
    if kind == "audio" and model_kind != "audio":
        raise UserError(f"{family} is a text model; pick an audio family (such as wavenet) for audio data.")
    if kind != "audio" and model_kind == "audio" and kind != "auto":
        raise UserError(f"{family} is an audio model; pick a text family for text data.")
    overrides = {} if kind in ("auto", "audio") else {"data_kind": kind}
    name = (name or "").strip()[:60] or None
    try:
        return manager.start(family, data, preset=preset, minutes=minutes, max_steps=steps, name=name,
                             overrides=overrides)
    except UserError as e:  # JobError is one; a job's other failures are bugs with a traceback
        raise UserError(str(e)) from None


def _fmt_eta(seconds) -> str:
    if not isinstance(seconds, (int, float)) or seconds <= 0:
        return ""
    return f"{seconds / 60:.1f} min" if seconds >= 90 else f"{seconds:.0f} s"


def jobs_table(manager: JobManager) -> list[list]:
    """Rows for the job table: id, name, family, state, step, held-out loss, ETA."""
    rows = []
    for j in manager.list():
        step = f"{j.step}/{j.total}" if j.total else str(j.step)
        loss = f"{j.val_loss:.3f}" if isinstance(j.val_loss, (int, float)) else ""
        rows.append([j.id, j.name, j.family, j.state, step, loss, _fmt_eta(j.eta_s)])
    return rows


def job_ids(manager: JobManager) -> list[str]:
    return [j.id for j in manager.list()]


def job_view(manager: JobManager, job_id: str | None) -> JobView:
    """Everything the tab shows about one job: status line, progress, loss curve points, log tail."""
    if not job_id:
        return JobView("No job selected. Upload data and press **Start training**.", 0.0)
    try:
        j = manager.get(job_id)
        metrics = manager.metrics(job_id)
        log = manager.log(job_id, max_chars=4000)
    except JobError as e:
        return JobView(html.escape(str(e)), 0.0)
    fraction = min(1.0, j.step / j.total) if j.total else 0.0
    if j.state == "finished":
        fraction = 1.0
    parts = [f"**{html.escape(j.name)}** ({j.family}): **{j.state}**",
             f"step {j.step}" + (f" of {j.total}" if j.total else "")]
    if isinstance(j.val_loss, (int, float)):
        parts.append(f"best held-out loss {j.val_loss:.3f} nats/token"
                     + (f" ({j.val_bits:.3f} bits)" if isinstance(j.val_bits, (int, float)) else ""))
    if j.eta_s and j.state == "running":
        parts.append(f"about {_fmt_eta(j.eta_s)} left")
    if j.best is not None:
        parts.append("its best checkpoint is in the Generate tab's model list")
    if j.error:
        parts.append(f"error: {html.escape(str(j.error))}")
    points = [{"step": int(m["step"]), "loss": float(m["loss"]), "split": "validation" if m.get("split") == "val"
               else "train"} for m in metrics if "step" in m and isinstance(m.get("loss"), (int, float))]
    return JobView(" · ".join(parts), fraction, points, log, j.state)


def progress_html(fraction: float, label: str = "") -> str:
    pct = max(0.0, min(1.0, float(fraction))) * 100
    return (f'<div style="border:1px solid #ccc;border-radius:6px;height:18px;width:100%;overflow:hidden" '
            f'title="{pct:.0f}%"><div style="height:100%;width:{pct:.1f}%;background:#f97316"></div></div>'
            f'<div style="font-size:0.85em">{pct:.0f}% {html.escape(label)}</div>')


def cancel_job(manager: JobManager, job_id: str | None) -> Job:
    if not job_id:
        raise UserError("Pick a job to stop.")
    try:
        return manager.cancel(job_id, grace_s=5.0)
    except JobError as e:
        raise UserError(str(e)) from None


def resume_job(manager: JobManager, job_id: str | None, minutes, limits: Limits) -> Job:
    if not job_id:
        raise UserError("Pick a job to resume.")
    if len(active_jobs(manager)) >= limits.max_jobs:
        raise UserError(f"The limit of {limits.max_jobs} running or queued job(s) is reached; stop one first.")
    try:
        m = float(minutes) if minutes not in (None, "") else None
    except (TypeError, ValueError):
        raise UserError(f"Minutes must be a number, got {minutes!r}") from None
    if m is not None and not 0 < m <= limits.train_max_minutes:
        raise UserError(f"Minutes must be more than 0 and at most {limits.train_max_minutes:g}.")
    try:
        return manager.resume(job_id, minutes=m)
    except JobError as e:
        raise UserError(str(e)) from None
