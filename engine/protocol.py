"""The one protocol every generator implements (see docs/DESIGN.md).

Every family is a next-token model over integer ids.  The generator, sampler, checkpoint loader, trainer
and app only ever talk to this interface, so a new family plugs in by subclassing `AutoregressiveModel`
and registering itself with `engine.registry.register_family`.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn


@dataclass
class TokenSpec:
    """How a family's ids map to the outside world: audio samples or UTF-8 bytes."""

    kind: str  # "audio" or "text"
    vocab_size: int
    sample_rate: int | None = None  # audio only
    quantization: str | None = None  # audio only: "mulaw" or "linear"
    preemphasis: float = 0.0  # audio only: ids are of x[n] - preemphasis * x[n-1] (engine.audio.encode_audio)
    start_id: int = 0  # the id fed first when generation has no prompt (silence for audio, "\n" for text)
    eos_id: int | None = None  # text families with an end-of-sequence id
    symbols: list[int] | None = None  # text only: the ids a model with an alphabet knows (engine.alphabet); None = all


@dataclass
class Conditioning:
    """What a model hears besides its own past, when that is more than a class id.

    `cond` may always be plain class ids (`LongTensor[B]`, or one id for every row); a model with local
    conditioning takes this instead.  `frames` are feature frames on a timeline of samples (frame f describes
    samples f*hop .. (f+1)*hop - 1; engine/features.py makes them, and outside the given frames the timeline is
    silence, all zeros); `first_sample` is the timeline sample that each row's position 0 predicts: 0 when a
    clip is generated from its start, a window's offset when training cuts one from the middle of a clip.
    """

    classes: torch.Tensor | None = None  # LongTensor [B] global class ids, or None
    frames: torch.Tensor | None = None  # [B, C, F] feature frames (a batch of 1 is shared by every row), or None
    first_sample: torch.Tensor | int = 0  # LongTensor [B] or one int


def split_conditioning(cond: Any) -> tuple[Any, Conditioning | None]:
    """(class ids or None, the frames part or None) of whatever a caller passed as `cond`."""
    if isinstance(cond, Conditioning):
        return cond.classes, cond if cond.frames is not None else None
    return cond, None


@dataclass
class TrainingOutput:
    """What `AutoregressiveModel.training_forward` hands the trainer, which scores it (trainers.losses).

    The trainer computes the masked next-token cross-entropy itself, once for every family, and decides which
    positions count (real targets with a full receptive field of context); a family only says what differs.
    """

    logits: torch.Tensor  # [B, T, V] teacher-forced: logits[:, t] predicts the token after x[:, t]
    rows: slice = field(default_factory=lambda: slice(None))  # rows whose targets count (sub-batch norm's
    # auxiliary rows are left out; the default, all)
    penalties: dict[str, torch.Tensor] = field(default_factory=dict)  # regularizers by name, already weighted,
    # in nats per counted target (added to the mean cross-entropy; logged apart); training mode only
    state: Any = None  # stateful families (`training_stateful`): the state after this chunk


class AutoregressiveModel(nn.Module):
    """Base class: `forward`, `init_state`, `step`, `prime` as docs/DESIGN.md specifies.

    Subclasses set `family` (the registry name) and `config` (a dataclass), and implement the four methods.
    `prime` defaults to a loop over `step`; convolutional families override it with one parallel pass.
    """

    family: str = ""
    config: Any
    training_stateful: bool = False  # True: trained by truncated BPTT over consecutive chunks (training_forward)

    @property
    def receptive_field(self) -> int | None:
        """Tokens of past context that affect a prediction; None means unbounded (RNNs)."""
        raise NotImplementedError

    @property
    def tokens(self) -> TokenSpec:
        raise NotImplementedError

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def forward(self, x: torch.Tensor, cond: Any = None) -> torch.Tensor:  # [B, T] -> [B, T, V]
        raise NotImplementedError

    def init_state(self, batch_size: int, cond: Any = None, device: torch.device | str | None = None) -> Any:
        raise NotImplementedError

    def step(self, x_t: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:  # [B] -> [B, V]
        raise NotImplementedError

    def prime(self, x: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        """Feed a prompt [B, T]; return the logits after its last token. Default: T calls of `step`."""
        if x.shape[1] == 0:
            raise ValueError("prime needs at least one token")
        logits = None
        for t in range(x.shape[1]):
            logits, state = self.step(x[:, t], state)
        return logits, state

    def training_forward(self, x: torch.Tensor, cond: Any = None, state: Any = None,
                         reset: torch.Tensor | None = None) -> TrainingOutput:
        """The training hook: teacher-forced logits for inputs x [B, T] and what the trainer must know besides.

        Default: `TrainingOutput(self(x, cond))`.  A family overrides it only to leave rows out of the loss
        (`rows`), add regularizers (`penalties`) or carry a state between chunks: with `training_stateful`, the
        trainer passes back the `state` of the previous chunk (detached; None on the first chunk and when
        evaluating) and `reset` [B] (bool), the rows that begin a new sequence in this chunk and must start afresh.
        """
        return TrainingOutput(self(x, cond))

    @property
    def num_classes(self) -> int:
        """Classes the model is conditioned on (`cond` = a class id); 0 when it takes none."""
        return int(getattr(self.config, "global_cond_classes", 0) or 0)

    @property
    def frame_features(self) -> Any:
        """The engine.features.LogMelConfig of a model conditioned on feature frames (a vocoder), else None."""
        return None

    @property
    def frame_context(self) -> int:
        """Frames beyond each side of a window's samples that its conditioning reads (0 without frames)."""
        return 0

    @property
    def decode_options(self) -> dict[str, Any]:
        """Decode-time keywords this family's `init_state` takes, with their defaults ({} for most families)."""
        return {}

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
