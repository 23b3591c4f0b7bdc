"""Sequence to sequence over bytes: any encoder with any decoder, behind the one generator protocol.

Encoders (`encode(src)` -> `Encoded`, passed as `cond`):
- `bytenet`: the ByteNet source network, the same residual blocks with unmasked (centred) dilated convs;
- `rnn`: an RNN stack over the source bytes.
Decoders:
- `bytenet`: the ByteNet target network stacked on the source with *dynamic unfolding*: the source
  representation is padded/cut to |t̂| = ceil(a·|s| + b) columns and the decoder input at step t is the target
  embedding plus (a projection of) source column t, zero past |t̂| or past the source;
- `rnn`: an RNN whose output at each step attends (additive or dot) over the encoder outputs; the output layer
  sees tanh(W [h_t; context_t]).  No input feeding, so training runs the decoder RNN over the whole target at once.
Ids: bytes 0-255, end of sequence 256, start 257 (fed first).  In eval mode every decoder's logits are forced to
EOS from position |t̂| + margin on, so generation ends there at the latest ("|t̂| + margin"); training never
sees the cap.  Beam search over these models lives in engine/beam.py.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UserError
from ..layers.attention import ATTENTIONS, Attention
from ..layers.bytenet import BLOCKS, NORMS, ByteNetHead, ByteNetStack, SubBatchNorm
from ..layers.rnn_cells import CELLS, State
from ..layers.rnn_stack import AveragingState, RNNStack
from ..generation import evaluating
from ..protocol import AutoregressiveModel, TokenSpec, TrainingOutput
from ..registry import register_family
from ..text import BYTE_VOCAB
from .bytenet import ByteNetState

EOS_ID = BYTE_VOCAB  # 256
BOS_ID = BYTE_VOCAB + 1  # 257
VOCAB = BYTE_VOCAB + 2
SIDES = ("bytenet", "rnn")
SUBBATCH_AUX_FRACTION = 0.25  # ByteNet decoder with sub-batch norm: share of a training batch that is auxiliary


@dataclass
class Seq2SeqConfig:
    encoder: str = "bytenet"  # "bytenet" or "rnn"
    decoder: str = "rnn"  # "bytenet" or "rnn"
    attention: str = "additive"  # rnn decoder: "additive" or "dot"
    # ByteNet sides
    d: int = 64  # the ByteNet stream has 2d channels
    enc_sets: int = 1  # dilation sets (1, 2, 4, 8, 16) in the source network
    dec_sets: int = 1  # ... and in the target network
    set_size: int = 5
    kernel_size: int = 3
    block: str = "residual"  # or "multiplicative"
    norm: str = "layer"  # target network: "layer", "subbatch" or "none"; the source network uses layer or none
    # RNN sides
    cell: str = "gru"
    hidden_size: int = 128
    enc_layers: int = 1
    dec_layers: int = 1
    dropout: float = 0.0
    # dynamic unfolding and the decode length cap
    unfold_a: float = 1.2
    unfold_b: float = 0.0
    length_margin: int = 16
    vocab_size: int = VOCAB  # fixed: bytes, EOS, BOS

    def __post_init__(self) -> None:
        for name, value, allowed in (("encoder", self.encoder, SIDES), ("decoder", self.decoder, SIDES),
                                     ("attention", self.attention, ATTENTIONS), ("block", self.block, BLOCKS),
                                     ("norm", self.norm, NORMS), ("cell", self.cell, CELLS)):
            if value not in allowed:
                raise UserError(f"{name} must be one of {allowed}, got {value!r}")
        if self.vocab_size != VOCAB:
            raise UserError(f"seq2seq vocab_size is fixed at {VOCAB} (bytes, EOS {EOS_ID}, start {BOS_ID})")
        if min(self.d, self.enc_sets, self.dec_sets, self.set_size, self.hidden_size, self.enc_layers,
               self.dec_layers) < 1 or self.kernel_size < 2:
            raise UserError("sizes and counts must be positive, kernel_size >= 2")
        if self.unfold_a <= 0 or self.length_margin < 0:
            raise UserError("unfold_a must be > 0 and length_margin >= 0")

    def dilations(self, sets: int) -> list[int]:
        return [2 ** i for i in range(self.set_size)] * sets


@dataclass
class Encoded:
    """The encoded source, the `cond` of a seq2seq model: outputs [B, S, M] and which positions are real."""

    memory: torch.Tensor
    mask: torch.Tensor  # [B, S] bool

    @property
    def lengths(self) -> torch.Tensor:
        return self.mask.sum(dim=1)

    def repeat_interleave(self, n: int) -> "Encoded":
        return Encoded(self.memory.repeat_interleave(n, dim=0), self.mask.repeat_interleave(n, dim=0))

    def expand_to(self, batch_size: int) -> "Encoded":
        if self.memory.shape[0] == batch_size:
            return self
        if self.memory.shape[0] != 1:
            raise ValueError(f"encoded source has batch {self.memory.shape[0]}, generation asks for {batch_size}")
        return self.repeat_interleave(batch_size)


def pad_sources(sources: Sequence[str | bytes | Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Strings / bytes / id lists -> right-padded ids [B, S] and mask [B, S]."""
    rows = [list(s.encode("utf-8")) if isinstance(s, str) else list(s) for s in sources]
    if not rows or min(len(r) for r in rows) == 0:
        raise UserError("every source must have at least one byte")
    width = max(len(r) for r in rows)
    ids = torch.zeros(len(rows), width, dtype=torch.long)
    mask = torch.zeros(len(rows), width, dtype=torch.bool)
    for i, r in enumerate(rows):
        ids[i, :len(r)] = torch.tensor(r, dtype=torch.long)
        mask[i, :len(r)] = True
    return ids, mask


