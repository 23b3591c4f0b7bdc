"""Datasets for the trainer: text corpus, names list, TSV pairs, audio folder (see each module).

`load_dataset(path, tokens, kind="auto", ...)` picks the reader: a folder is an audio folder, `.tsv` is pairs,
a `.txt` whose lines are short single words (a names list) is names, any other file a text corpus.
"""
from __future__ import annotations

from pathlib import Path

import torch

from engine.alphabet import describe
from engine.features import LogMelConfig
from engine.protocol import TokenSpec
from engine.text import NEWLINE

from .audio import LABEL_RULES, SPLIT_RULES, audio_folder
from .base import Batch, DataError, SequenceDataset, StreamSampler
from .pairs import tsv_pairs
from .text import names_list, read_lines, text_corpus

KINDS = ("auto", "text", "names", "pairs", "audio")

__all__ = ["Batch", "DataError", "SequenceDataset", "StreamSampler", "load_dataset", "detect_kind",
           "text_corpus", "names_list", "tsv_pairs", "audio_folder", "fit_alphabet", "KINDS", "SPLIT_RULES",
           "LABEL_RULES"]


def detect_kind(path: str | Path) -> str:
    p = Path(path)
    if not p.exists():
        raise DataError(f"data not found: {p}")
    if p.is_dir():
        return "audio"
    if p.suffix.lower() == ".tsv":
        return "pairs"
    lines = read_lines(p)
    if len(lines) >= 10 and all(len(w) <= 40 and " " not in w for w in lines[:2000]):
        return "names"
    return "text"


def load_dataset(path: str | Path, tokens: TokenSpec, kind: str = "auto", split: str = "auto",
                 labels: str = "none", val_fraction: float = 0.1, trailing_silence: float = 0.0,
                 features: LogMelConfig | None = None, frame_margin: int = 0) -> SequenceDataset:
    """Read `path` as the kind of data `tokens` (the model's TokenSpec) expects; with `features` (a locally
    conditioned model's front end), audio sequences come with their frames (trainers/data/audio.py)."""
    if kind not in KINDS:
        raise DataError(f"data kind must be one of {', '.join(KINDS)}, got {kind!r}")
    kind = detect_kind(path) if kind == "auto" else kind
    if features is not None and kind != "audio":
        raise DataError(f"{Path(path).name} is {kind} data, but this model is conditioned on audio frames: "
                        "give it a folder of audio")
    if kind == "audio" and tokens.kind != "audio":
        raise DataError(f"{Path(path).name} is an audio folder but this model family takes {tokens.kind}")
    if kind != "audio" and tokens.vocab_size < 256:  # bytes fit any model with 256+ ids (WaveNet on text too)
        raise DataError(f"{Path(path).name} is text (byte ids 0-255) but this model has only "
                        f"{tokens.vocab_size} ids")
    end_id = tokens.eos_id if tokens.eos_id is not None else NEWLINE
    if kind == "audio":
        return audio_folder(path, tokens.sample_rate, tokens.vocab_size, tokens.quantization or "mulaw",
                            tokens.start_id, split, labels, val_fraction, trailing_silence, features=features,
                            frame_margin=frame_margin, preemphasis=tokens.preemphasis)
    if labels != "none":
        raise DataError(f"labels={labels!r} applies to audio folders only")
    if kind == "pairs":
        data = tsv_pairs(path, tokens.start_id, end_id, val_fraction)
    elif kind == "names":
        data = names_list(path, end_id)
    else:
        data = text_corpus(path, val_fraction)
    return fit_alphabet(data, tokens)


def fit_alphabet(data: SequenceDataset, tokens: TokenSpec) -> SequenceDataset:
    """For a model with an alphabet (engine.alphabet): refuse text it cannot read, pad with a byte it can."""
    if tokens.symbols is None:
        return data
    known = set(tokens.symbols)
    seqs = [s for split in data.sequences.values() for s in split] + \
           [s for split in (data.sources or {}).values() for s in split]
    unknown = sorted(set(torch.unique(torch.cat(seqs)).tolist()) - known)
    if unknown:
        raise DataError(f"{data.description}: {len(unknown)} byte value(s) (e.g. {unknown[:5]}) are outside this "
                        f"model's alphabet ({describe(tokens.symbols)})")
    if data.pad_id not in known:
        data.pad_id = tokens.start_id  # padding is never scored, but the model must be able to read it
    return data
