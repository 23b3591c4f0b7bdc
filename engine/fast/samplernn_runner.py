"""SampleRNN (GRU tiers) on the fast path: weights packed for `srnn_run` in engine/fast/kernel.py, and a runner
that continues an eager generation state.

SampleRNN's step is not a chain of causal convolutions, so it does not go through `Program`: the kernel has its
own loop (frame tiers at their boundaries, then the sample-level MLP) driven by three small offset tables built
here (T per frame tier, L per GRU layer, M for the MLP; their columns are named in engine/fast/kernel.py).
Writing it as an op list would need ops the other families do not have (a branch per tier on the clock, a
history shift, a GRU update, the folded-table sum) and an interpreter pass per op, for no shared code gained.
The sample-level input Linear over the F embedded previous samples is folded into a table [F, V, mlp] (embedding
row times its slice of the weight, in float64, rounded once), so a sample costs F row additions instead of a
[F * E, mlp] matrix-vector product.

State: `run` reads the eager `SampleRNNState` (history, hidden states, conditioning, clock) at its start and writes
it back at its end, so eager `step`/`prime` and the compiled loop can take turns on one state.  LSTM tiers are
not compiled: `why_not` names them and "auto" generation falls back to the eager path.
"""
from __future__ import annotations

import threading
import weakref
from typing import Any

import numpy as np
import torch

from ..audio import dequantize
from ..models.samplernn import SampleRNN
from ..sampling import SamplingConfig
from .lowering import Unsupported, _weights_key, config_reason, declare_fields, weights_reason


def serves(model: Any) -> bool:
    """Whether `model` is a SampleRNN (this module's business, supported or not)."""
    return isinstance(model, SampleRNN)


def why_not(model: SampleRNN) -> str | None:
    """None when the compiled SampleRNN loop serves this model, else the reason."""
    return _model_reason(model) or _kernel_error()


# The config fields srnn_step accounts for (the guard in engine/fast/lowering.py refuses any other set field).
declare_fields(SampleRNN,
               handles={"n_classes", "frame_sizes", "dim", "rnn_layers", "embed_dim", "mlp_dim", "global_cond_classes",
                        "quantization",  # the dequantization table of the frame inputs
                        "cell"},  # "gru" only: _model_reason refuses the others
               ignores={"learn_h0": "training",  # requires_grad of h0; the state carries its value
                        "sample_rate": "metadata"})


def _model_reason(model: SampleRNN) -> str | None:
    if model.config.cell != "gru":
        return f"the fast path compiles GRU SampleRNN tiers only; this model uses {model.config.cell.upper()}"
    return config_reason(model) or weights_reason(model)


