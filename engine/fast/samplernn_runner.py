"""SampleRNN (GRU tiers) on the fast path: weights packed for `srnn_run` in engine/fast/kernel.py, and a runner
that continues an eager generation state.

SampleRNN's step is not a chain of causal convolutions, so it does not go through `Program`: the kernel has its
own loop (frame tiers at their boundaries, then the sample-level MLP) driven by small offset tables built here.
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
from .lowering import Unsupported, _weights_key, weights_reason


def serves(model: Any) -> bool:
    """Whether `model` is a SampleRNN (this module's business, supported or not)."""
    return isinstance(model, SampleRNN)


def why_not(model: SampleRNN) -> str | None:
    """None when the compiled SampleRNN loop serves this model, else the reason."""
    return _model_reason(model) or _kernel_error()


def _model_reason(model: SampleRNN) -> str | None:
    if model.config.cell != "gru":
        return f"the fast path compiles GRU SampleRNN tiers only; this model uses {model.config.cell.upper()}"
    return weights_reason(model)


class _Packed:
    """Flat float32 parameters, offset tables (see kernel.py) and the arena size for one model."""

    def __init__(self, model: SampleRNN):
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
        T = np.zeros((n_tiers, 12), np.int64)
        L = np.zeros((n_tiers, cfg.rnn_layers, 8), np.int64)
        for k, tier in enumerate(model.tiers):
            T[k, 0], T[k, 1], T[k, 2] = tier.frame_size, tier.ratio, tier.out_dim
            T[k, 3], T[k, 4] = wt(tier.proj)
            T[k, 5], T[k, 6] = wt(tier.upsample)
            T[k, 7], T[k, 8] = buf(tier.frame_size), buf(dim)
            for l in range(cfg.rnn_layers):
                rnn = tier.rnn
                L[k, l, 0] = add(getattr(rnn, f"weight_ih_l{l}").detach().float().t().numpy())
                L[k, l, 1] = add(getattr(rnn, f"bias_ih_l{l}").detach().float().numpy())
                L[k, l, 2] = add(getattr(rnn, f"weight_hh_l{l}").detach().float().t().numpy())
                L[k, l, 3] = add(getattr(rnn, f"bias_hh_l{l}").detach().float().numpy())
                L[k, l, 4], L[k, l, 5], L[k, l, 6] = buf(dim), buf(3 * dim), buf(3 * dim)
                L[k, l, 7] = T[k, 8] if l == 0 else L[k, l - 1, 4]
            T[k, 9] = buf(tier.ratio * tier.out_dim)
            T[k, 10] = T[k - 1, 9] if k else -1
            T[k, 11] = model.tiers[k - 1].frame_size if k else 0
        fl, e = cfg.frame_sizes[-1], cfg.embed_dim
        w = model.mlp.inp.weight.detach().double()  # [mlp, fl * E]
        emb = model.mlp.embed.weight.detach().double()  # [V, E]
        table = torch.stack([emb @ w[:, j * e:(j + 1) * e].t() for j in range(fl)]).float().numpy()
        M = np.zeros(18, np.int64)
        M[0] = add(table)
        M[1] = add(model.mlp.inp.bias.detach().float().numpy())
        M[2], M[3] = wt(model.mlp.hidden)
        M[4], M[5] = wt(model.mlp.out)
        M[6], M[7], M[8] = buf(mlp), buf(mlp), buf(v)
        M[9], M[10], M[11], M[12] = T[-1, 9], fl, mlp, v
        M[13], M[14], M[15], M[16] = gc, int(cfg.global_cond_classes > 0), dim, model.history
        M[17] = add(dequantize(torch.arange(v), v, cfg.quantization).to(torch.float32).numpy())
        self.T, self.L, self.M = T, L, M
        self.params = np.concatenate(chunks)
        self.arena_size = arena[0]
        self.gc_off = gc


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
        for k in range(len(p.T)):
            for l in range(p.layers):
                off = p.L[k, l, 4]
                a[:, off:off + p.dim] = s.hidden[k][l].detach().float().cpu().numpy()
            off, n = p.T[k, 9], p.T[k, 1] * p.T[k, 2]
            a[:, off:off + n] = s.cond[k + 1].detach().float().cpu().numpy().reshape(self.batch_size, n)
        if s.gc is not None:
            a[:, p.gc_off:p.gc_off + p.dim] = s.gc.detach().float().cpu().numpy()

    def _store(self, t: int) -> None:
        """The arena back into the eager state, so `step` can continue from it."""
        p, s, a, b = self.pack, self.state, self.arena, self.batch_size
        s.t = t
        s.hist = torch.from_numpy(self.hist.copy())
        s.hidden = [torch.from_numpy(np.stack([a[:, p.L[k, l, 4]:p.L[k, l, 4] + p.dim]
                                               for l in range(p.layers)]).copy()) for k in range(len(p.T))]
        conds = [s.cond[0]]
        for k in range(len(p.T)):
            off, r, od = p.T[k, 9], p.T[k, 1], p.T[k, 2]
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
            lg = p.M[8]
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
        lg = self.pack.M[8]
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
