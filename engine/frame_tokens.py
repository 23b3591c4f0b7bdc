"""Audio tokens: a k-means codebook that turns feature frames into discrete ids and back.

The existing sequence families (RNN, ByteNet, hierarchical) model ids; with this codebook they model audio as a
sequence of frame tokens (a few dozen for a spoken digit), and a frame-conditioned vocoder turns decoded frames
back into samples.  Frames are standardised per channel (the training frames' mean and standard deviation)
before the nearest-centroid search, so no one mel band dominates the distance.  The codebook is a handful of
tensors (`to_tensors` / `from_tensors`) that a checkpoint stores beside the model weights.

A codebook may also carry a learned decoder (engine/layers/token_decoder.py: each centroid plus a correction
read from the neighbouring tokens), which `decode` then uses; a frame then depends on `context` tokens each side.

Fitting uses scikit-learn's KMeans (k-means++ initialisation, a fixed seed: the same frames give the same
codebook); encoding and decoding are plain torch and need no scikit-learn.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .errors import UserError
from .features import LogMelConfig
from .layers.token_decoder import TokenDecoder, TokenDecoderConfig


class CodebookError(UserError):
    """Frames or ids that do not fit a codebook."""


class FrameCodebook:
    def __init__(self, centroids: torch.Tensor, mean: torch.Tensor, std: torch.Tensor,
                 decoder: TokenDecoder | None = None):
        if centroids.dim() != 2 or mean.shape != (centroids.shape[1],) or std.shape != mean.shape:
            raise CodebookError("a codebook needs centroids [K, C] and a mean and std of C values each")
        if decoder is not None and (decoder.size, decoder.out.out_channels) != tuple(centroids.shape):
            raise CodebookError(f"the token decoder reads {decoder.size} tokens of {decoder.out.out_channels} "
                                f"channels; the codebook has {tuple(centroids.shape)}")
        self.centroids, self.mean, self.std = centroids.float(), mean.float(), std.float()
        self.decoder = decoder

    @property
    def context(self) -> int:
        """Tokens each side a decoded frame depends on (0: each token decodes alone, to its centroid)."""
        return 0 if self.decoder is None else self.decoder.context

    @property
    def size(self) -> int:
        return self.centroids.shape[0]

    @property
    def channels(self) -> int:
        return self.centroids.shape[1]

    @classmethod
    def fit(cls, frames: torch.Tensor, size: int, seed: int = 0, max_frames: int = 200_000) -> "FrameCodebook":
        """Learn `size` centroids from frames [N, C] (at most `max_frames` of them, drawn with `seed`)."""
        from sklearn.cluster import KMeans  # training-time only

        frames = torch.as_tensor(frames, dtype=torch.float32)
        if frames.dim() != 2 or frames.shape[0] < size:
            raise CodebookError(f"fitting {size} tokens needs at least {size} frames [N, C], got shape "
                                f"{tuple(frames.shape)}")
        if frames.shape[0] > max_frames:
            pick = torch.randperm(frames.shape[0], generator=torch.Generator().manual_seed(seed))[:max_frames]
            frames = frames[pick.sort().values]
        mean, std = frames.mean(0), frames.std(0).clamp(min=1e-3)
        z = ((frames - mean) / std).numpy().astype(np.float64)
        km = KMeans(n_clusters=size, init="k-means++", n_init=1, random_state=seed, max_iter=100).fit(z)
        return cls(torch.from_numpy(km.cluster_centers_).float(), mean, std)

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        """Frames [B, C, F] (or [C, F]) -> ids [B, F] (or [F]) of the nearest centroids."""
        single = frames.dim() == 2
        frames = frames.unsqueeze(0) if single else frames
        if frames.dim() != 3 or frames.shape[1] != self.channels:
            raise CodebookError(f"this codebook reads frames of {self.channels} channels [B, C, F], got shape "
                                f"{tuple(frames.shape)}")
        z = (frames.transpose(1, 2).float() - self.mean.to(frames.device)) / self.std.to(frames.device)
        ids = torch.cdist(z, self.centroids.to(frames.device).unsqueeze(0).expand(z.shape[0], -1, -1)).argmin(-1)
        return ids[0] if single else ids

    def decode(self, ids: torch.Tensor, lo: int = 0, hi: int | None = None) -> torch.Tensor:
        """A clip's ids [B, F] (or [F]) -> its frames lo .. hi-1 (default all) [B, C, hi - lo] (or [C, ...]), in
        feature units.  With a decoder, frame f reads ids f - context .. f + context, and ids outside 0 .. F-1 are
        outside the clip: to decode while the clip is still being planned, ask only for frames whose right
        context is planned (hi <= F - context)."""
        ids = torch.as_tensor(ids, dtype=torch.long)
        single = ids.dim() == 1
        ids = ids.unsqueeze(0) if single else ids
        if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= self.size):
            raise CodebookError(f"token ids must be in 0..{self.size - 1}")
        hi = ids.shape[-1] if hi is None else hi
        if not 0 <= lo <= hi <= ids.shape[-1]:
            raise CodebookError(f"frames {lo}..{hi} are not in a clip of {ids.shape[-1]} tokens")
        z = self.centroids.to(ids.device)[ids[:, lo:hi]].transpose(1, 2)  # [B, C, n]
        if self.decoder is not None and hi > lo:
            with torch.no_grad():
                z = z + self.decoder(self.decoder.window(ids, lo, hi)).float()
        frames = z * self.std.to(ids.device)[:, None] + self.mean.to(ids.device)[:, None]
        return frames[0] if single else frames.contiguous()

    def to_tensors(self, prefix: str = "codebook.") -> dict[str, torch.Tensor]:
        tensors = {prefix + "centroids": self.centroids, prefix + "mean": self.mean, prefix + "std": self.std}
        if self.decoder is not None:
            tensors.update({f"{prefix}decoder.{k}": v for k, v in self.decoder.state_dict().items()})
        return tensors

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor], prefix: str = "codebook.",
                     decoder: TokenDecoderConfig | None = None) -> "FrameCodebook":
        """`decoder`: the config of the decoder whose weights are among the tensors (None: no decoder)."""
        try:
            centroids = tensors[prefix + "centroids"]
            book = cls(centroids, tensors[prefix + "mean"], tensors[prefix + "std"])
        except KeyError as e:
            raise CodebookError(f"the checkpoint has no codebook tensor {e.args[0]!r}") from None
        if decoder is not None:
            net = TokenDecoder(centroids.shape[0], centroids.shape[1], decoder)
            own = {k[len(prefix + "decoder."):]: v for k, v in tensors.items() if k.startswith(prefix + "decoder.")}
            try:
                net.load_state_dict(own)
            except RuntimeError as e:
                raise CodebookError(f"the codebook's token decoder does not fit its config {decoder}: {e}") from None
            book = cls(book.centroids, book.mean, book.std, net.eval())
        return book


CODEBOOK_FILE, CODEBOOK_META = "codebook.safetensors", "codebook.json"


def save_codebook(codebook: FrameCodebook, features: LogMelConfig, path: str | os.PathLike, **meta) -> Path:
    """A codebook folder: codebook.json (the front end the frames come from, the size, `meta`) and its tensors."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in codebook.to_tensors("").items()}, str(path / CODEBOOK_FILE))
    info = {"format": "autoregressive-playground-codebook", "size": codebook.size, "channels": codebook.channels,
            "features": features.to_dict(), **meta}
    if codebook.decoder is not None:
        info["decoder"] = codebook.decoder.config.to_dict()
    (path / CODEBOOK_META).write_text(json.dumps(info, indent=2, default=str))
    return path


