"""An audio folder as quantized id sequences, one per file, with a deterministic held-out split and labels.

Files (wav/flac/ogg/mp3/aiff, any rate and channel count) are read with `engine.audio.read_audio` (soundfile),
resampled to the model's rate and quantized as its config says (`engine.audio.quantize`, after pre-emphasis when
the model has it).  Every sequence starts with the model's start id (silence), the token generation starts from.

Held-out split, chosen so that it never changes when files are added:
- "fsdd": the Free Spoken Digit Dataset rule, files `{digit}_{speaker}_{index}.wav` with index 0-4 held out;
- "fraction": a file is held out when crc32 of its relative path falls in the lowest `val_fraction`;
- "tail": every file is cut in two, its last `val_fraction` held out (music: each track's ending is unseen);
- "auto": "fsdd" when every file matches the FSDD pattern, else "fraction".
Labels (global conditioning): "prefix" = the file name up to the first "_" (the digit in FSDD), "folder" = the
parent folder's name, "none".  Label names are sorted, so FSDD digits map to class ids 0-9.
With `features` (a vocoder's engine.features.LogMelConfig) every sequence also gets its log-mel frames, made from
the waveform itself (before quantization) with the appended silence, on the timeline of the samples its positions
predict; `frame_margin` is how many frames a batch carries beyond each side of a window.
"""
from __future__ import annotations

import logging
import re
import zlib
from pathlib import Path

import torch

from engine.audio import AUDIO_SUFFIXES, AudioError, emphasize, quantize, read_audio
from engine.features import LogMel, LogMelConfig

from .base import DataError, SequenceDataset

log = logging.getLogger("trainers.data")
FSDD_NAME = re.compile(r"^(\d)_([A-Za-z]+)_(\d+)\.wav$")
SPLIT_RULES = ("auto", "fsdd", "fraction", "tail")
LABEL_RULES = ("none", "prefix", "folder")


def audio_files(folder: str | Path) -> list[Path]:
    root = Path(folder)
    if not root.is_dir():
        raise DataError(f"audio folder not found: {root}")
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES
                  and not any(part.startswith(".") for part in p.relative_to(root).parts))


def is_held_out(rel: Path, rule: str, val_fraction: float) -> bool:
    if rule == "fsdd":
        m = FSDD_NAME.match(rel.name)
        return bool(m) and int(m.group(3)) < 5
    return zlib.crc32(rel.as_posix().encode()) % 10_000 < val_fraction * 10_000


def label_of(rel: Path, rule: str) -> str | None:
    if rule == "prefix":
        return rel.name.split("_", 1)[0] if "_" in rel.name else None
    if rule == "folder":
        return rel.parent.name if rel.parent != Path(".") else None
    return None


def speed_rate(sample_rate: int, speed: float) -> int:
    """The rate to resample to so that a clip read back at `sample_rate` plays `speed` times faster: to the
    nearest 100 Hz, because a band-limited resampler's cost grows with rate / gcd(rates) (8000 -> 8889 Hz takes
    3.7 s per second of audio, 8000 -> 8900 Hz 3 ms); the speed is then sample_rate / that rate (0.899, not 0.9)."""
    if speed == 1.0:
        return sample_rate
    return max(100, round(sample_rate / speed / 100) * 100)


