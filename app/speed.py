"""The Speed tab: the Fast WaveNet timing experiment, run live on this machine.

For each L in the chosen range, a random (untrained: speed does not depend on the weights) WaveNet of 2 blocks x
L layers (residual 32, gate 64, skip 128) generates after a prompt that fills its receptive field, once with
`engine.generate_naive` (recompute the whole receptive field for every sample: cost grows as 2^L) and once with
`engine.generate` (convolution queues: cost grows as L).  Time per sample excludes the first sample (priming).
Each method gets a sample count and a time budget per point, so the largest L stays quick.
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
METHODS = ("naive", "cached")


@dataclass
class SpeedRow:
    layers: int
    method: str
    ms_per_sample: float
    samples: int
    receptive_field: int


def time_method(model: engine.AutoregressiveModel, prompt: torch.Tensor, method: str, samples: int,
                budget_s: float) -> tuple[float, int]:
    """(seconds per sample after the first, samples timed) for one method; stops early at the time budget."""
    fn = engine.generate_naive if method == "naive" else engine.generate
    gen = fn(model, prompt, max_new_tokens=samples + 1, temperature=1.0, seed=0, chunk_size=1)
    t_first = None
    count = 0
    try:
        for _ in gen:
            now = time.perf_counter()
            if t_first is None:
                t_first = now
                continue
            count += 1
            if count >= 2 and now - t_first > budget_s:
                break
    finally:
        gen.close()
    return (time.perf_counter() - t_first) / max(count, 1), count


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
    rows: list[SpeedRow] = []
    yield rows, f"Timing L = {lo}…{hi} on {torch.get_num_threads()} thread(s)…"
    for layers in range(lo, hi + 1):
        with torch.random.fork_rng():
            torch.manual_seed(layers)
            model = engine.build_model("wavenet", layers_per_block=layers, **ARCH).eval()
            field = model.receptive_field
            prompt = torch.randint(0, model.tokens.vocab_size, (1, field))
        for method in METHODS:
            if stop is not None and stop.is_set():
                yield rows, f"Stopped after {len(rows)} measurements."
                return
            sec, count = time_method(model, prompt, method, n, budget_s)
            rows.append(SpeedRow(layers, method, sec * 1e3, count, field))
            yield rows, f"L = {layers}: {method} {sec * 1e3:.3f} ms/sample ({count} samples)"
    yield rows, f"Done: L = {lo}…{hi}. " + speedup_line(rows)


def speedup_line(rows: list[SpeedRow]) -> str:
    """'naive ÷ cached = 41× at L=10' for the largest L measured with both methods."""
    by = {(r.layers, r.method): r.ms_per_sample for r in rows}
    both = [L for (L, m) in by if m == "naive" and (L, "cached") in by]
    if not both:
        return ""
    L = max(both)
    return f"At L = {L}, naive ÷ cached = {by[(L, 'naive')] / by[(L, 'cached')]:.1f}×."


def table(rows: list[SpeedRow]) -> list[list]:
    """Rows for the results table: L, receptive field, naive ms, cached ms, speed-up."""
    by: dict[int, dict] = {}
    for r in rows:
        by.setdefault(r.layers, {"field": r.receptive_field})[r.method] = r.ms_per_sample
    out = []
    for L in sorted(by):
        d = by[L]
        naive, cached = d.get("naive"), d.get("cached")
        ratio = naive / cached if naive and cached else None
        out.append([L, d["field"], _fmt(naive), _fmt(cached), f"{ratio:.1f}×" if ratio else ""])
    return out


def _fmt(x: float | None) -> str:
    return "" if x is None else f"{x:.3f}"
