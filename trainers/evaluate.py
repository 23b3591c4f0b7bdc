"""Held-out evaluation in nats and bits per token, during training and for any saved checkpoint."""
from __future__ import annotations

import math
import os
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import torch

from engine.checkpoint import load_model, read_meta
from engine.protocol import AutoregressiveModel

from .data import DataError, SequenceDataset, load_dataset
from .losses import next_token_loss


@dataclass
class EvalResult:
    nats: float  # mean cross-entropy per scored token
    tokens: int

    @property
    def bits(self) -> float:
        return self.nats / math.log(2)


@torch.no_grad()
def evaluate(model: AutoregressiveModel, data: SequenceDataset, split: str = "val", seq_len: int = 1024,
             batch_size: int = 16, max_tokens: int | None = None, device: torch.device | str | None = None,
             autocast: torch.autocast | None = None) -> EvalResult:
    """Score every target of `split` once (up to `max_tokens`), each with a full receptive field of context."""
    device = device or model.device
    was_training = model.training
    model.eval()
    context = (model.receptive_field - 1) if model.receptive_field else 0
    nats, count = 0.0, 0
    for batch in data.eval_batches(split, batch_size, seq_len, context, max_tokens):
        batch = batch.to(device)
        with autocast if autocast is not None else nullcontext():
            out = next_token_loss(model, batch, None, regularized=False)  # the cross-entropy alone
        nats += float(out.nats_sum)
        count += int(out.count)
    model.train(was_training)
    if count == 0:
        raise DataError(f"the {split} split has no token to score")
    return EvalResult(nats / count, count)


def evaluate_checkpoint(model_path: str | os.PathLike, data_path: str | os.PathLike, split: str = "val",
                        max_tokens: int | None = None, seq_len: int | None = None, batch_size: int = 16,
                        device: str = "cpu", trailing_silence: float | None = None) -> EvalResult:
    """Load a checkpoint and score the held-out split of `data_path`, read the way its training run read it."""
    meta = read_meta(model_path)
    model = load_model(model_path, device=device)
    training = meta.get("training", {}) or {}
    if model.family == "pipeline":  # scored as its vocoder (given true frames): read the data as the vocoder did
        training = training.get("vocoder") or training
    data = load_dataset(data_path, model.tokens, training.get("data_kind", "auto"), training.get("split", "auto"),
                        training.get("labels", "none"), training.get("val_fraction", 0.1),
                        training.get("trailing_silence", 0.0) if trailing_silence is None else trailing_silence,
                        features=model.frame_features, frame_margin=model.frame_context)
    if data.label_names and training.get("label_names") and data.label_names != training["label_names"]:
        raise DataError(f"{Path(data_path).name} has labels {data.label_names}, the model was trained on "
                        f"{training['label_names']}")
    if split not in data.sequences:
        raise DataError(f"the data has no {split!r} split; it has {', '.join(map(repr, data.sequences))}")
    if data.labels and not getattr(model.config, "global_cond_classes", 0):
        data.labels = None
    return evaluate(model, data, split, seq_len or training.get("seq_len", 1024), batch_size, max_tokens, device)