def audio_folder(folder: str | Path, sample_rate: int, n_classes: int = 256, quantization: str = "mulaw",
                 start_id: int | None = None, split: str = "auto", labels: str = "none",
                 val_fraction: float = 0.1, trailing_silence: float = 0.0,
                 max_seconds_per_file: float = 300.0, features: LogMelConfig | None = None,
                 frame_margin: int = 0, offset: int = 0, speed: float = 1.0,
                 preemphasis: float = 0.0) -> SequenceDataset:
    """Read every audio file under `folder`; unreadable ones are skipped with a warning that names them.
    `offset` drops every clip's first samples (token augmentation: the frames of the same clip at another phase).
    `speed` plays every clip about that much faster (resampled to `speed_rate` and read as sample_rate: shorter
    and higher, the speed perturbation of Ko et al., Interspeech 2015), another token augmentation.
    `preemphasis` (the model's TokenSpec.preemphasis) makes the ids of the pre-emphasized waveform
    (engine.audio.emphasize); the frames stay those of the waveform itself."""
    if not 0.5 <= speed <= 2.0:
        raise DataError(f"speed must be from 0.5 to 2, got {speed}")
    if split not in SPLIT_RULES:
        raise DataError(f"split must be one of {', '.join(SPLIT_RULES)}, got {split!r}")
    if labels not in LABEL_RULES:
        raise DataError(f"labels must be one of {', '.join(LABEL_RULES)}, got {labels!r}")
    root = Path(folder)
    files = audio_files(root)
    if not files:
        raise DataError(f"no audio files ({', '.join(AUDIO_SUFFIXES)}) in {root}")
    rels = [f.relative_to(root) for f in files]
    if split == "auto":
        split = "fsdd" if all(FSDD_NAME.match(r.name) for r in rels) else "fraction"
    start = n_classes // 2 if start_id is None else start_id
    silence = int(quantize(torch.zeros(1), n_classes, quantization)[0])
    tail = torch.full((int(trailing_silence * sample_rate),), silence, dtype=torch.long)
    if features is not None and features.sample_rate != sample_rate:
        raise DataError(f"frames at {features.sample_rate} Hz for a model at {sample_rate} Hz")
    mel = LogMel(features) if features is not None else None
    seqs: dict[str, list[torch.Tensor]] = {"train": [], "val": []}
    frames: dict[str, list[torch.Tensor]] = {"train": [], "val": []}
    names: dict[str, list[str | None]] = {"train": [], "val": []}
    skipped: list[str] = []
    for f, rel in zip(files, rels):
        try:
            wave, _ = read_audio(f, speed_rate(sample_rate, speed), max_seconds=max_seconds_per_file)
        except AudioError as e:
            skipped.append(f"{rel} ({e})")
            continue
        wave = torch.from_numpy(wave[offset:])
        if split == "tail":
            cut = int(len(wave) * (1 - val_fraction))
            pieces = [("train", wave[:cut]), ("val", wave[cut:])]
        else:
            pieces = [("val" if is_held_out(rel, split, val_fraction) else "train", wave)]
        for part, piece in pieces:
            ids = quantize(emphasize(piece, preemphasis), n_classes, quantization)
            seqs[part].append(torch.cat([torch.tensor([start]), ids, tail]))
            names[part].append(label_of(rel, labels))
            if mel is not None:  # position p predicts sample p: frames of the samples, silence appended
                frames[part].append(mel(torch.cat([piece, piece.new_zeros(len(tail))]))[0] if len(piece)
                                    else torch.zeros(features.n_mels, 1))
    if skipped:
        log.warning("skipped %d unreadable audio file(s): %s", len(skipped), "; ".join(skipped[:20])
                    + (" ..." if len(skipped) > 20 else ""))
    if not seqs["train"] and not seqs["val"]:
        raise DataError(f"none of the {len(files)} audio file(s) in {root} could be read (first: {skipped[0]})")
    if not seqs["val"] and len(seqs["train"]) >= 2:  # a tiny folder: hold out its last file
        seqs["val"].append(seqs["train"].pop())
        names["val"].append(names["train"].pop())
        if mel is not None:
            frames["val"].append(frames["train"].pop())
    label_ids = None
    label_names: list[str] = []
    if labels != "none":
        found = sorted({n for part in names.values() for n in part if n is not None})
        if not found:
            raise DataError(f"labels={labels!r} found no label in the file names under {root}")
        unlabeled = sum(n is None for part in names.values() for n in part)
        if unlabeled:
            raise DataError(f"labels={labels!r}: {unlabeled} file(s) have no label in their "
                            f"{'name (no _)' if labels == 'prefix' else 'folder'}")
        label_names = found
        label_ids = {k: [found.index(n) for n in v] for k, v in names.items()}
    return SequenceDataset(seqs, labels=label_ids, label_names=label_names, pad_id=start, kind="audio",
                           weighting="length", description=f"audio folder {root.name} ({split} split)",
                           frames=frames if mel is not None else None, frame_hop=features.hop if mel else 0,
                           frame_margin=frame_margin)
