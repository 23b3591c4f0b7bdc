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
import tempfile
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import engine
from engine.paths import playground_home
from trainers import runfiles
from trainers.data import detect_kind
from trainers.presets import get_preset, presets as list_presets
from trainers.jobs import Job, JobError, JobManager

try:  # which families train on which data (the trainer refuses a misfit with the same words)
    from trainers.data import kinds
except ImportError:  # an older trainers package: the app's own token-kind check below still applies
    kinds = None

from .errors import UserError
from .limits import Limits

AUDIO_EXT = engine.audio.AUDIO_SUFFIXES  # the one set the trainer reads too
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
    progress: str = ""  # words under the progress bar


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
    audio_files = [p.name for p in paths if p.suffix.lower() in (*AUDIO_EXT, ".zip")]
    if audio_files and not audio_like and len(paths) > 1:
        others = [p.name for p in paths if p.suffix.lower() not in (*AUDIO_EXT, ".zip")]
        raise UserError(f"The upload mixes audio ({', '.join(audio_files[:3])}) with other files "
                        f"({', '.join(others[:3])}): train on one kind of data at a time.")
    if kind == "auto":
        kind = "audio" if audio_like else "auto"
    stamp = (root or playground_home() / "uploads") / time.strftime("%Y%m%d-%H%M%S")
    stamp = _unique(stamp.parent, stamp.name)
    if kind == "audio" or audio_like:
        # the folder's name is the data's name (an unnamed job is called <family>-<data name>): the upload's
        # name for one zip or file, else "audio"
        single = paths[0].stem if len(paths) == 1 else "audio"
        folder = stamp / (_safe_name(single).strip("._-") or "audio")
    else:
        folder = stamp
    folder.mkdir(parents=True)
    if kind == "audio":
        if not audio_like:
            shutil.rmtree(stamp, ignore_errors=True)
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
            shutil.rmtree(stamp, ignore_errors=True)
            raise
        if not any(folder.iterdir()):
            shutil.rmtree(stamp, ignore_errors=True)
            raise UserError("No audio files found in the upload.")
        return folder, "audio"
    if len(paths) != 1:
        shutil.rmtree(stamp, ignore_errors=True)
        raise UserError("Text training takes exactly one file (a text, a names list, or a TSV of pairs).")
    src = paths[0]
    if src.suffix.lower() == ".zip" or src.suffix.lower() in AUDIO_EXT:
        shutil.rmtree(stamp, ignore_errors=True)
        raise UserError(f"{src.name} is not a text file; pick 'Audio' as the data type for audio.")
    raw = src.read_bytes()
    if b"\x00" in raw[:4096]:
        shutil.rmtree(stamp, ignore_errors=True)
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
    if isinstance(max_steps, str):
        max_steps = max_steps.strip().replace(",", "").replace("_", "")
    try:
        steps = int(max_steps) if max_steps not in (None, "", 0, "0") else None
    except (TypeError, ValueError, OverflowError):
        raise UserError(f"Max steps must be a whole number, got {max_steps!r}") from None
    if steps is not None and not 1 <= steps <= 10**7:
        raise UserError("Max steps must be from 1 to 10,000,000 (or empty for the preset's).")
    busy = active_jobs(manager)
    if len(busy) >= limits.max_jobs:
        raise UserError(f"{len(busy)} training job(s) already running or queued (the limit is {limits.max_jobs}); "
                        "stop one or wait for it to finish.")
    data, kind = stage_upload(files, kind_label, limits, warn, root)
    try:
        check_data_fits(family, preset, data, kind)
    except UserError:
        shutil.rmtree(data if data.is_dir() else data.parent, ignore_errors=True)
        raise
    overrides = {} if kind in ("auto", "audio") else {"data_kind": kind}
    name = (name or "").strip()[:60] or None
    try:
        return manager.start(family, data, preset=preset, minutes=minutes, max_steps=steps, name=name,
                             overrides=overrides)
    except UserError as e:  # JobError is one; a job's other failures are bugs with a traceback
        raise UserError(str(e)) from None


def data_kind_of(data: Path, kind: str) -> str:
    """The trainer's kind of the staged data ("audio", "text", "names", "pairs"), detecting it for "auto"."""
    return detect_kind(data) if kind == "auto" else kind


def _fits(family: str, kind: str) -> bool:
    try:
        return kinds.fits(family, kind)
    except (UserError, TypeError, ValueError):  # a family whose default config does not build (e.g. a pipeline)
        return False


def fitting(kind: str) -> list[str]:
    """The families offered in the app (those with presets) that train on this kind of data, the trainer's
    default for the kind first."""
    if kinds is None:
        return [f for f in families() if (family_kind(f, "small") == "audio") == (kind == "audio")]
    first = kinds.DEFAULTS.get(kind)
    return sorted((f for f in families() if _fits(f, kind)), key=lambda f: (f != first, f))