# ---- encoders -----------------------------------------------------------------------------------------------
class ByteNetEncoder(nn.Module):
    def __init__(self, cfg: Seq2SeqConfig):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, 2 * cfg.d)
        norm = "none" if cfg.norm == "none" else "layer"
        self.stack = ByteNetStack(cfg.d, cfg.dilations(cfg.enc_sets), cfg.kernel_size, cfg.block, norm,
                                  causal=False, dropout=cfg.dropout)
        self.out_size = 2 * cfg.d

    def forward(self, src: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask.unsqueeze(1).to(self.embed.weight.dtype)
        return (self.stack(self.embed(src).transpose(1, 2) * m, m) * m).transpose(1, 2)


class RNNEncoder(nn.Module):
    def __init__(self, cfg: Seq2SeqConfig):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, cfg.hidden_size)
        self.rnn = RNNStack(cfg.cell, cfg.hidden_size, cfg.hidden_size, cfg.enc_layers, cfg.dropout)
        self.out_size = cfg.hidden_size

    def forward(self, src: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(self.embed(src))  # left to right: padding on the right never reaches real positions
        return out * mask.unsqueeze(-1).to(out.dtype)


# ---- decoders -----------------------------------------------------------------------------------------------
class RNNDecoder(nn.Module):
    def __init__(self, cfg: Seq2SeqConfig, memory_size: int):
        super().__init__()
        h = cfg.hidden_size
        self.embed = nn.Embedding(VOCAB, h)
        self.rnn = RNNStack(cfg.cell, h, h, cfg.dec_layers, cfg.dropout)
        self.attention = Attention(cfg.attention, h, memory_size)
        self.combine = nn.Linear(h + memory_size, h)
        self.head = nn.Linear(h, VOCAB)

    def context(self, enc: Encoded, lengths_cap: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"keys": self.attention.keys(enc.memory), "memory": enc.memory, "mask": enc.mask}

    def _out(self, h: torch.Tensor, ctx: dict) -> torch.Tensor:  # h [B, T, H] -> logits [B, T, V]
        c = self.attention(h, ctx["keys"], ctx["memory"], ctx["mask"])
        return self.head(torch.tanh(self.combine(torch.cat([h, c], dim=-1))))

    def forward(self, x: torch.Tensor, ctx: dict) -> torch.Tensor:
        return self._out(self.rnn(self.embed(x))[0], ctx)

    def init_state(self, batch_size: int, device) -> list[State]:
        return self.rnn.init_states(batch_size, device)

    def step(self, x_t: torch.Tensor, layers: list[State], ctx: dict, t: int) -> tuple[torch.Tensor, list[State]]:
        h, layers = self.rnn.step(self.embed(x_t), layers)
        return self._out(h.unsqueeze(1), ctx)[:, 0], layers


class ByteNetDecoder(nn.Module):
    def __init__(self, cfg: Seq2SeqConfig, memory_size: int):
        super().__init__()
        self.embed = nn.Embedding(VOCAB, 2 * cfg.d)
        self.source = nn.Linear(memory_size, 2 * cfg.d)  # source column -> the target network's input channels
        self.stack = ByteNetStack(cfg.d, cfg.dilations(cfg.dec_sets), cfg.kernel_size, cfg.block, cfg.norm,
                                  causal=True, aux_fraction=SUBBATCH_AUX_FRACTION, dropout=cfg.dropout)
        self.head = ByteNetHead(cfg.d, VOCAB, cfg.norm, SUBBATCH_AUX_FRACTION)

    def context(self, enc: Encoded, unfolded: torch.Tensor) -> dict[str, torch.Tensor]:
        """Dynamic unfolding: column t of row b is the projected source at t while t < min(|s_b|, |t̂_b|), else 0."""
        s = enc.memory.shape[1]
        keep = enc.mask & (torch.arange(s, device=enc.mask.device)[None, :] < unfolded[:, None])
        return {"columns": self.source(enc.memory) * keep.unsqueeze(-1).to(enc.memory.dtype)}

    @staticmethod
    def _columns(ctx: dict, t0: int, n: int) -> torch.Tensor:  # [B, n, 2d] for positions t0 .. t0+n-1
        cols = ctx["columns"][:, t0:t0 + n]
        if cols.shape[1] < n:
            cols = F.pad(cols, (0, 0, 0, n - cols.shape[1]))
        return cols

    def _input(self, x: torch.Tensor, ctx: dict, t0: int) -> torch.Tensor:  # [B, T] -> [B, 2d, T]
        return (self.embed(x) + self._columns(ctx, t0, x.shape[1])).transpose(1, 2)

    def forward(self, x: torch.Tensor, ctx: dict) -> torch.Tensor:
        return self.head(self.stack(self._input(x, ctx, 0)))

    def init_state(self, batch_size: int, device) -> ByteNetState:
        return ByteNetState(self.stack.new_queues(batch_size, device), 0)

    def step(self, x_t: torch.Tensor, state: ByteNetState, ctx: dict, t: int) -> tuple[torch.Tensor, ByteNetState]:
        h = self.stack.step(self._input(x_t.unsqueeze(1), ctx, t)[:, :, 0], state.queues, state.t)
        state.t += 1
        return self.head.step(h), state

    def prime(self, x: torch.Tensor, state: ByteNetState, ctx: dict, t: int) -> tuple[torch.Tensor, ByteNetState]:
        h = self.stack.prime(self._input(x, ctx, t), state.queues, state.t)
        state.t += x.shape[1]
        return self.head(h[:, :, -1:])[:, 0], state


@dataclass
class Seq2SeqState:
    decoder: object  # ByteNetState, or the RNN decoder's per-layer states
    context: dict  # what the decoder reads from the source at every step (tensors, batch first)
    limit: torch.Tensor  # [B] position from which the output is forced to EOS (|t̂| + margin)
    t: int = 0
    averaging: AveragingState = field(default_factory=AveragingState)  # RNN decoders: hidden-state averaging


class Seq2Seq(AutoregressiveModel):
    def __init__(self, config: Seq2SeqConfig):
        super().__init__()
        self.config = cfg = config
        self.encoder = ByteNetEncoder(cfg) if cfg.encoder == "bytenet" else RNNEncoder(cfg)
        dec = ByteNetDecoder if cfg.decoder == "bytenet" else RNNDecoder
        self.decoder = dec(cfg, self.encoder.out_size)
        self.averaging_influence = 0.0  # decode-time option for RNN decoders (see engine/models/rnn.py)

    @property
    def receptive_field(self) -> None:
        return None  # every output also depends on the whole source

    @property
    def tokens(self) -> TokenSpec:
        return TokenSpec("text", VOCAB, start_id=BOS_ID, eos_id=EOS_ID)

    # ---- source -----------------------------------------------------------------------------------------------
    def encode(self, src, src_mask: torch.Tensor | None = None) -> Encoded:
        """`src`: a string, a list of strings/bytes/id lists, or ids [B, S] with `src_mask` [B, S] (True = real)."""
        if isinstance(src, (str, bytes)):
            src = [src]
        if not isinstance(src, torch.Tensor):
            src, src_mask = pad_sources(src)
        if src.dim() == 1:
            src = src.unsqueeze(0)
        if src_mask is None:
            src_mask = torch.ones_like(src, dtype=torch.bool)
        src, src_mask = src.to(self.device), src_mask.to(self.device).bool()
        return Encoded(self.encoder(src, src_mask), src_mask)

    def unfolded_length(self, src_lengths: torch.Tensor) -> torch.Tensor:
        """|t̂| = ceil(a·|s| + b) per row."""
        return torch.ceil(self.config.unfold_a * src_lengths.float() + self.config.unfold_b).clamp(min=1).long()

    def _prepare(self, cond, batch_size: int) -> tuple[dict, torch.Tensor]:
        if not isinstance(cond, Encoded):
            if cond is None:
                raise UserError("a sequence-to-sequence model needs a source text to rewrite "
                                "(cond: the source string, or model.encode(src))")
            cond = self.encode(cond)
        cond = cond.expand_to(batch_size)
        unfolded = self.unfolded_length(cond.lengths)
        return self.decoder.context(cond, unfolded), unfolded + self.config.length_margin

    def _cap(self, logits: torch.Tensor, positions: torch.Tensor, limit: torch.Tensor) -> torch.Tensor:
        """Eval mode: from position |t̂| + margin on, only EOS may come next."""
        if self.training:
            return logits
        over = (positions[None, :] >= limit[:, None]).unsqueeze(-1)  # [B, T, 1]
        not_eos = torch.arange(VOCAB, device=logits.device) != EOS_ID
        return logits.masked_fill(over & not_eos, float("-inf"))

    # ---- the protocol -------------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, cond=None) -> torch.Tensor:
        ctx, limit = self._prepare(cond, x.shape[0])
        logits = self.decoder(x, ctx)
        return self._cap(logits, torch.arange(x.shape[1], device=x.device), limit)

    @property
    def decode_options(self) -> dict[str, float]:
        return {"influence": self.averaging_influence} if isinstance(self.decoder, RNNDecoder) else {}

    def init_state(self, batch_size: int, cond=None, device=None, influence: float | None = None) -> Seq2SeqState:
        ctx, limit = self._prepare(cond, batch_size)
        device = torch.device(device) if device is not None else self.device
        influence = self.averaging_influence if influence is None else influence
        return Seq2SeqState(self.decoder.init_state(batch_size, device), ctx, limit, 0,
                            AveragingState(float(influence)))

    def step(self, x_t: torch.Tensor, state: Seq2SeqState) -> tuple[torch.Tensor, Seq2SeqState]:
        logits, state.decoder = self.decoder.step(x_t, state.decoder, state.context, state.t)
        if isinstance(self.decoder, RNNDecoder):
            state.decoder = state.averaging.feed(state.decoder)
        logits = self._cap(logits.unsqueeze(1), torch.tensor([state.t], device=logits.device), state.limit)[:, 0]
        state.t += 1
        return logits, state

    def prime(self, x: torch.Tensor, state: Seq2SeqState) -> tuple[torch.Tensor, Seq2SeqState]:
        if x.shape[1] == 0:
            raise ValueError("prime needs at least one token")
        if not isinstance(self.decoder, ByteNetDecoder):
            return super().prime(x, state)
        logits, state.decoder = self.decoder.prime(x, state.decoder, state.context, state.t)
        state.t += x.shape[1]
        pos = torch.tensor([state.t - 1], device=logits.device)
        return self._cap(logits.unsqueeze(1), pos, state.limit)[:, 0], state

    # ---- training -----------------------------------------------------------------------------------------
    def training_forward(self, x: torch.Tensor, cond=None, state=None, reset=None) -> TrainingOutput:
        """Teacher-forced logits given `cond`, the encoded source (`encode(src, src_mask)`: source padding is
        masked, not read as bytes); with a ByteNet decoder under sub-batch norm only the main rows count."""
        return TrainingOutput(self(x, cond), rows=self.loss_rows(x.shape[0]))

    def loss_rows(self, batch_size: int) -> slice:
        """All rows, except the auxiliary ones of a ByteNet decoder with sub-batch norm in training."""
        if self.config.decoder == "bytenet" and self.config.norm == "subbatch" and self.training:
            return slice(0, batch_size - SubBatchNorm.aux_rows(batch_size, SUBBATCH_AUX_FRACTION))
        return slice(None)

    @torch.no_grad()
    def translate(self, sources: Sequence[str], beam_width: int = 1, max_len: int | None = None) -> list[str]:
        """Convenience: greedy (beam_width 1) or beam-search translations of strings."""
        from ..beam import beam_search
        from ..text import decode
        with evaluating(self):
            enc = self.encode(list(sources))
            max_len = max_len or int(self.unfolded_length(enc.lengths).max()) + self.config.length_margin + 1
            return [decode(ids) for ids in beam_search(self, enc, beam_width=beam_width, max_new_tokens=max_len)]


register_family("seq2seq", Seq2SeqConfig, Seq2Seq)

