"""The Speed tab: the Fast WaveNet timing experiment, run live on this machine.

For each L in the chosen range, a random (untrained: speed does not depend on the weights) WaveNet of 2 blocks x
L layers (residual 32, gate 64, skip 128) generates after a prompt that fills its receptive field, once with
`engine.generate_naive` (recompute the whole receptive field for every sample: cost grows as 2^L) and once with
`engine.generate` (convolution queues: cost grows as L), both in PyTorch, and, where engine.fast serves it,
the same queues in the compiled loop.  Time per sample is the median time between generated chunks (priming
excluded), which stalls from other work on the machine do not move.  The naive method stops early at large L
(a time budget per point).
"""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import torch

import engine

from .errors import UserError
from .limits import Limits

ARCH = dict(blocks=2, residual_channels=32, gate_channels=64, skip_channels=128)
METHODS = ("naive", "cached", "cached fast")  # recompute; convolution queues in PyTorch; queues compiled (numba)


@dataclass
class SpeedRow:
    layers: int
    method: str
    ms_per_sample: float
    samples: int
    receptive_field: int


def available_methods() -> tuple[str, ...]:
    """The compiled path is shown only where engine.fast serves a WaveNet on this machine."""
    probe = engine.build_model("wavenet", layers_per_block=1, **ARCH)
    return METHODS if engine_fast_why_not(probe) is None else METHODS[:2]


def engine_fast_why_not(model) -> str | None:
    try:
        from engine.fast import why_not
    except ImportError as e:
        return str(e)
    return why_not(model)


def time_method(model: engine.AutoregressiveModel, prompt: torch.Tensor, method: str, samples: int,
                budget_s: float) -> tuple[float, int]:
    """(seconds per sample, samples timed) for one method: the median gap between chunks, over the chunk size.

    Chunks are 1 sample (16 for the compiled loop, which runs a chunk per call); the first chunk, which carries
    the priming pass, only starts the clock.  The median ignores the stalls other work on the machine causes.
    The naive method stops at about `budget_s` (with at least two gaps), so large L stays quick.
    """
    chunk = 16 if method == "cached fast" else 1
    n = samples * chunk
    kw = dict(max_new_tokens=n + chunk, temperature=1.0, seed=0, chunk_size=chunk)
    if method == "naive":
        gen = engine.generate_naive(model, prompt, **kw)
    else:
        backend = "fast" if method == "cached fast" else "eager"
        if backend == "fast":  # compile / warm the kernel outside the timing
            for _ in engine.generate(model, prompt, max_new_tokens=2 * chunk, chunk_size=chunk, backend="fast"):
                pass
        gen = engine.generate(model, prompt, backend=backend, **kw)
    stamps: list[float] = []
    try:
        for _ in gen:
            stamps.append(time.perf_counter())
            if len(stamps) >= 3 and stamps[-1] - stamps[0] > budget_s:
                break
    finally:
        gen.close()
    gaps = sorted(b - a for a, b in zip(stamps, stamps[1:]))
    median = gaps[len(gaps) // 2] if len(gaps) % 2 else (gaps[len(gaps) // 2 - 1] + gaps[len(gaps) // 2]) / 2
    return median / chunk, len(gaps) * chunk


def check_range(l_min, l_max, samples, limits: Limits) -> tuple[int, int, int]:
    try:
        lo, hi, n = int(l_min), int(l_max), int(samples)
    except (TypeError, ValueError, OverflowError):
        raise UserError("Layers and samples must be whole numbers.") from None
    if not 1 <= lo <= hi <= limits.speed_max_layers:
        raise UserError(f"Layers must satisfy 1 <= from <= to <= {limits.speed_max_layers}, got {lo}..{hi}")
    if not 2 <= n <= limits.speed_tokens:
        raise UserError(f"Samples per point must be 2..{limits.speed_tokens}, got {n}")
    return lo, hi, n


def run(l_min, l_max, samples, limits: Limits, stop: threading.Event | None = None,
        budget_s: float = 3.0) -> Iterator[tuple[list[SpeedRow], str]]:
    """Yield (all rows so far, status) after every measurement."""
    lo, hi, n = check_range(l_min, l_max, samples, limits)
    methods = available_methods()
    rows: list[SpeedRow] = []
    yield rows, f"Timing L = {lo}…{hi} on {torch.get_num_threads()} thread(s)…"
    for layers in range(lo, hi + 1):
        with torch.random.fork_rng():
            torch.manual_seed(layers)
            model = engine.build_model("wavenet", layers_per_block=layers, **ARCH).eval()
            field = model.receptive_field
            prompt = torch.randint(0, model.tokens.vocab_size, (1, field))
        for method in methods:
            if stop is not None and stop.is_set():
                yield rows, f"Stopped after {len(rows)} measurements."
                return
            sec, count = time_method(model, prompt, method, n, budget_s)
            rows.append(SpeedRow(layers, method, sec * 1e3, count, field))
            yield rows, f"L = {layers}: {method} {sec * 1e3:.3f} ms/sample ({count} samples)"
    yield rows, f"Done: L = {lo}…{hi}. " + speedup_line(rows)


def speedup_line(rows: list[SpeedRow]) -> str:
    """'At L = 10, naive ÷ cached = 41×, naive ÷ cached fast = 900×.' for the largest L with a naive time."""
    by = {(r.layers, r.method): r.ms_per_sample for r in rows}
    both = [L for (L, m) in by if m == "naive" and (L, "cached") in by]
    if not both:
        return ""
    L = max(both)
    parts = [f"naive ÷ {m} = {by[(L, 'naive')] / by[(L, m)]:.1f}×" for m in METHODS[1:] if (L, m) in by]
    return f"At L = {L}, " + ", ".join(parts) + "."


def table(rows: list[SpeedRow]) -> list[list]:
    """Rows for the results table: L, receptive field, ms per sample of each method, speed-ups over naive."""
    by: dict[int, dict] = {}
    for r in rows:
        by.setdefault(r.layers, {"field": r.receptive_field})[r.method] = r.ms_per_sample
    out = []
    for L in sorted(by):
        d = by[L]
        naive = d.get("naive")
        cells = [L, d["field"]] + [_fmt(d.get(m)) for m in METHODS]
        cells += [f"{naive / d[m]:.1f}×" if naive and d.get(m) else "" for m in METHODS[1:]]
        out.append(cells)
    return out


TABLE_HEADERS = ["L", "receptive field", "naive ms", "cached ms", "cached fast ms", "naive ÷ cached",
                 "naive ÷ cached fast"]


def _fmt(x: float | None) -> str:
    return "" if x is None else f"{x:.4f}"