def check_data_fits(family: str, preset: str, data: Path, kind: str) -> None:
    """Refuse data the family cannot train on, before a job starts (the trainer refuses it too, in its words)."""
    detected = data_kind_of(data, kind)
    if kinds is not None:
        if detected not in kinds.DESCRIBE or _fits(family, detected):
            return
        model_kind, rewrites = kinds.family_traits(family)
        what = "an audio" if model_kind == "audio" else ("a sequence-to-sequence" if rewrites else "a text")
        found = fitting(detected)
        hint = ("pick " + (" or ".join(found) if len(found) <= 2 else ", ".join(found[:-1]) + " or " + found[-1])
                if found else "no family here trains on it")
        raise UserError(f"{data.name} is {kinds.DESCRIBE[detected]}, but {family} is {what} family: {hint}.")
    model_kind = family_kind(family, preset)
    if (detected == "audio") != (model_kind == "audio"):
        raise UserError(f"{family} is {'an audio' if model_kind == 'audio' else 'a text'} model; pick "
                        f"{'a text family' if model_kind == 'audio' else 'an audio family (such as wavenet)'} "
                        f"for this data.")


def suggested_family(files, kind_label: str, current: str | None) -> tuple[str | None, str]:
    """The family to offer for the files just uploaded: `current` when it fits the data, else the default family
    for the data's kind; and a note on what was detected ("" when nothing is uploaded or it cannot tell)."""
    paths = [_path_of(f) for f in (files or []) if f]
    kind = DATA_KINDS.get(kind_label or "Detect from the files", "auto")
    if not paths:
        return current, ""
    suffixes = {p.suffix.lower() for p in paths}
    if kind == "auto":
        if suffixes <= set(AUDIO_EXT) | {".zip"}:
            kind = "audio"
        elif len(paths) == 1 and paths[0].is_file():
            try:
                kind = detect_kind(paths[0])
            except (UserError, OSError, UnicodeDecodeError):
                return current, ""
        else:
            return current, ""
    found = fitting(kind)
    if current in found:
        return current, f"Detected {KIND_WORDS.get(kind, kind)}; {current} trains on it."
    if not found:
        return current, f"Detected {KIND_WORDS.get(kind, kind)}; no family here trains on it."
    return found[0], f"Detected {KIND_WORDS.get(kind, kind)}: the model family is set to {found[0]}."


KIND_WORDS = {"audio": "audio", "text": "a text corpus", "names": "a names list", "pairs": "pairs of texts (TSV)"}


def _fmt_eta(seconds) -> str:
    if not isinstance(seconds, (int, float)) or seconds <= 0:
        return ""
    return f"{seconds / 60:.1f} min" if seconds >= 90 else f"{seconds:.0f} s"


TABLE_HEADERS = ["state", "progress", "val loss", "ETA", "name", "family", "job"]  # what changes first: it fits


def _budget_s(j: Job) -> float | None:
    minutes = (j.spec or {}).get("minutes")
    return float(minutes) * 60 if isinstance(minutes, (int, float)) and minutes > 0 else None


def job_progress(j: Job, status: dict | None = None) -> tuple[float, str]:
    """(fraction done, words) for a job: a run ends at its step limit or its time budget, whichever comes first,
    so the bar follows the nearer of the two; a finished run says which one ended it."""
    status = runfiles.read_status(j.dir) if status is None else status
    elapsed = status.get("elapsed_s")
    budget = _budget_s(j)
    by_steps = min(1.0, j.step / j.total) if j.total else 0.0
    by_time = min(1.0, elapsed / budget) if budget and isinstance(elapsed, (int, float)) else 0.0
    steps = f"step {j.step:,}" + (f" of at most {j.total:,}" if j.total else "")
    clock = (f"{elapsed / 60:.1f} of {budget / 60:g} min" if budget and isinstance(elapsed, (int, float))
             else (f"{budget / 60:g} min budget" if budget else ""))
    words = ", ".join(w for w in (steps, clock) if w)
    if j.state == "finished":
        reason = status.get("stop_reason")
        ended = {"minutes": f"its {budget / 60:g}-minute budget ran out" if budget else "its time budget ran out",
                 "max_steps": "it reached its step limit"}.get(reason)
        return 1.0, f"finished at step {j.step:,}" + (f": {ended}" if ended else "")
    return max(by_steps, by_time), words


