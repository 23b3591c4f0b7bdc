"""Gain augmentation for audio training: some training windows played quieter, samples and frames alike.

Why: a music track's held-out tail is where it fades out, and four tracks hold few quiet passages, so a vocoder
meets frames there that it hardly saw in training and mis-reads them; measured per second of the held-out tails, the
frame-conditioned WaveNet was better than its unconditioned twin while the music played and far worse in the
fades (docs/BENCHMARKS.md, "Music pipeline").  Attenuating random windows by a random number of dB shows it every
loudness it can be given.

Only attenuation (gain <= 1), because then the frames change exactly, with no new audio needed: a feature value is
`log(max(P, floor) / floor) / log(1 / floor)` (engine/features.py), and P scales by g^2, so it becomes
`max(v + 2 ln g / ln(1 / floor), 0)` (a power at or under the floor stays there).  The samples are dequantized,
scaled and quantized again, so the targets are the quantized quieter signal.
"""
from __future__ import annotations

import math

import torch

from engine.audio import dequantize, quantize
from engine.features import LogMelConfig

from .data.base import Batch


def attenuate(batch: Batch, lowest_db: float, n_classes: int, quantization: str,
              features: LogMelConfig | None, gen: torch.Generator, share: float = 0.5) -> Batch:
    """`share` of the rows (drawn with `gen`) played at a gain drawn uniformly from `lowest_db` .. 0 dB; the
    others untouched.  Masked (padding) positions are left as they are."""
    if not lowest_db < 0:
        raise ValueError(f"lowest_db must be negative, got {lowest_db}")
    rows = batch.x.shape[0]
    pick = torch.rand(rows, generator=gen) < share
    db = lowest_db * torch.rand(rows, generator=gen)
    if not bool(pick.any()):
        return batch
    gain = torch.where(pick, 10.0 ** (db / 20.0), torch.ones(rows))

    def scale(ids: torch.Tensor) -> torch.Tensor:
        return quantize(dequantize(ids, n_classes, quantization) * gain[:, None].to(torch.float32), n_classes,
                        quantization)

    quieter = pick[:, None]
    batch.x = torch.where(quieter, scale(batch.x), batch.x)
    batch.y = torch.where(quieter & batch.mask, scale(batch.y), batch.y)
    if batch.frames is not None:
        if features is None:
            raise ValueError("a batch with frames needs the feature front end's config to attenuate them")
        shift = (2.0 * torch.log(gain) / math.log(1.0 / features.floor)).to(batch.frames.dtype)
        batch.frames = (batch.frames + shift[:, None, None]).clamp(min=0.0)
    return batch
