"""Learning rate: linear warm-up, then cosine decay to `min_lr_ratio * lr`.

Progress is the larger of steps done / max_steps and time spent / the time budget, so a run stopped by
`--minutes` still ends its schedule at the low learning rate instead of being cut off mid-decay.
"""
from __future__ import annotations

import math


def progress(step: int, max_steps: int, elapsed_s: float, budget_s: float | None) -> float:
    p = step / max(max_steps, 1)
    if budget_s:
        p = max(p, elapsed_s / budget_s)
    return min(p, 1.0)


def learning_rate(step: int, frac: float, lr: float, warmup_steps: int, min_lr_ratio: float) -> float:
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    return lr * (min_lr_ratio + (1 - min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * frac)))
