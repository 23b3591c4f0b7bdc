"""An audio folder as frame-token sequences, for a token language model (the first stage of a pipeline).

Every clip is read like any audio folder (trainers/data/audio.py: the same split and label rules), turned into
frames by the codebook's own front end, and each frame into the id of its nearest centroid
(engine.frame_tokens.FrameCodebook).  A sequence is `[start, class, tokens..., end]` (engine.frame_tokens.
TokenLayout): the class (the digit, with `labels="prefix"`) is the first token the model reads, so it generates
what the class says without a conditioning mechanism of its own.
"""
from __future__ import annotations

from pathlib import Path

import torch

from engine.features import LogMelConfig
from engine.frame_tokens import FrameCodebook, TokenLayout, load_codebook

from .audio import audio_folder
from .base import DataError, SequenceDataset


def token_sequences(folder: str | Path, codebook: FrameCodebook, features: LogMelConfig, split: str = "auto",
                    labels: str = "none", val_fraction: float = 0.1, shifts: int = 1,
                    class_dropout: float = 0.0, seed: int = 0, speeds: tuple[float, ...] = ()) -> SequenceDataset:
    """With `shifts` > 1 the training split also holds every clip tokenized at `shifts - 1` other frame phases
    (the clip started k * hop / shifts samples later): the same words as other, equally real token sequences, which
    a token LM needs because the clips are few (FSDD has 2,700 training takes) and it overfits them otherwise.
    Held-out sequences stay at phase 0, so held-out figures compare across settings.

    `class_dropout` (with labels): that share of the training sequences, drawn with `seed`, carry the null class
    instead of their own (TokenLayout.null_class), so the LM also learns the unconditioned clips that
    classifier-free guidance contrasts with; held-out sequences keep their class.

    `speeds` (say (0.9, 1.1)): the training split also holds every clip played at each of these speeds
    (audio_folder's `speed`; each at the same `shifts` phases): the same words from slightly other voices."""
    if not 1 <= shifts <= features.hop:
        raise DataError(f"token_shifts must be from 1 to the hop ({features.hop}), got {shifts}")
    if not 0.0 <= class_dropout < 1.0:
        raise DataError(f"class_dropout must be in [0, 1), got {class_dropout}")
    gen = torch.Generator().manual_seed(seed)
    seqs: dict[str, list[torch.Tensor]] = {"train": [], "val": []}
    if any(not 0.5 <= v <= 2.0 or v == 1.0 for v in speeds):
        raise DataError(f"token_speeds must be from 0.5 to 2 and not 1 (the clips themselves), got {list(speeds)}")
    for speed, k in [(1.0, k) for k in range(shifts)] + [(v, k) for v in speeds for k in range(shifts)]:
        clips = audio_folder(folder, features.sample_rate, split=split, labels=labels, val_fraction=val_fraction,
                             features=features, offset=k * features.hop // shifts, speed=speed)
        if class_dropout and not clips.labels:
            raise DataError("class_dropout needs class labels (labels=prefix or folder)")
        layout = TokenLayout(codebook.size, clips.num_labels, null_class=class_dropout > 0)
        for part, frames in clips.frames.items():
            if (k == 0 and speed == 1.0) or part == "train":
                drop = (torch.rand(len(frames), generator=gen) < class_dropout).tolist() if part == "train" \
                    else [False] * len(frames)
                seqs[part] += [layout.sequence(codebook.encode(f), clips.labels[part][i] if clips.labels else None,
                                               null=drop[i]) for i, f in enumerate(frames)]
    return SequenceDataset(seqs, label_names=clips.label_names, pad_id=layout.end_id, kind="tokens",
                           weighting="uniform", description=clips.description.replace("audio folder",
                                                                                       "frame tokens of"))


def decoded_frames(frames: dict[str, list[torch.Tensor]], codebook_folder: str | Path,
                   features: LogMelConfig, share: float = 1.0, seed: int = 0) -> dict[str, list[torch.Tensor]]:
    """Each clip's frames [C, F] replaced by its tokens' decoded frames (the centroids, or the codebook's token
    decoder's frames): what a pipeline's vocoder is given at generation time, so a vocoder trained on these learns
    the frames it will really hear.  With `share` < 1 only that share of the clips, drawn with `seed` in each
    split, is replaced and the rest keep their real frames, so the vocoder keeps copy-synthesis of real frames."""
    if not 0.0 < share <= 1.0:
        raise DataError(f"frames_codebook_share must be in (0, 1], got {share}")
    codebook, book_features, _ = load_codebook(codebook_folder)
    if book_features != features:
        raise DataError(f"the codebook {codebook_folder} reads frames {book_features}, the vocoder makes {features}")
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for part, clips in frames.items():
        chosen = (torch.rand(len(clips), generator=gen) < share).tolist() if share < 1.0 else [True] * len(clips)
        out[part] = [codebook.decode(codebook.encode(f)) if c else f for f, c in zip(clips, chosen)]
    return out
