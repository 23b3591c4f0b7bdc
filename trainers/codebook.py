"""The frame-token codebook of an audio folder (k-means over the training split's frames), and a pipeline
checkpoint composed of a token LM, a vocoder and their codebook.

    python -m trainers codebook --data CLIPS/ --vocoder VOCODER_CHECKPOINT --size 256 --out CODEBOOK/
    python -m trainers train --family rnn --preset digit-tokens --data CLIPS/ --codebook CODEBOOK/ --out LM_RUN/
    python -m trainers pipeline --lm LM_RUN/best --vocoder VOCODER_CHECKPOINT --codebook CODEBOOK/ --out MODEL/

The frames are made by the vocoder's own front end (its `features`), so the tokens decode to frames that vocoder
can play; only the training split is read (the held-out clips stay unseen by every stage of a pipeline).
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from engine.checkpoint import CONFIG_FILE, load_model, read_meta, save_model
from engine.errors import UserError
from engine.features import LogMelConfig
from engine.frame_tokens import CODEBOOK_META, FrameCodebook, load_codebook, save_codebook
from engine.models.pipeline import Pipeline

from .data.audio import audio_folder
from .train import portable_data_name


def fit_codebook(data: str | os.PathLike, features: LogMelConfig, size: int, split: str = "auto",
                 val_fraction: float = 0.1, seed: int = 0) -> FrameCodebook:
    clips = audio_folder(data, features.sample_rate, split=split, val_fraction=val_fraction, features=features)
    frames = torch.cat([f.T for f in clips.frames["train"]])  # [N, C]
    return FrameCodebook.fit(frames, size, seed=seed)


def codebook_command(data: str, vocoder: str, size: int, out: str, split: str = "auto", seed: int = 0) -> str:
    """The CLI's `codebook`: fit on `data` with `vocoder`'s front end, write the codebook folder `out`."""
    model = load_model(vocoder)
    if model.frame_features is None:
        raise UserError(f"{vocoder} is not a vocoder (no frame features); give the vocoder the tokens are for")
    if size < 2:
        raise UserError(f"--size must be at least 2, got {size}")
    codebook = fit_codebook(data, model.frame_features, size, split, seed=seed)
    save_codebook(codebook, model.frame_features, out, data=portable_data_name(data), split=split, seed=seed,
                  vocoder=os.fspath(vocoder))
    return f"fitted {size} frame tokens on {data} ({split} split) -> {out}"


def _codebook_part(path: str) -> tuple[FrameCodebook, LogMelConfig, dict]:
    """A codebook folder's (codebook, front end, codebook.json), or those of a pipeline checkpoint's codebook."""
    if not (Path(path) / CODEBOOK_META).is_file() and (Path(path) / CONFIG_FILE).is_file() \
            and read_meta(path).get("family") == "pipeline":
        pipe = load_model(path)
        return pipe.codebook, pipe.frame_features, dict(read_meta(path).get("training", {}).get("codebook") or {})
    return load_codebook(path)


def pipeline_command(lm: str, vocoder: str, codebook: str, out: str, half_precision: bool = False,
                     guidance: float = 1.0) -> str:
    """The CLI's `pipeline`: one checkpoint of the three parts, with both parts' training records and credits.
    `vocoder` may be a pipeline checkpoint: its vocoder is the part taken (a new LM beside a shipped vocoder); so
    may `lm`: its token LM is taken (a retrained vocoder beside a shipped LM), each with its own training record,
    and so may `codebook`: its codebook (and token decoder) is taken, with its record.  `guidance` is the
    pipeline's default classifier-free guidance (1 = none; the LM needs a null class)."""
    cb, features, info = _codebook_part(codebook)
    voc = load_model(vocoder)
    voc_training = read_meta(vocoder).get("training") or {}
    if voc.family == "pipeline":  # another pipeline's vocoder: take that part (and its training record)
        voc, voc_training = voc.vocoder, voc_training.get("vocoder") or {}
    if voc.frame_features != features:
        raise UserError(f"the codebook's frames ({features}) are not {vocoder}'s ({voc.frame_features})")
    lm_model = load_model(lm)
    lm_training = read_meta(lm).get("training") or {}
    if lm_model.family == "pipeline":
        lm_model, lm_training = lm_model.lm, lm_training.get("lm") or {}
    model = Pipeline.compose(lm_model, voc, cb, lm_training.get("label_names") or [], guidance=guidance)
    save_model(model, out, half_precision, data=lm_training.get("data"), data_source=lm_training.get("data_source"),
               license=lm_training.get("license"), label_names=lm_training.get("label_names") or [],
               val_loss=lm_training.get("val_loss"), lm=lm_training, vocoder=voc_training,
               codebook={k: v for k, v in info.items() if k != "format"})
    return f"composed {lm} + {vocoder} + {codebook} -> {out}"
