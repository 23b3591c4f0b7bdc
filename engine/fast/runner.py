"""Run a model's fast program on a live generation state, a chunk of tokens per call.

The runner packs the state's convolution queues into one time-major float32 array and puts strided torch views
of it back into the state, so the eager `step`/`prime` and the compiled loop read and write the same memory
and can take turns: a queue the eager path replaced (e.g. `prime` returns new tensors) is copied back in at the
next chunk.  Batch rows are independent, so with several torch threads and a batch > 1 the rows are split into
blocks that run on separate threads (the kernel releases the GIL).
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import torch

from ..layers.conv_queue import CausalConv1d
from ..sampling import SamplingConfig
from .kernel import run_rows
from .lowering import Lowered, lowered

_POOL: ThreadPoolExecutor | None = None


def _pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="fast-gen")
    return _POOL


def _time_major() -> bool:
    """Whether engine.layers.conv_queue stores a queue as [B, length, C] (else [B, C, length]); the packed memory is
    time-major either way, only the view's strides differ."""
    probe = CausalConv1d(2, 1, 4).new_queue(1)
    return tuple(probe.shape) == (1, 3, 2)


class FastRunner:
    """Owns the arena and packed queues of one generation; `run` makes the next n ids."""

    def __init__(self, model: torch.nn.Module, state: Any, batch_size: int, cfg: SamplingConfig,
                 threads: int | None = None):
        self.lowered: Lowered = lowered(model)
        self.program = p = self.lowered.program
        self.state = state
        self.batch_size = b = batch_size
        self.temperature = float(cfg.temperature)
        self.top_k = int(cfg.top_k or 0)
        self.top_p = float(cfg.top_p if cfg.top_p is not None else 1.0)
        self.threads = max(1, min(b, threads if threads is not None else torch.get_num_threads()))
        self.arena = np.zeros((b, p.arena_size), np.float32)
        self.queues = np.zeros((b, p.queue_size), np.float32)
        packed = torch.from_numpy(self.queues)
        if _time_major():
            self.views = [packed.as_strided((b, n, c), (p.queue_size, c, 1), off)
                          for (c, n), off in zip(p.queue_shapes, p.queue_offsets)]
        else:
            self.views = [packed.as_strided((b, c, n), (p.queue_size, 1, c), off)
                          for (c, n), off in zip(p.queue_shapes, p.queue_offsets)]
        self.last = np.zeros(b, np.int64)
        self._sync_queues()

    def _sync_queues(self) -> None:
        """Make every state queue one of our views (copying in any the eager path replaced)."""
        current = self.lowered.queues(self.state)
        if len(current) != len(self.views):
            raise RuntimeError(f"state has {len(current)} queues, the fast program expects {len(self.views)}")
        for i, (q, view) in enumerate(zip(current, self.views)):
            if q is not view:
                if tuple(q.shape) != tuple(view.shape):
                    raise RuntimeError(f"queue {i} has shape {tuple(q.shape)}, expected {tuple(view.shape)}")
                view.copy_(q)
                self.lowered.set_queue(self.state, i, view)

    def run(self, n: int, uniforms: torch.Tensor, logits: torch.Tensor | None = None,
            last: torch.Tensor | None = None) -> torch.Tensor:
        """The next n ids [B, n].  Pass `logits` [B, V] (from `prime`/`step`) to sample the first id from them
        without a step; otherwise the first id comes after stepping the model on `last` (default: the last id
        this runner produced)."""
        p, b = self.program, self.batch_size
        self._sync_queues()
        for name, value in self.lowered.constants(self.state).items():
            off = p.constants[name]
            self.arena[:, off:off + value.shape[1]] = value.detach().to(torch.float32).cpu().numpy()
        first_step = logits is None
        if logits is not None:
            self.arena[:, p.logits:p.logits + p.vocab_size] = logits.detach().to(torch.float32).cpu().numpy()
        if last is not None:
            self.last[:] = last.detach().cpu().numpy()
        u = np.ascontiguousarray(uniforms.detach().cpu().numpy().astype(np.float64, copy=False).T)
        if u.shape != (b, n):
            raise ValueError(f"uniforms must be [{n}, {b}], got {tuple(uniforms.shape)}")
        out = np.empty((b, n), np.int64)
        t0 = int(self.lowered.get_t(self.state))
        values, left, weight = self._step_table(t0, n)
        args = (self.temperature, self.top_k, self.top_p, p.logits, p.vocab_size)
        if self.threads == 1:
            t_end = run_rows(p.ops, p.params, self.arena, self.queues, t0, self.last, first_step, u, *args,
                             values, left, weight, p.step_region[0], out)
        else:
            bounds = np.linspace(0, b, self.threads + 1).astype(int)
            futures = [_pool().submit(run_rows, p.ops, p.params, self.arena[lo:hi], self.queues[lo:hi], t0,
                                      self.last[lo:hi], first_step, u[lo:hi], *args, values[lo:hi], left[lo:hi],
                                      weight[lo:hi], p.step_region[0], out[lo:hi])
                       for lo, hi in zip(bounds[:-1], bounds[1:]) if hi > lo]
            t_end = [f.result() for f in futures][0]
        self.lowered.set_t(self.state, int(t_end))
        return torch.from_numpy(out)

    def _step_table(self, t0: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The chunk's per-step table (`Lowered.step_constants`) as the kernel's arrays; width 0 when none."""
        b, width = self.batch_size, self.program.step_region[1]
        table = self.lowered.step_constants(self.state, t0, n)
        if table is None:
            return np.zeros((b, 2, 0), np.float32), np.zeros((b, n), np.int64), np.zeros((b, n), np.float32)
        values = np.ascontiguousarray(table.values.detach().to("cpu", torch.float32).numpy())
        left = np.ascontiguousarray(table.left.detach().to("cpu", torch.int64).numpy())
        weight = np.ascontiguousarray(table.weight.detach().to("cpu", torch.float32).numpy())
        if values.ndim != 3 or (values.shape[0], values.shape[2]) != (b, width) or left.shape != (b, n) \
                or weight.shape != (b, n):
            raise RuntimeError(f"per-step table {values.shape}, {left.shape}, {weight.shape} does not fit {b} rows, "
                               f"{n} steps and a region of {width}")
        if left.min() < 0 or left.max() > values.shape[1] - 2:
            raise RuntimeError(f"per-step rows {left.min()}..{left.max() + 1} outside a table of {values.shape[1]}")
        return values, left, weight

    def logits(self) -> torch.Tensor:
        """The logits after the last step, [B, V] (a copy), for handing back to the eager path."""
        p = self.program
        return torch.from_numpy(self.arena[:, p.logits:p.logits + p.vocab_size].copy())
