"""The Speed tab: the Fast WaveNet timing experiment, run live on this machine.

For each L in the chosen range, a random (untrained: speed does not depend on the weights) WaveNet of 2 blocks x
L layers (residual 32, gate 64, skip 128) generates after a prompt that fills its receptive field, once with
`engine.generate_naive` (recompute the whole receptive field for every sample: cost grows as 2^L) and once with
`engine.generate` (convolution queues: cost grows as L), both in PyTorch, and, where engine.fast serves it,
the same queues in the compiled loop.  Time per sample is the cost of n more samples (priming cancels out),
best of three runs.  The naive method gets fewer samples at large L (a time budget per point).
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


def _wall(model, prompt, method: str, n: int) -> float:
    kw = dict(max_new_tokens=n, temperature=1.0, seed=0, chunk_size=n)
    if method == "naive":
        gen = engine.generate_naive(model, prompt, **kw)
    else:
        gen = engine.generate(model, prompt, backend="fast" if method == "cached fast" else "eager", **kw)
    t = time.perf_counter()
    for _ in gen:
        pass
    return time.perf_counter() - t


def time_method(model: engine.AutoregressiveModel, prompt: torch.Tensor, method: str, samples: int,
                budget_s: float, min_timed_s: float = 0.05, max_samples: int = 200_000,
                repeats: int = 3) -> tuple[float, int]:
    """(seconds per sample, samples timed) for one method.

    The cost of n more samples is T(2n) - T(n): priming (one forward over the receptive field) cancels out.
    Each T is the best of `repeats` runs, since other work on the machine can only add time.  n grows until
    T(n) minus priming is at least `min_timed_s` (so a fast method is not lost in timer noise); the naive
    method gets fewer samples at large L so a point stays within about `budget_s`.
    """
    if method == "cached fast":
        _wall(model, prompt, method, 2)  # compile / warm the kernel outside the timing
    one = min(_wall(model, prompt, method, 1) for _ in range(2))
    n = samples
    if method == "naive":  # one naive sample costs about as much as priming: a forward over the field
        n = int(max(1, min(samples, budget_s / (3 * repeats * max(one, 1e-6)))))
    else:
        while n < max_samples and _wall(model, prompt, method, n) - one < min_timed_s:  # priming excluded
            n = min(max_samples, n * 4)
    t_n = min(_wall(model, prompt, method, n) for _ in range(repeats))
    t_2n = min(_wall(model, prompt, method, 2 * n) for _ in range(repeats))
    return max(t_2n - t_n, 1e-9) / n, n


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
