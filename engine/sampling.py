"""The one sampler every generation path shares.

Randomness comes from a `RandomStream`: uniforms drawn from a seeded `torch.Generator` in fixed blocks, one
row per generated token.  The eager cached path, the naive path and the compiled fast path all consume the
same rows in the same order, so the same seed gives the same ids on every path.  A token is drawn by inverting
the CDF of the (temperature-scaled, top-k/top-p filtered) distribution at that uniform.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from .errors import UserError

MAX_TOP_K = 1_000_000  # far above any vocabulary here; a bigger number is a typo, not a setting


@dataclass(frozen=True)
class SamplingConfig:
    """temperature 0 = greedy; top_k None/0 = off; top_p 1.0 = off."""

    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None

    def __post_init__(self) -> None:
        t = self.temperature
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or t < 0:
            raise UserError(f"temperature must be a finite number >= 0 (0 = greedy), got {t!r}")
        if t > 1e4:
            raise UserError(f"temperature must be at most 10000, got {t!r}")
        k = self.top_k
        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or not 0 <= k <= MAX_TOP_K):
            raise UserError(f"top_k must be a whole number from 0 to {MAX_TOP_K} (0 = off), got {k!r}")
        p = self.top_p
        if p is not None and (isinstance(p, bool) or not isinstance(p, (int, float)) or not math.isfinite(p)
                              or not 0 < p <= 1):
            raise UserError(f"top_p must be in (0, 1] (1 = off), got {p!r}")


class RandomStream:
    """Seeded uniforms, handed out one row [B] per token, drawn in blocks for speed."""

    block = 1024

    def __init__(self, batch_size: int, seed: int | None = None):
        self.generator = torch.Generator()
        if seed is None:
            self.generator.seed()
        else:
            self.generator.manual_seed(int(seed))
        self.batch_size = batch_size
        self._buf = torch.empty(0, batch_size, dtype=torch.float64)
        self._pos = 0

    def take(self, n: int) -> torch.Tensor:
        """The next n rows, [n, B] float64 in [0, 1)."""
        rows = []
        while n > 0:
            if self._pos == len(self._buf):
                self._buf = torch.rand(self.block, self.batch_size, generator=self.generator, dtype=torch.float64)
                self._pos = 0
            m = min(n, len(self._buf) - self._pos)
            rows.append(self._buf[self._pos:self._pos + m])
            self._pos += m
            n -= m
        return torch.cat(rows) if len(rows) != 1 else rows[0]

    def next(self) -> torch.Tensor:
        return self.take(1)[0]


def filtered_probs(logits: torch.Tensor, cfg: SamplingConfig) -> torch.Tensor:
    """Probabilities [B, V] (float64) after temperature, top-k and top-p; masked ids have probability 0."""
    logits = logits.double()
    if cfg.temperature == 0:
        probs = torch.zeros_like(logits)
        probs.scatter_(-1, logits.argmax(-1, keepdim=True), 1.0)
        return probs
    probs = torch.softmax(logits if cfg.temperature == 1 else logits / cfg.temperature, dim=-1)
    if cfg.top_k and cfg.top_k < probs.shape[-1]:
        kth = torch.topk(probs, cfg.top_k, dim=-1).values[:, -1:]
        probs = torch.where(probs >= kth, probs, torch.zeros_like(probs))
    if cfg.top_p is not None and cfg.top_p < 1:
        sorted_p, order = torch.sort(probs, dim=-1, descending=True, stable=True)  # ties: lower id first
        cum = torch.cumsum(sorted_p, dim=-1)
        before = cum - sorted_p  # mass strictly above each id
        # the total is the running sum's last value, as the fast kernel computes it: a cut exactly on an edge
        # (all ids tied) then falls on the same side on both paths
        keep_sorted = before < cfg.top_p * cum[..., -1:]
        keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
        probs = torch.where(keep, probs, torch.zeros_like(probs))
    return probs


def sample(logits: torch.Tensor, cfg: SamplingConfig, uniforms: torch.Tensor) -> torch.Tensor:
    """Draw ids [B] from logits [B, V] with one uniform [B] per row (inverse CDF)."""
    probs = filtered_probs(logits.detach().cpu(), cfg)
    cdf = torch.cumsum(probs, dim=-1)
    target = uniforms.reshape(-1, 1) * cdf[:, -1:]
    # the first id whose cdf exceeds the target always has probability > 0 ...
    ids = torch.searchsorted(cdf, target, right=True).clamp_(max=probs.shape[-1] - 1)
    # ... unless rounding put the target at the very top of the cdf: then take the last id that is allowed
    top = probs.gather(-1, ids).squeeze(-1) == 0
    ids = ids.squeeze(-1)
    if bool(top.any()):
        last_allowed = probs.shape[-1] - 1 - torch.argmax((probs.flip(-1) > 0).to(torch.int8), dim=-1)
        ids = torch.where(top, last_allowed, ids)
    return ids.to(logits.device)
