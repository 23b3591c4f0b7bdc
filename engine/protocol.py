"""The one protocol every generator implements (see docs/DESIGN.md).

Every family is a next-token model over integer ids.  The generator, sampler, checkpoint loader, trainer
and app only ever talk to this interface, so a new family plugs in by subclassing `AutoregressiveModel`
and registering itself with `engine.registry.register_family`.
"""
from __future__ import annotations

from dataclasses import dataclass
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
    start_id: int = 0  # the id fed first when generation has no prompt (silence for audio, "\n" for text)
    eos_id: int | None = None  # text families with an end-of-sequence id
    symbols: list[int] | None = None  # text only: the ids a model with an alphabet knows (engine.alphabet); None = all


class AutoregressiveModel(nn.Module):
    """Base class: `forward`, `init_state`, `step`, `prime` as docs/DESIGN.md specifies.

    Subclasses set `family` (the registry name) and `config` (a dataclass), and implement the four methods.
    `prime` defaults to a loop over `step`; convolutional families override it with one parallel pass.
    """

    family: str = ""
    config: Any

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

    @property
    def decode_options(self) -> dict[str, Any]:
        """Decode-time keywords this family's `init_state` takes, with their defaults ({} for most families)."""
        return {}

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())
