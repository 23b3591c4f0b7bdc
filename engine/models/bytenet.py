"""ByteNet decoder as a byte language model (Kalchbrenner et al. 2016, "Neural Machine Translation in Linear Time").

ids -> embedding (2d channels) -> residual blocks of masked dilated convs (dilations 1, 2, 4, 8, 16 per set)
-> norm -> ReLU -> 1x1 -> logits over bytes.  Blocks are the ReLU residual block (Fig. 3 left) or the residual
multiplicative block (Fig. 3 right); the norm is layer norm over channels, sub-batch norm, or none.
Decoding keeps one Fast WaveNet queue per dilated conv: `(k-1)*dilation` entries, so a byte costs O(layers).
The seq2seq family reuses the same stack as its target network (engine/models/seq2seq.py).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..errors import UserError
from ..layers.bytenet import BLOCKS, NORMS, ByteNetHead, ByteNetStack, SubBatchNorm
from ..protocol import AutoregressiveModel, TokenSpec, TrainingOutput
from ..registry import register_family
from ..text import BYTE_VOCAB, NEWLINE


@dataclass
class ByteNetConfig:
    vocab_size: int = BYTE_VOCAB
    d: int = 64  # block width; the residual stream has 2d channels
    sets: int = 3  # dilation sets
    set_size: int = 5  # dilations 1, 2, ..., 2^(set_size-1) in each set (5 = up to 16, as in the paper)
    kernel_size: int = 3
    block: str = "residual"  # "residual" (Fig. 3 left) or "multiplicative" (Fig. 3 right)
    norm: str = "layer"  # "layer" (over channels, per position), "subbatch", or "none"
    subbatch_aux_fraction: float = 0.25  # share of a training batch used as the auxiliary sub-batch
    dropout: float = 0.0

    def __post_init__(self) -> None:
        if self.block not in BLOCKS:
            raise UserError(f"block must be one of {BLOCKS}, got {self.block!r}")
        if self.norm not in NORMS:
            raise UserError(f"norm must be one of {NORMS}, got {self.norm!r}")
        if min(self.vocab_size, self.d, self.sets, self.set_size) < 1 or self.kernel_size < 2:
            raise UserError("vocab_size, d, sets, set_size must be positive and kernel_size >= 2")
        if not 0 < self.subbatch_aux_fraction < 1:
            raise UserError(f"subbatch_aux_fraction must be in (0, 1), got {self.subbatch_aux_fraction}")

    @property
    def dilations(self) -> list[int]:
        return [2 ** i for i in range(self.set_size)] * self.sets

    @property
    def receptive_field(self) -> int:
        convs_per_block = 2 if self.block == "multiplicative" else 1
        return 1 + convs_per_block * (self.kernel_size - 1) * sum(self.dilations)


@dataclass
class ByteNetState:
    queues: list[torch.Tensor]  # per dilated conv [B, channels, (k-1)*dilation]
    t: int = 0  # bytes consumed so far (the ring-buffer clock)


class ByteNet(AutoregressiveModel):
    def __init__(self, config: ByteNetConfig):
        super().__init__()
        self.config = cfg = config
        self.embed = nn.Embedding(cfg.vocab_size, 2 * cfg.d)
        self.stack = ByteNetStack(cfg.d, cfg.dilations, cfg.kernel_size, cfg.block, cfg.norm, causal=True,
                                  aux_fraction=cfg.subbatch_aux_fraction, dropout=cfg.dropout)
        self.head = ByteNetHead(cfg.d, cfg.vocab_size, cfg.norm, cfg.subbatch_aux_fraction)

    @property
    def receptive_field(self) -> int:
        return self.config.receptive_field

    @property
    def tokens(self) -> TokenSpec:
        return TokenSpec("text", self.config.vocab_size, start_id=NEWLINE)

    def loss_rows(self, batch_size: int) -> slice:
        """Rows of a training batch whose logits count in the loss: all, except sub-batch norm's auxiliary rows."""
        if self.config.norm == "subbatch" and self.training:
            return slice(0, batch_size - SubBatchNorm.aux_rows(batch_size, self.config.subbatch_aux_fraction))
        return slice(None)

    def training_forward(self, x: torch.Tensor, cond=None, state=None, reset=None) -> TrainingOutput:
        """The default hook, but with sub-batch norm only the main rows count: the auxiliary rows saw their own
        future through the statistics."""
        return TrainingOutput(self(x, cond), rows=self.loss_rows(x.shape[0]))

    def forward(self, x: torch.Tensor, cond=None) -> torch.Tensor:
        if cond is not None:
            raise UserError("the ByteNet LM is unconditioned; pass cond=None (use the seq2seq family for sources)")
        return self.head(self.stack(self.embed(x).transpose(1, 2)))

    def init_state(self, batch_size: int, cond=None, device=None) -> ByteNetState:
        if cond is not None:
            raise UserError("the ByteNet LM is unconditioned; pass cond=None")
        device = torch.device(device) if device is not None else self.device
        return ByteNetState(self.stack.new_queues(batch_size, device), 0)

    def step(self, x_t: torch.Tensor, state: ByteNetState) -> tuple[torch.Tensor, ByteNetState]:
        h = self.stack.step(self.embed(x_t), state.queues, state.t)
        state.t += 1
        return self.head.step(h), state

    def prime(self, x: torch.Tensor, state: ByteNetState) -> tuple[torch.Tensor, ByteNetState]:
        """The prompt in one parallel pass; each conv's queue is refilled from that conv's input sequence."""
        if x.shape[1] == 0:
            raise ValueError("prime needs at least one token")
        h = self.stack.prime(self.embed(x).transpose(1, 2), state.queues, state.t)
        state.t += x.shape[1]
        return self.head(h[:, :, -1:])[:, 0], state


register_family("bytenet", ByteNetConfig, ByteNet)
