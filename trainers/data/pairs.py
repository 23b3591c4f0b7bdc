"""Parallel pairs for seq2seq: a TSV file of `source<TAB>target` lines, as byte ids.

Only the dataset lives here; the trainer conditions the model on `cond=model.encode(Batch.src, Batch.src_mask)`
(trainers/losses.py).  Targets are framed as [start id] target [end id].
"""
from __future__ import annotations

import logging
import random
from pathlib import Path

import torch

from engine.text import NEWLINE

from .base import DataError, SequenceDataset
from .text import read_text_bytes

log = logging.getLogger("trainers.data")


def tsv_pairs(path: str | Path, start_id: int = NEWLINE, end_id: int = NEWLINE,
              val_fraction: float = 0.1) -> SequenceDataset:
    """Pairs shuffled with a fixed seed (42) and split (1 - val_fraction) / val_fraction."""
    p = Path(path)
    lines = read_text_bytes(p).decode("utf-8", errors="replace").splitlines()
    pairs, bad = [], 0
    for line in lines:
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) < 2 or not parts[0] or not parts[1]:
            bad += 1
            continue
        pairs.append((parts[0], parts[1]))
    if bad:
        log.warning("%s: skipped %d line(s) without a source<TAB>target pair", p.name, bad)
    if len(pairs) < 2:
        raise DataError(f"{p.name} has {len(pairs)} usable source<TAB>target line(s); need at least 2")
    random.Random(42).shuffle(pairs)
    n_val = max(1, int(round(len(pairs) * val_fraction)))
    splits = {"train": pairs[:-n_val], "val": pairs[-n_val:]}
    seqs = {k: [torch.tensor([start_id, *t.encode("utf-8"), end_id]) for _, t in v] for k, v in splits.items()}
    srcs = {k: [torch.tensor(list(s.encode("utf-8"))) for s, _ in v] for k, v in splits.items()}
    return SequenceDataset(seqs, sources=srcs, kind="text", weighting="uniform",
                           description=f"pairs {p.name}")
