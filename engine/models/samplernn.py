"""SampleRNN (Mehri et al. 2017): frame-level RNN tiers at several time scales over a sample-level MLP.

Tiers, top down, with frame sizes F_1 > F_2 > ... > F_{K-1} (each dividing the one above; 2-tier: (16,),
3-tier: (8, 2)).  Frame tier k reads non-overlapping frames of F_k dequantized samples; its input is the frame
projected (Linear F_k -> dim) plus the conditioning that the tier above produced for this frame (plus a global
class embedding in the top tier); a GRU or LSTM (n layers, learned initial state) runs over its frames, and a
learned upsampling (r separate linear maps, one Linear to r * width reshaped) turns each output into r
conditioning vectors, one per frame of the tier below (r = F_k / F_{k+1}; the last frame tier makes one per
sample).  The sample-level MLP sees the embedded previous F_{K-1} samples (a kernel-F_{K-1} convolution over the
embeddings, i.e. a Linear over their concatenation) plus its conditioning vector, and outputs 256-way logits.

Time alignment (what `forward` does at the start).  Positions are absolute: the input x is preceded by a virtual
history of P = F_1 "silence" samples (the id `tokens.start_id`, the quantization of 0.0), so x[0] sits at
position P, a boundary of every tier.  The sample at position u is predicted from the previous F_{K-1} samples and
from the conditioning of the frame of each tier that contains u; that frame's conditioning was made when the tier
ran on the frame just before it.  So a tier runs at each of its boundaries b (b % F_k == 0) on samples [b-F_k, b).
`init_state` runs every tier once, at b = P, on the silence frame (this is where the learned initial states are
used); `forward(x)` is exactly "init_state, then feed x": logits[:, t] is the distribution of x[:, t+1].

Everything goes through one routine, `_advance`, which feeds any number of new samples to a state: `forward`,
`prime` (a real audio prompt in one parallel pass per tier: the seed's "bootstrapping" question is answered by
running the tiers over the real window and starting generation from the state it leaves), `step` (which buffers
samples until a frame completes and runs a tier exactly at its boundaries), and truncated BPTT (`forward_chunk`
takes and returns the state, so consecutive chunks of one long sequence equal one long pass).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..audio import QUANTIZATIONS, dequantize, quantize
from ..errors import UserError
from ..protocol import AutoregressiveModel, TokenSpec, TrainingOutput
from ..registry import register_family

CELLS = ("gru", "lstm")


@dataclass
class SampleRNNConfig:
    n_classes: int = 256
    frame_sizes: list[int] = field(default_factory=lambda: [16])  # frame tiers, top down; K = len + 1 tiers
    dim: int = 256  # hidden size of every frame tier's RNN
    rnn_layers: int = 1
    cell: str = "gru"  # or "lstm"
    learn_h0: bool = True  # learned initial hidden (and cell) state per tier
    embed_dim: int = 64  # sample-level embedding of each previous sample
    mlp_dim: int = 256  # sample-level MLP width
    global_cond_classes: int = 0  # 0 = unconditioned; else a class/speaker embedding into the top tier
    sample_rate: int = 16000
    quantization: str = "linear"  # or "mulaw"

    def __post_init__(self) -> None:
        if isinstance(self.frame_sizes, int):
            self.frame_sizes = [self.frame_sizes]
        self.frame_sizes = [int(f) for f in self.frame_sizes]
        fs = self.frame_sizes
        if not fs or min(fs) < 1:
            raise UserError(f"frame_sizes must be one or more positive sizes (top tier first), got {fs}")
        for a, b in zip(fs, fs[1:]):
            if a <= b or a % b:
                raise UserError(f"each frame size must be a multiple of, and larger than, the next: {fs}")
        if self.cell not in CELLS:
            raise UserError(f"cell must be one of {CELLS}, got {self.cell!r}")
        if self.quantization not in QUANTIZATIONS:
            raise UserError(f"quantization must be one of {QUANTIZATIONS}, got {self.quantization!r}")
        if min(self.n_classes - 1, self.dim, self.rnn_layers, self.embed_dim, self.mlp_dim) < 1:
            raise UserError("n_classes must be >= 2 and dim, rnn_layers, embed_dim, mlp_dim positive")
        if self.global_cond_classes < 0:
            raise UserError("global_cond_classes must be >= 0")

    @property
    def ratios(self) -> list[int]:
        """Upsampling ratio of each frame tier: conditioning vectors it makes per frame for the tier below."""
        fs = self.frame_sizes
        return [a // b for a, b in zip(fs, fs[1:])] + [fs[-1]]


@dataclass
class SampleRNNState:
    t: int  # samples consumed so far
    hist: torch.Tensor  # [B, F_1] the last F_1 ids (virtual silence before the first sample)
    hidden: list  # per frame tier: h [layers, B, dim], or (h, c) for LSTM
    cond: list[torch.Tensor]  # per frame tier k: [B, r_{k-1}, dim] conditioning for its current upper frame (k=0:
    # unused); last entry: [B, F_{K-1}, mlp_dim] per-sample conditioning for the sample level
    gc: torch.Tensor | None = None  # [B, dim] global conditioning embedding

    def detach(self) -> "SampleRNNState":
        """Cut the graph (truncated BPTT) while keeping the values."""
        det = lambda h: tuple(x.detach() for x in h) if isinstance(h, tuple) else h.detach()  # noqa: E731
        return SampleRNNState(self.t, self.hist, [det(h) for h in self.hidden], [c.detach() for c in self.cond],
                              None if self.gc is None else self.gc.detach())


class FrameTier(nn.Module):
    def __init__(self, cfg: SampleRNNConfig, frame_size: int, ratio: int, out_dim: int, top: bool):
        super().__init__()
        self.frame_size, self.ratio, self.out_dim = frame_size, ratio, out_dim
        self.proj = nn.Linear(frame_size, cfg.dim)
        rnn = nn.GRU if cfg.cell == "gru" else nn.LSTM
        self.rnn = rnn(cfg.dim, cfg.dim, cfg.rnn_layers, batch_first=True)
        self.h0 = nn.Parameter(torch.zeros(cfg.rnn_layers, 1, cfg.dim), requires_grad=cfg.learn_h0)
        self.c0 = nn.Parameter(torch.zeros(cfg.rnn_layers, 1, cfg.dim), requires_grad=cfg.learn_h0) \
            if cfg.cell == "lstm" else None
        self.upsample = nn.Linear(cfg.dim, ratio * out_dim)  # r separate linear maps in one matrix
        self.gc = nn.Embedding(cfg.global_cond_classes, cfg.dim) if top and cfg.global_cond_classes else None

    def initial(self, batch_size: int):
        h = self.h0.expand(-1, batch_size, -1).contiguous()
        return h if self.c0 is None else (h, self.c0.expand(-1, batch_size, -1).contiguous())

    def forward(self, frames: torch.Tensor, cond: torch.Tensor, hidden):
        """frames [B, n, F] floats, cond [B, n, dim] -> conditioning [B, n * r, out_dim] for the tier below."""
        out, hidden = self.rnn(self.proj(frames) + cond, hidden)
        B, n, _ = out.shape
        return self.upsample(out).reshape(B, n * self.ratio, self.out_dim), hidden


class SampleMLP(nn.Module):
    def __init__(self, cfg: SampleRNNConfig):
        super().__init__()
        self.frame_size = cfg.frame_sizes[-1]
        self.embed = nn.Embedding(cfg.n_classes, cfg.embed_dim)
        self.inp = nn.Linear(self.frame_size * cfg.embed_dim, cfg.mlp_dim)  # over the concatenated embeddings
        self.hidden = nn.Linear(cfg.mlp_dim, cfg.mlp_dim)
        self.out = nn.Linear(cfg.mlp_dim, cfg.n_classes)

    def forward(self, ids: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """ids [B, T + F - 1] (the F - 1 before the first target's window included), cond [B, T, mlp] -> [B, T, V].

        The input Linear slides over the sequence as a kernel-F convolution (its weight viewed as [mlp, E, F]),
        so no [B, T, F * E] window copy is made."""
        mlp, fe = self.inp.weight.shape
        w = self.inp.weight.view(mlp, self.frame_size, fe // self.frame_size).transpose(1, 2)
        h = F.conv1d(self.embed(ids).transpose(1, 2), w, self.inp.bias).transpose(1, 2) + cond
        return self.head(h)

    def head(self, h: torch.Tensor) -> torch.Tensor:
        return self.out(F.relu(self.hidden(F.relu(h))))

    def step(self, window: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """window [B, F] ids (the previous F samples), cond [B, mlp] -> logits [B, V]."""
        return self.head(F.linear(self.embed(window).flatten(1), self.inp.weight, self.inp.bias) + cond)


class SampleRNN(AutoregressiveModel):
    def __init__(self, config: SampleRNNConfig):
        super().__init__()
        self.config = cfg = config
        fs, rs = cfg.frame_sizes, cfg.ratios
        outs = [cfg.dim] * (len(fs) - 1) + [cfg.mlp_dim]
        self.tiers = nn.ModuleList(FrameTier(cfg, f, r, o, i == 0) for i, (f, r, o) in enumerate(zip(fs, rs, outs)))
        self.mlp = SampleMLP(cfg)
        self.history = fs[0]
        self.silence = int(quantize(torch.tensor(0.0), cfg.n_classes, cfg.quantization))

    @property
    def receptive_field(self) -> None:
        return None

    @property
    def tokens(self) -> TokenSpec:
        c = self.config
        return TokenSpec("audio", c.n_classes, c.sample_rate, c.quantization, start_id=self.silence)

    def _gc(self, cond, batch_size: int, device) -> torch.Tensor | None:
        n = self.config.global_cond_classes
        if not n:
            if cond is not None:
                raise UserError("this SampleRNN is not conditioned; pass cond=None")
            return None
        if cond is None:
            raise UserError(f"this SampleRNN is conditioned on {n} classes; pass cond")
        cond = torch.as_tensor(cond, dtype=torch.long, device=device).reshape(-1)
        if cond.numel() == 1 and batch_size > 1:
            cond = cond.expand(batch_size)
        if cond.shape[0] != batch_size or cond.min() < 0 or cond.max() >= n:
            raise UserError(f"cond must be {batch_size} class ids in 0..{n - 1}")
        return self.tiers[0].gc(cond)

    def _advance(self, state: SampleRNNState, x: torch.Tensor, start: bool = False):
        """Feed new ids x [B, T] to `state`: run each tier at every boundary they complete, in parallel per tier.

        Returns the logits for the T samples after x[:, 0], ..., x[:, -1] ([B, T, V]) and the new state.  With
        start=True (from init_state, T = 0) the tiers also run at the current position, the start boundary P.
        """
        cfg, P = self.config, self.history
        B, T = x.shape
        if T and (x.min() < 0 or x.max() >= cfg.n_classes):
            raise UserError(f"ids must be in 0..{cfg.n_classes - 1}")
        z = torch.cat([state.hist, x], dim=1)  # absolute positions state.t .. state.t + P + T - 1
        base = state.t
        lo, hi = P + state.t - (1 if start else 0), P + state.t + T  # boundaries in (lo, hi] are new
        wave = None
        pending = None  # conditioning made in this call for the current tier, starting at its first new boundary
        hidden, conds = list(state.hidden), list(state.cond)
        sizes = cfg.frame_sizes + [1]
        for k, tier in enumerate(self.tiers):
            f = tier.frame_size
            first = (lo // f + 1) * f
            n = (hi - first) // f + 1 if first <= hi else 0
            if k == 0:
                c = state.gc.unsqueeze(1).expand(B, n, -1) if state.gc is not None else None
            else:  # conditioning vectors at this tier's boundaries, from the start of the current upper frame
                seq = conds[k] if pending is None else torch.cat([conds[k], pending], dim=1)
                if pending is not None:
                    conds[k] = pending[:, -conds[k].shape[1]:]
                up_start = (lo // sizes[k - 1]) * sizes[k - 1]
                i0 = (first - up_start) // f
                c = seq[:, i0:i0 + n]
            if n == 0:
                pending = None
                continue
            if wave is None:
                wave = dequantize(z, cfg.n_classes, cfg.quantization).to(self.mlp.out.weight.dtype)
            s0 = first - f - base
            frames = wave[:, s0:s0 + n * f].reshape(B, n, f)
            pending, hidden[k] = tier(frames, c if c is not None else 0.0, hidden[k])
        # the sample level: targets at positions lo+1 .. hi (none when starting)
        fl = cfg.frame_sizes[-1]
        seq = conds[-1] if pending is None else torch.cat([conds[-1], pending], dim=1)
        if pending is not None:
            conds[-1] = pending[:, -fl:]
        logits = None
        if T:
            up_start = (lo // fl) * fl
            c = seq[:, lo + 1 - up_start:hi + 1 - up_start]
            ids = z[:, lo + 1 - fl - base:hi - base]
            logits = self.mlp(ids, c)
        new = SampleRNNState(state.t + T, z[:, -P:], hidden, conds, state.gc)
        return logits, new

    # ---- the protocol ---------------------------------------------------------------------------------------
    def init_state(self, batch_size: int, cond=None, device=None) -> SampleRNNState:
        cfg = self.config
        device = torch.device(device) if device is not None else self.device
        dtype = self.mlp.out.weight.dtype
        hist = torch.full((batch_size, self.history), self.silence, dtype=torch.long, device=device)
        hidden = [tier.initial(batch_size) for tier in self.tiers]
        conds = [torch.zeros(batch_size, r, cfg.dim, device=device, dtype=dtype) for r in [1] + cfg.ratios[:-1]]
        conds.append(torch.zeros(batch_size, cfg.frame_sizes[-1], cfg.mlp_dim, device=device, dtype=dtype))
        state = SampleRNNState(0, hist, hidden, conds, self._gc(cond, batch_size, device))
        return self._advance(state, hist[:, :0], start=True)[1]

    def forward(self, x: torch.Tensor, cond=None) -> torch.Tensor:
        return self._advance(self.init_state(x.shape[0], cond, x.device), x)[0]

    def forward_chunk(self, x: torch.Tensor, state: SampleRNNState | None = None, cond=None):
        """Truncated BPTT: logits [B, T, V] for one chunk of a long sequence and the state after it.

        Pass the returned state (`state.detach()` to truncate the gradient) with the next chunk: the logits of
        consecutive chunks are those of one pass over the whole sequence.  logits[:, -1] predicts the next chunk's
        first sample.
        """
        if state is None:
            state = self.init_state(x.shape[0], cond, x.device)
        return self._advance(state, x)

    # ---- truncated BPTT in the trainer (the protocol's `training_forward` with `training_stateful`) ----------
    training_stateful = True

    def training_forward(self, x: torch.Tensor, cond=None, state: SampleRNNState | None = None,
                         reset: torch.Tensor | None = None) -> TrainingOutput:
        """Logits for one chunk of each row's long sequence, and the state after it.

        `state` is the previous chunk's (already detached by the trainer); rows flagged in `reset` [B] start
        afresh from `init_state` (all rows when `reset` is None).  Carrying a state needs chunks whose length is a
        multiple of the top frame size, so that every row's frames stay aligned to the same grid."""
        B, T = x.shape
        fresh = self.init_state(B, cond if self.config.global_cond_classes else None, x.device)
        if state is not None:
            if state.t % self.history or T % self.history:
                raise UserError(f"stateful SampleRNN training needs seq_len divisible by the top frame size "
                                f"{self.history}, got {T}")
            reset = reset if reset is not None else torch.ones(B, dtype=torch.bool, device=x.device)
            state = _mix_rows(state, fresh, reset)
        logits, state = self._advance(fresh if state is None else state, x)
        return TrainingOutput(logits, state=state)

    def step(self, x_t: torch.Tensor, state: SampleRNNState) -> tuple[torch.Tensor, SampleRNNState]:
        """One sample: the sample level every time; a frame tier only when this sample completes its frame.

        The same arithmetic as `_advance` with T = 1, written without its bookkeeping because generation calls it
        once per audio sample."""
        cfg, P = self.config, self.history
        hist = torch.cat([state.hist[:, 1:], x_t.reshape(-1, 1)], dim=1)
        t = state.t + 1
        u = P + t  # position of the sample to predict
        conds, fs = state.cond, cfg.frame_sizes
        if u % fs[-1] == 0:  # some frame completes here: run every tier whose boundary this is, top down
            conds, hidden = list(conds), list(state.hidden)
            wave = None
            for k, tier in enumerate(self.tiers):
                f = tier.frame_size
                if u % f:
                    continue
                if wave is None:
                    wave = dequantize(hist, cfg.n_classes, cfg.quantization).to(self.mlp.out.weight.dtype)
                if k == 0:
                    c = state.gc.unsqueeze(1) if state.gc is not None else 0.0
                else:
                    i = (u % fs[k - 1]) // f
                    c = conds[k][:, i:i + 1]
                conds[k + 1], hidden[k] = tier(wave[:, P - f:].unsqueeze(1), c, hidden[k])
            state = SampleRNNState(state.t, state.hist, hidden, conds, state.gc)
        logits = self.mlp.step(hist[:, P - fs[-1]:], conds[-1][:, u % fs[-1]])
        return logits, SampleRNNState(t, hist, state.hidden, conds, state.gc)

    def prime(self, x: torch.Tensor, state: SampleRNNState) -> tuple[torch.Tensor, SampleRNNState]:
        """A real audio prompt in one pass: each tier runs over all the frames the prompt completes at once."""
        if x.shape[1] == 0:
            raise ValueError("prime needs at least one token")
        logits, state = self._advance(state, x)
        return logits[:, -1], state


def _mix_rows(old: SampleRNNState, fresh: SampleRNNState, reset: torch.Tensor) -> SampleRNNState:
    """Rows flagged in `reset` [B] from `fresh`, the others from `old` (both on the same frame grid)."""
    def pick(a: torch.Tensor, b: torch.Tensor, batch_dim: int) -> torch.Tensor:
        shape = [1] * a.dim()
        shape[batch_dim] = -1
        return torch.where(reset.view(shape), b, a)

    def pick_hidden(a, b):
        return tuple(pick(x, y, 1) for x, y in zip(a, b)) if isinstance(a, tuple) else pick(a, b, 1)

    return SampleRNNState(0, pick(old.hist, fresh.hist, 0), [pick_hidden(a, b) for a, b in zip(old.hidden, fresh.hidden)],
                          [pick(a, b, 0) for a, b in zip(old.cond, fresh.cond)], fresh.gc)


register_family("samplernn", SampleRNNConfig, SampleRNN)