class _Packed:
    """Flat float32 parameters, the offset tables T, L, M (columns named in engine/fast/kernel.py) and the arena
    size for one model."""

    def __init__(self, model: SampleRNN):
        from . import kernel as K  # the table layout lives with the compiled loop that reads it
        cfg = model.config
        chunks: list[np.ndarray] = []
        size = [0]

        def add(arr) -> int:
            a = np.ascontiguousarray(np.asarray(arr, dtype=np.float32)).ravel()
            off = size[0]
            chunks.append(a)
            size[0] += a.size
            return off

        def wt(lin: torch.nn.Linear) -> tuple[int, int]:  # [in, out] row-major, as _matvec_rows reads it
            return add(lin.weight.detach().float().t().numpy()), add(lin.bias.detach().float().numpy())

        arena = [0]

        def buf(n: int) -> int:
            off = arena[0]
            arena[0] += n
            return off

        dim, mlp, v = cfg.dim, cfg.mlp_dim, cfg.n_classes
        self.dim, self.mlp, self.vocab, self.layers = dim, mlp, v, cfg.rnn_layers
        self.history = model.history
        gc = buf(dim)
        n_tiers = len(model.tiers)
        T = np.zeros((n_tiers, K.T_COLS), np.int64)
        L = np.zeros((n_tiers, cfg.rnn_layers, K.L_COLS), np.int64)
        for k, tier in enumerate(model.tiers):
            t = T[k]
            t[K.T_F], t[K.T_RATIO], t[K.T_OUT_DIM] = tier.frame_size, tier.ratio, tier.out_dim
            t[K.T_PROJ_W], t[K.T_PROJ_B] = wt(tier.proj)
            t[K.T_UP_W], t[K.T_UP_B] = wt(tier.upsample)
            t[K.T_FRAME], t[K.T_X] = buf(tier.frame_size), buf(dim)
            for l in range(cfg.rnn_layers):
                rnn, g = tier.rnn, L[k, l]
                g[K.L_W_IH] = add(getattr(rnn, f"weight_ih_l{l}").detach().float().t().numpy())
                g[K.L_B_IH] = add(getattr(rnn, f"bias_ih_l{l}").detach().float().numpy())
                g[K.L_W_HH] = add(getattr(rnn, f"weight_hh_l{l}").detach().float().t().numpy())
                g[K.L_B_HH] = add(getattr(rnn, f"bias_hh_l{l}").detach().float().numpy())
                g[K.L_H], g[K.L_GI], g[K.L_GH] = buf(dim), buf(3 * dim), buf(3 * dim)
                g[K.L_INPUT] = t[K.T_X] if l == 0 else L[k, l - 1, K.L_H]
            t[K.T_OUT] = buf(tier.ratio * tier.out_dim)
            t[K.T_COND_IN] = T[k - 1, K.T_OUT] if k else -1
            t[K.T_PARENT_F] = model.tiers[k - 1].frame_size if k else 0
        fl, e = cfg.frame_sizes[-1], cfg.embed_dim
        w = model.mlp.inp.weight.detach().double()  # [mlp, fl * E]
        emb = model.mlp.embed.weight.detach().double()  # [V, E]
        table = torch.stack([emb @ w[:, j * e:(j + 1) * e].t() for j in range(fl)]).float().numpy()
        M = np.zeros(K.M_COLS, np.int64)
        M[K.M_TABLE] = add(table)
        M[K.M_INP_B] = add(model.mlp.inp.bias.detach().float().numpy())
        M[K.M_HID_W], M[K.M_HID_B] = wt(model.mlp.hidden)
        M[K.M_OUT_W], M[K.M_OUT_B] = wt(model.mlp.out)
        M[K.M_H0], M[K.M_H1], M[K.M_LOGITS] = buf(mlp), buf(mlp), buf(v)
        M[K.M_COND], M[K.M_F_LAST], M[K.M_MLP], M[K.M_V] = T[-1, K.T_OUT], fl, mlp, v
        M[K.M_GC], M[K.M_HAS_GC], M[K.M_DIM], M[K.M_HIST] = gc, int(cfg.global_cond_classes > 0), dim, model.history
        M[K.M_DEQUANT] = add(dequantize(torch.arange(v), v, cfg.quantization).to(torch.float32).numpy())
        self.T, self.L, self.M = T, L, M
        self.params = np.concatenate(chunks)
        self.arena_size = arena[0]
        self.gc_off = gc
        self.logits_off = int(M[K.M_LOGITS])
        self.hidden_offs = [[int(L[k, l, K.L_H]) for l in range(cfg.rnn_layers)] for k in range(n_tiers)]
        self.cond_offs = [(int(T[k, K.T_OUT]), int(T[k, K.T_RATIO]), int(T[k, K.T_OUT_DIM])) for k in range(n_tiers)]


_CACHE: "weakref.WeakKeyDictionary[torch.nn.Module, tuple[tuple, _Packed]]" = weakref.WeakKeyDictionary()


def packed(model: SampleRNN) -> _Packed:
    """The model's packed weights, rebuilt only when a weight changes."""
    key = _weights_key(model)
    hit = _CACHE.get(model)
    if hit is not None and hit[0] == key:
        return hit[1]
    with torch.no_grad():
        result = _Packed(model)
    _CACHE[model] = (key, result)
    return result