def load_codebook(path: str | os.PathLike) -> tuple[FrameCodebook, LogMelConfig, dict]:
    """(codebook, the front end its frames come from, codebook.json) of a folder save_codebook wrote."""
    path = Path(path)
    try:
        info = json.loads((path / CODEBOOK_META).read_text())
        tensors = load_file(str(path / CODEBOOK_FILE))
    except (OSError, ValueError, SafetensorError) as e:
        raise CodebookError(f"{path} is not a codebook folder ({CODEBOOK_META} + {CODEBOOK_FILE}): {e}") from None
    if info.get("format") != "autoregressive-playground-codebook":
        raise CodebookError(f"{path / CODEBOOK_META} is not a codebook of this program")
    try:
        decoder = TokenDecoderConfig(**info["decoder"]) if info.get("decoder") else None
    except (TypeError, UserError) as e:
        raise CodebookError(f"{path / CODEBOOK_META} names a token decoder this program cannot build: {e}") from None
    return FrameCodebook.from_tensors(tensors, "", decoder), LogMelConfig(**info["features"]), info


@dataclass(frozen=True)
class TokenLayout:
    """The ids a token language model reads: frame tokens 0..size-1, then one prefix id per class (class
    conditioning as a first token, not a new mechanism), then end, then start (fed first, never predicted), then,
    with `null_class`, the "no class" prefix id: an LM trained with some class tokens replaced by it (class
    dropout) also models the unconditioned clips, which classifier-free guidance (engine/models/pipeline.py)
    needs.  The null id comes last so that the other ids are the same with or without it."""

    size: int  # frame tokens (the codebook's size)
    n_classes: int = 0
    null_class: bool = False

    def class_id(self, c: int) -> int:
        if not 0 <= c < self.n_classes:
            raise CodebookError(f"class must be in 0..{self.n_classes - 1}, got {c}")
        return self.size + c

    @property
    def end_id(self) -> int:
        return self.size + self.n_classes

    @property
    def start_id(self) -> int:
        return self.size + self.n_classes + 1

    @property
    def null_id(self) -> int:
        if not self.null_class:
            raise CodebookError("this token layout has no null class (train the LM with class_dropout > 0)")
        return self.size + self.n_classes + 2

    @property
    def vocab_size(self) -> int:
        return self.size + self.n_classes + 2 + int(self.null_class)

    def sequence(self, codes: torch.Tensor, label: int | None = None, null: bool = False) -> torch.Tensor:
        """[start, (class), codes..., end]: one clip as the LM is trained on it; `null` puts the null class in
        the class's place."""
        head = [self.start_id] + ([self.null_id if null else self.class_id(label)] if label is not None else [])
        return torch.cat([torch.tensor(head), codes.long(), torch.tensor([self.end_id])])
