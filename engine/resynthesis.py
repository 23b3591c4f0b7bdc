"""Copy-synthesis: a vocoder (a model conditioned on feature frames) re-speaks a clip from the clip's own frames.

The frames are made by the model's own front end (`model.frame_features`, stored in its checkpoint), so they
are the frames it was trained on; the samples come from the ordinary streaming generator (`engine.generate`,
fast path included), one clip-length of samples from silence.  The CLI (`python -m engine --resynth CLIP`) and the
app both call `resynthesize`.
"""
from __future__ import annotations

from collections.abc import Iterator

import torch

from .errors import UserError
from .features import LogMel
from .generation import generate
from .protocol import AutoregressiveModel, Conditioning

SILENT = 1e-3  # a clip whose peak stays below this has nothing to re-speak


def clip_frames(model: AutoregressiveModel, wave: torch.Tensor) -> torch.Tensor:
    """The model's conditioning frames [1, C, F] of a mono clip [T] at the model's rate, checked."""
    features = model.frame_features
    if features is None:
        raise UserError(f"this {model.family} model is not a vocoder (it is not conditioned on frames); "
                        "copy-synthesis needs one")
    wave = torch.as_tensor(wave, dtype=torch.float32).reshape(-1)
    if wave.numel() == 0:
        raise UserError("the clip is empty: nothing to re-speak")
    if float(wave.abs().max()) < SILENT:
        raise UserError("the clip is silent: nothing to re-speak")
    return LogMel(features)(wave)


def resynthesize(model: AutoregressiveModel, wave: torch.Tensor, temperature: float = 1.0,
                 top_k: int | None = None, top_p: float | None = None, seed: int | None = None,
                 chunk_size: int = 1024, backend: str = "auto") -> Iterator[torch.Tensor]:
    """Stream the vocoder's rendering of `wave` (mono float [T] at the model's sample rate): chunks of ids [1, n],
    T ids in all, the same clip length."""
    frames = clip_frames(model, wave)
    yield from generate(model, None, max_new_tokens=int(torch.as_tensor(wave).numel()), temperature=temperature,
                        top_k=top_k, top_p=top_p, cond=Conditioning(frames=frames), seed=seed,
                        chunk_size=chunk_size, batch_size=1, backend=backend)