class SampleRNNRunner:
    """`FastRunner` for SampleRNN: `run(n, uniforms, logits=None, last=None)` makes the next n ids [B, n]."""

    def __init__(self, model: SampleRNN, state: Any, batch_size: int, cfg: SamplingConfig,
                 threads: int | None = None):
        reason = _model_reason(model)
        if reason is not None:
            raise Unsupported(reason)
        self.pack = p = packed(model)
        self.state = state
        self.batch_size = b = batch_size
        self.temperature = float(cfg.temperature)
        self.top_k = int(cfg.top_k or 0)
        self.top_p = float(cfg.top_p if cfg.top_p is not None else 1.0)
        self.arena = np.zeros((b, p.arena_size), np.float32)
        self.hist = np.zeros((b, p.history), np.int64)
        self.last = np.zeros(b, np.int64)
        self._check(state)

    def _check(self, state) -> None:
        p, b = self.pack, self.batch_size
        if tuple(state.hist.shape) != (b, p.history) or len(state.hidden) != len(p.T):
            raise RuntimeError("the SampleRNN state does not match the model and batch size")
        for h in state.hidden:
            if not isinstance(h, torch.Tensor) or tuple(h.shape) != (p.layers, b, p.dim):
                raise RuntimeError(f"expected GRU hidden states [{p.layers}, {b}, {p.dim}]")

    def _load(self) -> None:
        """The eager state into the arena (it may have been stepped or replaced since the last chunk)."""
        p, s, a = self.pack, self.state, self.arena
        self._check(s)
        self.hist[:] = s.hist.detach().cpu().numpy()
        for k, (off, r, od) in enumerate(p.cond_offs):
            for l, h in enumerate(p.hidden_offs[k]):
                a[:, h:h + p.dim] = s.hidden[k][l].detach().float().cpu().numpy()
            a[:, off:off + r * od] = s.cond[k + 1].detach().float().cpu().numpy().reshape(self.batch_size, r * od)
        if s.gc is not None:
            a[:, p.gc_off:p.gc_off + p.dim] = s.gc.detach().float().cpu().numpy()

    def _store(self, t: int) -> None:
        """The arena back into the eager state, so `step` can continue from it."""
        p, s, a, b = self.pack, self.state, self.arena, self.batch_size
        s.t = t
        s.hist = torch.from_numpy(self.hist.copy())
        s.hidden = [torch.from_numpy(np.stack([a[:, h:h + p.dim] for h in offs]).copy()) for offs in p.hidden_offs]
        conds = [s.cond[0]]
        for off, r, od in p.cond_offs:
            conds.append(torch.from_numpy(a[:, off:off + r * od].reshape(b, r, od).copy()))
        s.cond = conds

    def run(self, n: int, uniforms: torch.Tensor, logits: torch.Tensor | None = None,
            last: torch.Tensor | None = None) -> torch.Tensor:
        """The next n ids [B, n].  Pass `logits` [B, V] (from `prime`/`step`) to sample the first id from them
        without a step; otherwise the first id comes after stepping the model on `last` (default: the last id
        this runner produced)."""
        from .kernel import srnn_run
        p, b = self.pack, self.batch_size
        self._load()
        first_step = logits is None
        if logits is not None:
            lg = p.logits_off
            self.arena[:, lg:lg + p.vocab] = logits.detach().to(torch.float32).cpu().numpy()
        if last is not None:
            self.last[:] = last.detach().cpu().numpy()
        u = np.ascontiguousarray(uniforms.detach().cpu().numpy().astype(np.float64, copy=False).T)
        if u.shape != (b, n):
            raise ValueError(f"uniforms must be [{n}, {b}], got {tuple(uniforms.shape)}")
        out = np.empty((b, n), np.int64)
        t = srnn_run(p.T, p.L, p.M, p.params, self.arena, self.hist, int(self.state.t), self.last, first_step, u,
                     self.temperature, self.top_k, self.top_p, out)
        self._store(int(t))
        return torch.from_numpy(out)

    def logits(self) -> torch.Tensor:
        """The logits after the last step, [B, V] (a copy), for handing back to the eager path."""
        lg = self.pack.logits_off
        return torch.from_numpy(self.arena[:, lg:lg + self.pack.vocab].copy())


_KERNEL: dict[str, str | None] = {}
_LOCK = threading.Lock()


def _kernel_error() -> str | None:
    """Compile (or load from numba's cache) and run the SampleRNN loop once per process on a tiny model."""
    with _LOCK:
        if "error" not in _KERNEL:
            try:
                import numba  # noqa: F401
                from ..models.samplernn import SampleRNNConfig
                from ..sampling import RandomStream
                with torch.inference_mode(False):
                    model = SampleRNN(SampleRNNConfig(n_classes=4, frame_sizes=[2], dim=2, embed_dim=2,
                                                      mlp_dim=2)).eval()
                with torch.inference_mode():
                    state = model.init_state(1)
                    logits, state = model.prime(torch.zeros(1, 1, dtype=torch.long), state)
                    SampleRNNRunner(model, state, 1, SamplingConfig()).run(3, RandomStream(1, 0).take(3),
                                                                           logits=logits)
                _KERNEL["error"] = None
            except Exception as exc:  # noqa: BLE001  (whatever broke, eager generation still works)
                _KERNEL["error"] = f"the fast SampleRNN kernel does not run here ({type(exc).__name__}: {exc})"
    return _KERNEL["error"]
