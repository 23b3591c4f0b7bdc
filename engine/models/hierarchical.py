"""The hierarchical pair-fusion character model of makemore part 5 ("building a WaveNet"), scored in parallel.

ids -> embedding -> levels x [fuse each pair of neighbours (concatenate) -> Linear -> LayerNorm -> tanh] -> Linear
-> logits.  makemore fuses non-overlapping pairs of a fixed window, so one forward pass makes one prediction.  Here
level l fuses the pair (t - 2^l, t) at *every* offset t: a causal convolution with kernel 2 and dilation 2^l, whose
weight is exactly makemore's Linear(2 * width, width').  The output at t then sees exactly the last 2^levels ids,
the same tree makemore builds for that window, so `forward` scores every position of a sequence in one pass and
generation keeps one Fast WaveNet queue per level (engine.layers.conv_queue): O(levels) per byte instead of recomputing
the window.

The start: a sequence is read as if preceded by 2^levels - 1 copies of `start_id` (a newline), so `forward` on
"\nemma\n" scores every character with the context full of newlines, exactly as makemore pads names with '.'.
`init_state` primes that history, so stepping from a fresh state, `prime` and `forward` agree.

Alphabet: byte ids in and logits out, but with `alphabet=[...]` (engine.alphabet) the embedding and the head
keep rows only for those bytes: a names model over a-z and the newline then spends its parameters on the levels
rather than on 229 bytes it never sees.

Normalization: LayerNorm (default) is per position, so stepping equals `forward` in train and eval mode alike.
BatchNorm (makemore's choice) is available; in eval mode it uses its running statistics, a fixed affine map, so
the model stays causal and the protocol invariant holds; in train mode it normalizes over batch and time, which
only the training loss uses.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..alphabet import Alphabet, check_symbols
from ..errors import UserError
from ..layers.conv_queue import CausalConv1d
from ..protocol import AutoregressiveModel, TokenSpec
from ..registry import register_family
from ..text import NEWLINE

NORMS = ("layernorm", "batchnorm", "none")


@dataclass
class HierarchicalConfig:
    vocab_size: int = 256  # UTF-8 bytes; 128 makes an ASCII-only model (fewer parameters in the embedding and head)
    alphabet: list[int] | None = None  # the bytes it knows (engine.alphabet): rows/outputs for those only; None = all
    n_embd: int = 24
    levels: int = 3  # context = 2 ** levels ids
    widths: list[int] = field(default_factory=lambda: [128])  # one per level; a single value is used for every level
    norm: str = "layernorm"  # "layernorm", "batchnorm" (makemore) or "none"
    dropout: float = 0.0  # after each level's tanh, training only
    embed_dropout: float = 0.0  # on the character embeddings, training only
    start_id: int = NEWLINE  # names are separated (and prompted) by newlines
    eos_id: int | None = None  # set (to the newline) for one item per generated row, e.g. one name

    def __post_init__(self) -> None:
        if isinstance(self.widths, int):
            self.widths = [self.widths]
        self.widths = [int(w) for w in self.widths]
        if len(self.widths) == 1:
            self.widths = self.widths * self.levels
        if self.levels < 1 or len(self.widths) != self.levels or min(self.widths) < 1:
            raise UserError(f"need levels >= 1 and one positive width per level, got levels={self.levels}, "
                             f"widths={self.widths}")
        if self.norm not in NORMS:
            raise UserError(f"norm must be one of {NORMS}, got {self.norm!r}")
        if not 2 <= self.vocab_size <= 256 or self.n_embd < 1 or not 0 <= self.start_id < self.vocab_size:
            raise UserError("vocab_size must be in 2..256 (byte ids), n_embd positive, start_id inside the vocab")
        if self.eos_id is not None and not 0 <= self.eos_id < self.vocab_size:
            raise UserError(f"eos_id must be inside the vocab, got {self.eos_id}")
        if not (0.0 <= self.dropout < 1.0 and 0.0 <= self.embed_dropout < 1.0):
            raise UserError(f"dropout and embed_dropout must be in [0, 1), got {self.dropout}, {self.embed_dropout}")
        self.alphabet = check_symbols(self.alphabet, self.vocab_size, self.start_id, self.eos_id)


@dataclass
class HierarchicalState:
    queues: list[torch.Tensor]  # per level [B, in_width, 2^level]: that level's last 2^level inputs
    t: int = 0  # ids consumed so far (the ring-buffer clock)


class FuseLevel(nn.Module):
    """Fuse (t - d, t) -> Linear -> norm -> tanh, as one kernel-2 causal conv with dilation d."""

    def __init__(self, cfg: HierarchicalConfig, in_width: int, width: int, dilation: int):
        super().__init__()
        self.conv = CausalConv1d(in_width, width, 2, dilation, bias=cfg.norm != "batchnorm")
        if cfg.norm == "layernorm":
            self.norm = nn.LayerNorm(width)
        elif cfg.norm == "batchnorm":
            self.norm = nn.BatchNorm1d(width)
        else:
            self.norm = nn.Identity()
        self.drop = nn.Dropout(cfg.dropout)

    def activate(self, z: torch.Tensor) -> torch.Tensor:  # [B, W, T] -> [B, W, T]
        if isinstance(self.norm, nn.LayerNorm):
            z = self.norm(z.transpose(1, 2)).transpose(1, 2)
        else:
            z = self.norm(z)
        return self.drop(torch.tanh(z))


class Hierarchical(AutoregressiveModel):
    def __init__(self, config: HierarchicalConfig):
        super().__init__()
        self.config = cfg = config
        self.alphabet = Alphabet(cfg.alphabet, cfg.vocab_size)
        self.embed = nn.Embedding(self.alphabet.size, cfg.n_embd)
        self.embed_drop = nn.Dropout(cfg.embed_dropout)
        ins = [cfg.n_embd] + cfg.widths[:-1]
        self.levels = nn.ModuleList(FuseLevel(cfg, i, w, 2 ** l) for l, (i, w) in enumerate(zip(ins, cfg.widths)))
        self.head = nn.Linear(cfg.widths[-1], self.alphabet.size)

    @property
    def receptive_field(self) -> int:
        return 2 ** self.config.levels

    @property
    def tokens(self) -> TokenSpec:
        return TokenSpec("text", self.config.vocab_size, start_id=self.config.start_id, eos_id=self.config.eos_id,
                         symbols=self.config.alphabet)

    def _check(self, x: torch.Tensor, cond) -> None:
        if cond is not None:
            raise UserError("the hierarchical model takes no conditioning; pass cond=None")
        if x.numel() and (x.min() < 0 or x.max() >= self.config.vocab_size):
            raise UserError(f"ids must be in 0..{self.config.vocab_size - 1}")

    def _with_history(self, x: torch.Tensor) -> torch.Tensor:
        pad = torch.full((x.shape[0], self.receptive_field - 1), self.config.start_id, dtype=x.dtype, device=x.device)
        return torch.cat([pad, x], dim=1)

    def forward(self, x: torch.Tensor, cond=None) -> torch.Tensor:
        self._check(x, cond)
        h = self.embed_drop(self.embed(self.alphabet.index(self._with_history(x)))).transpose(1, 2)  # [B, E, R-1+T]
        for level in self.levels:
            h = level.activate(level.conv(h))
        return self.alphabet.expand(self.head(h[:, :, self.receptive_field - 1:].transpose(1, 2)))

    def init_state(self, batch_size: int, cond=None, device=None) -> HierarchicalState:
        if cond is not None:
            raise UserError("the hierarchical model takes no conditioning; pass cond=None")
        device = torch.device(device) if device is not None else self.device
        state = HierarchicalState([level.conv.new_queue(batch_size, device) for level in self.levels], 0)
        history = torch.full((batch_size, self.receptive_field - 1), self.config.start_id, dtype=torch.long,
                             device=device)
        return self._prime(history, state)[1] if history.shape[1] else state

    def step(self, x_t: torch.Tensor, state: HierarchicalState) -> tuple[torch.Tensor, HierarchicalState]:
        self._check(x_t, None)
        h = self.embed(self.alphabet.index(x_t))  # [B, E]
        for i, level in enumerate(self.levels):
            z = level.conv.step(h, state.queues[i], state.t)
            h = level.activate(z.unsqueeze(-1))[:, :, 0]
        state.t += 1
        return self.alphabet.expand(self.head(h)), state

    def prime(self, x: torch.Tensor, state: HierarchicalState) -> tuple[torch.Tensor, HierarchicalState]:
        """The prompt in one parallel pass; each level's queue is refilled from that level's input sequence."""
        if x.shape[1] == 0:
            raise ValueError("prime needs at least one token")
        self._check(x, None)
        return self._prime(x, state)

    def _prime(self, x: torch.Tensor, state: HierarchicalState) -> tuple[torch.Tensor, HierarchicalState]:
        h = self.embed(self.alphabet.index(x)).transpose(1, 2)
        for i, level in enumerate(self.levels):
            z, state.queues[i] = level.conv.prime(h, state.queues[i], state.t)
            h = level.activate(z)
        state.t += x.shape[1]
        return self.alphabet.expand(self.head(h[:, :, -1])), state


register_family("hierarchical", HierarchicalConfig, Hierarchical)