def jobs_table(manager: JobManager) -> list[list]:
    """Rows for the job table (TABLE_HEADERS): state, progress, held-out loss, ETA first, then name, family, id."""
    rows = []
    for j in manager.list():
        fraction, _ = job_progress(j)
        if j.state == "finished":
            progress = f"{j.step:,} steps"
        elif j.total or _budget_s(j):
            progress = f"{fraction * 100:.0f}% (step {j.step:,})"
        else:
            progress = str(j.step)
        loss = f"{j.val_loss:.3f}" if isinstance(j.val_loss, (int, float)) else ""
        rows.append([j.state, progress, loss, _fmt_eta(j.eta_s) if j.state == "running" else "", j.name, j.family,
                     j.id])
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
    fraction, words = job_progress(j)
    parts = [f"**{html.escape(j.name)}** ({j.family}): **{j.state}**", words]
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
    return JobView(" · ".join(parts), fraction, points, log, j.state, words)


# ---- samples written while training ---------------------------------------------------------------------------
LATEST = "latest"


@dataclass
class SampleView:
    """The samples of one job: the picker's choices (latest first), and the picked sample's text or audio."""

    choices: list[tuple[str, str]] = field(default_factory=list)
    pick: str = LATEST
    key: str = ""  # changes when another sample is shown (so the player is not reloaded every tick)
    caption: str = "No samples yet: the trainer writes one at every evaluation."
    text: str | None = None
    audio: str | None = None  # the first audio file (class 0 of a conditioned model)
    files: list[str] = field(default_factory=list)
    kind: str = ""  # "text", "audio" or "" (none yet)


def _sample_label(rec: dict) -> str:
    loss = rec.get("val_loss")
    label = f"step {rec.get('step', '?'):,}" if isinstance(rec.get("step"), int) else f"step {rec.get('step')}"
    if isinstance(loss, (int, float)):
        label += f" · held-out {loss:.3f} nats"
    return label + (" (shortened)" if rec.get("shortened") else "")


def sample_view(manager: JobManager, job_id: str | None, pick: str | None = LATEST) -> SampleView:
    """The job's samples (trainers.runfiles.read_samples): the picked one ("latest", or a step), with what to
    show for it; an empty view while the job has none."""
    if not job_id:
        return SampleView(caption="No job selected.")
    try:
        folder = manager.get(job_id).dir
    except JobError as e:
        return SampleView(caption=html.escape(str(e)))
    records = [r for r in runfiles.read_samples(folder) if r.get("paths") or r.get("text")]
    if not records:
        return SampleView()
    by_step = {str(r.get("step")): r for r in records}
    choices = [(f"latest ({_sample_label(records[-1])})", LATEST)]
    choices += [(_sample_label(r), str(r.get("step"))) for r in reversed(records)]
    pick = str(pick) if pick is not None and (str(pick) == LATEST or str(pick) in by_step) else LATEST
    rec = records[-1] if pick == LATEST else by_step[pick]
    paths = [str(p) for p in rec.get("paths") or []]
    audio = [p for p in paths if p.lower().endswith(".wav")]
    labels = rec.get("labels") or []
    caption = f"Sample at {_sample_label(rec)}"
    if audio and labels and labels[0] is not None:
        caption += f"; playing class {html.escape(str(labels[0]))}" + (
            f" (all {len(audio)} classes below)" if len(audio) > 1 else "")
    text = rec.get("text")
    kind = "audio" if audio else "text"
    audio = _servable(audio, job_id, str(rec.get("step")))
    return SampleView(choices, pick, f"{job_id}:{rec.get('step')}:{len(paths)}", caption,
                      text if isinstance(text, str) else None, audio[0] if audio else None, audio, kind)


SAMPLE_CACHE = Path(tempfile.gettempdir()) / "autoregressive-playground" / "samples"


def _servable(paths: list[str], job_id: str, step: str) -> list[str]:
    """Copies of a run's sample files under the temp folder, which Gradio serves (it refuses files elsewhere,
    such as PLAYGROUND_HOME); copied once per job and step."""
    out = []
    folder = SAMPLE_CACHE / _safe_name(job_id) / _safe_name(step)
    for p in map(Path, paths):
        target = folder / _safe_name(p.name)
        try:
            if not target.is_file() or target.stat().st_size != p.stat().st_size:
                folder.mkdir(parents=True, exist_ok=True)
                tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
                shutil.copyfile(p, tmp)
                os.replace(tmp, target)
            out.append(str(target))
        except OSError:  # a file removed meanwhile: shown at the next tick if it comes back
            continue
    return out


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
    try:
        job = manager.get(job_id)
    except JobError as e:
        raise UserError(str(e)) from None
    if job.state in ("queued", "running"):  # not "the job limit is reached": this job is the one running
        raise UserError(f"{job.id} is already {job.state}; nothing to resume.")
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
