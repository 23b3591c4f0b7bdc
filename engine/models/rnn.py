"""RNN language model over bytes, with the Seq2Seq Upgrade features.

ids -> embedding -> layers of a recurrent cell (lstm, gru, jzs1, jzs2, jzs3, irnn; engine/layers/rnn_cells.py)
with dropout between them -> linear head.  On top of the plain LM:
- the norm-stabilizer (Krueger & Memisevic 2016), β · mean_t (‖h_t‖ − ‖h_{t−1}‖)², on the hidden states
  and/or the logits: `norm_stabilizer(hiddens, logits)` returns the penalties by name, so a trainer adds them
  to the loss and reports them apart from the cross-entropy (`training_forward` hands them over);
- hidden-state averaging at decode time: the state fed to the next step is
  influence · mean(h_1..h_t) + (1 − influence) · h_t.  The influence lives in the decoding state
  (`init_state(..., influence=)`, default `model.averaging_influence`), so `engine.generate` needs no option;
- per-layer device placement: `devices=["cuda:0", "cuda:1"]` puts consecutive layers on the same device
  (the embedding with the first layer, the head with the last); activations move between devices;
- held ids: reading one of `held_ids` (a class prefix, say) sets a learned vector that is added to every later
  input until another held id is read, so a condition given once, as the first token, reaches every step
  instead of fading through the recurrence.  It lives in the decoding state; `forward` finds the last held id
  at or before each position, so stepping reproduces the parallel pass.
The layer stack and the averaging state live in engine/layers/rnn_stack.py (seq2seq reuses them).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..errors import UserError
from ..layers.rnn_cells import CELLS, State
from ..layers.rnn_stack import AveragingState, RNNStack
from ..protocol import AutoregressiveModel, TokenSpec, TrainingOutput
from ..registry import register_family
from ..text import BYTE_VOCAB, NEWLINE


def norm_stabilizer_term(seq: torch.Tensor) -> torch.Tensor:
    """mean over batch and t of (‖h_t‖ − ‖h_{t−1}‖)² for a sequence [B, T, H] (t = 2..T); 0 when T < 2."""
    if seq.shape[1] < 2:
        return seq.new_zeros(())
    norms = seq.norm(dim=-1)
    return (norms[:, 1:] - norms[:, :-1]).pow(2).mean()


@dataclass
class RNNConfig:
    vocab_size: int = BYTE_VOCAB
    cell: str = "lstm"  # lstm, gru, jzs1, jzs2, jzs3, irnn
    hidden_size: int = 128
    layers: int = 2
    embed_size: int = 0  # 0 = hidden_size
    dropout: float = 0.0
    irnn_scale: float = 1.0  # IRNN recurrent matrix starts as scale * I
    norm_stabilizer_hidden: float = 0.0  # β of the norm-stabilizer on hidden states (0 = off)
    norm_stabilizer_logits: float = 0.0  # β on the logits (0 = off)
    averaging_influence: float = 0.0  # decode-time hidden-state averaging default (0 = off)
    devices: list[str] | None = None  # per-layer placement, e.g. ["cuda:0", "cuda:1"]
    start_id: int = NEWLINE  # fed first when generating without a prompt
    eos_id: int | None = None  # generation stops here; a names model sets NEWLINE: one name per row, as trained
    held_ids: list[int] | None = None  # ids whose learned vector joins every later input (a class prefix)

    def __post_init__(self) -> None:
        if self.cell not in CELLS:
            raise UserError(f"cell must be one of {CELLS}, got {self.cell!r}")
        if min(self.vocab_size, self.hidden_size, self.layers) < 1 or self.embed_size < 0:
            raise UserError("vocab_size, hidden_size and layers must be positive, embed_size >= 0")
        if not 0 <= self.averaging_influence <= 1:
            raise UserError(f"averaging_influence must be in [0, 1], got {self.averaging_influence}")
        if min(self.norm_stabilizer_hidden, self.norm_stabilizer_logits) < 0:
            raise UserError("norm-stabilizer weights must be >= 0")
        if self.devices is not None and (not self.devices or len(self.devices) > self.layers):
            raise UserError(f"devices must list 1..{self.layers} devices (one per group of layers)")
        if self.held_ids is not None:
            ids = list(self.held_ids)
            if not ids or len(set(ids)) != len(ids) or not all(0 <= i < self.vocab_size for i in ids):
                raise UserError(f"held_ids must be distinct ids in 0..{self.vocab_size - 1}, got {self.held_ids}")


@dataclass
class RNNState:
    layers: list[State]  # per layer (h,) or (h, c)
    averaging: AveragingState = field(default_factory=AveragingState)
    held: torch.Tensor | None = None  # [B] index (1-based; 0 = none yet) of the last held id read, with held_ids


class RNN(AutoregressiveModel):
    def __init__(self, config: RNNConfig):
        super().__init__()
        self.config = cfg = config
        emb = cfg.embed_size or cfg.hidden_size
        self.embed = nn.Embedding(cfg.vocab_size, emb)
        if cfg.held_ids:  # id -> 1 + its place in held_ids, 0 for every other id; row 0 of held_embed stays zero
            index = torch.zeros(cfg.vocab_size, dtype=torch.long)
            index[torch.tensor(cfg.held_ids)] = torch.arange(1, len(cfg.held_ids) + 1)
            self.register_buffer("held_index", index, persistent=False)
            self.held_embed = nn.Embedding(len(cfg.held_ids) + 1, emb, padding_idx=0)
        self.rnn = RNNStack(cfg.cell, emb, cfg.hidden_size, cfg.layers, cfg.dropout, cfg.irnn_scale, cfg.devices)
        self.head = nn.Linear(cfg.hidden_size, cfg.vocab_size)
        self.averaging_influence = cfg.averaging_influence  # decode-time option; the app may change it
        if self.rnn.devices:
            self.embed.to(self.rnn.devices[0])
            if cfg.held_ids:  # the held vector joins the embedding, on its device
                self.held_embed.to(self.rnn.devices[0])
                self.held_index = self.held_index.to(self.rnn.devices[0])
            self.head.to(self.rnn.devices[-1])

    @property
    def receptive_field(self) -> None:
        return None

    @property
    def tokens(self) -> TokenSpec:
        return TokenSpec("text", self.config.vocab_size, start_id=self.config.start_id, eos_id=self.config.eos_id)

    def forward_with_hiddens(self, x: torch.Tensor, cond=None) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Teacher-forced logits [B, T, V] and every layer's hidden states [B, T, H] (for the norm-stabilizer)."""
        if cond is not None:
            raise UserError("the RNN LM is unconditioned; pass cond=None")
        out, hiddens = self.rnn(self._inputs(x, self._last_held(x)))
        return self.head(out.to(self.head.weight.device)), hiddens

    def _last_held(self, x: torch.Tensor) -> torch.Tensor | None:
        """[B, T] -> the held index in force at each position (that of the last held id at or before it)."""
        if not self.config.held_ids:
            return None
        index = self.held_index[x]
        where = torch.arange(x.shape[1], device=x.device).expand_as(x).masked_fill(index == 0, -1)
        last = where.cummax(dim=1).values
        return torch.gather(index, 1, last.clamp(min=0)).masked_fill(last < 0, 0)

    def _inputs(self, x: torch.Tensor, held: torch.Tensor | None) -> torch.Tensor:
        e = self.embed(x)
        return e if held is None else e + self.held_embed(held)

    def forward(self, x: torch.Tensor, cond=None) -> torch.Tensor:
        return self.forward_with_hiddens(x, cond)[0]

    def norm_stabilizer(self, hiddens: list[torch.Tensor], logits: torch.Tensor) -> dict[str, torch.Tensor]:
        """The configured penalties by name (β already applied); the hidden one is averaged over layers."""
        out = {}
        if self.config.norm_stabilizer_hidden:
            terms = [norm_stabilizer_term(h).to(logits.device) for h in hiddens]
            out["norm_stabilizer_hidden"] = self.config.norm_stabilizer_hidden * torch.stack(terms).mean()
        if self.config.norm_stabilizer_logits:
            out["norm_stabilizer_logits"] = self.config.norm_stabilizer_logits * norm_stabilizer_term(logits)
        return out

    def training_forward(self, x: torch.Tensor, cond=None, state=None, reset=None) -> TrainingOutput:
        """Teacher-forced logits plus, in training mode only, the norm-stabilizer penalties by name, which the
        trainer adds to the mean cross-entropy and reports apart from it."""
        logits, hiddens = self.forward_with_hiddens(x, cond)
        return TrainingOutput(logits, penalties=self.norm_stabilizer(hiddens, logits) if self.training else {})

    @property
    def decode_options(self) -> dict[str, float]:
        return {"influence": self.averaging_influence}  # hidden-state averaging (Seq2Seq Upgrade)

    def init_state(self, batch_size: int, cond=None, device=None, influence: float | None = None) -> RNNState:
        if cond is not None:
            raise UserError("the RNN LM is unconditioned; pass cond=None")
        influence = self.averaging_influence if influence is None else influence
        if not 0 <= influence <= 1:
            raise UserError(f"averaging influence must be in [0, 1], got {influence}")
        held = torch.zeros(batch_size, dtype=torch.long, device=self.embed.weight.device) \
            if self.config.held_ids else None
        return RNNState(self.rnn.init_states(batch_size, device), AveragingState(float(influence)), held)

    def step(self, x_t: torch.Tensor, state: RNNState) -> tuple[torch.Tensor, RNNState]:
        x_t = x_t.to(self.embed.weight.device)
        if state.held is not None:
            now = self.held_index[x_t]
            state.held = torch.where(now > 0, now, state.held)
        h, layers = self.rnn.step(self._inputs(x_t, state.held), state.layers)
        state.layers = state.averaging.feed(layers)
        return self.head(h.to(self.head.weight.device)), state


register_family("rnn", RNNConfig, RNN)
