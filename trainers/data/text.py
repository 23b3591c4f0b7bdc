"""Text datasets as UTF-8 byte ids: a corpus split like nanoGPT, a names list split like makemore."""
from __future__ import annotations

import random
from pathlib import Path

import torch

from engine.text import NEWLINE

from .base import DataError, SequenceDataset

MAX_TEXT_BYTES = 512 * 1024 * 1024


def read_text_bytes(path: str | Path) -> bytes:
    """The file's bytes, refusing a missing, empty or binary file with a one-line reason."""
    p = Path(path)
    if not p.is_file():
        raise DataError(f"text file not found: {p}")
    size = p.stat().st_size
    if size == 0:
        raise DataError(f"text file is empty: {p}")
    if size > MAX_TEXT_BYTES:
        raise DataError(f"text file is too large ({size / 2**20:.0f} MB > {MAX_TEXT_BYTES / 2**20:.0f} MB): {p}")
    data = p.read_bytes()
    if b"\x00" in data[:65536]:
        raise DataError(f"{p.name} looks binary (it has NUL bytes); give a UTF-8 text file")
    return data


def text_corpus(path: str | Path, val_fraction: float = 0.1) -> SequenceDataset:
    """One long byte sequence; the last `val_fraction` is held out (nanoGPT's contiguous split)."""
    data = torch.frombuffer(bytearray(read_text_bytes(path)), dtype=torch.uint8).long()
    n = int(len(data) * (1 - val_fraction))
    if n < 2 or len(data) - n < 2:
        raise DataError(f"{Path(path).name} is too short ({len(data)} bytes) to hold out {val_fraction:.0%} for "
                        "validation")
    return SequenceDataset({"train": [data[:n]], "val": [data[n:]]}, kind="text", weighting="length",
                           description=f"text corpus {Path(path).name}")


def read_lines(path: str | Path) -> list[str]:
    text = read_text_bytes(path).decode("utf-8", errors="replace")
    return [w.strip() for w in text.splitlines() if w.strip()]


def frame(item: bytes, start_id: int = NEWLINE, end_id: int = NEWLINE) -> torch.Tensor:
    """[start] item bytes [end]: what a names model sees, so generation from "\\n" yields one item then "\\n"."""
    return torch.tensor([start_id, *item, end_id], dtype=torch.long)


def names_list(path: str | Path, end_id: int = NEWLINE) -> SequenceDataset:
    """One short item per line, makemore's split: random.seed(42), shuffle, 80 % train, 10 % val, 10 % test."""
    words = read_lines(path)
    if len(words) < 3:
        raise DataError(f"{Path(path).name} has {len(words)} non-empty line(s); a names list needs at least 3 "
                        "(80/10/10 split)")
    random.seed(42)  # makemore's exact split, kept bit-for-bit comparable
    random.shuffle(words)
    n1, n2 = int(0.8 * len(words)), int(0.9 * len(words))
    split = {"train": words[:n1], "val": words[n1:n2], "test": words[n2:]}
    seqs = {k: [frame(w.encode("utf-8"), NEWLINE, end_id) for w in v] for k, v in split.items()}
    return SequenceDataset(seqs, kind="text", weighting="uniform", description=f"names list {Path(path).name}")
