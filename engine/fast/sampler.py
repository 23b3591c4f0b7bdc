"""`engine.sampling.sample` for one row, compiled: the same float64 inverse-CDF math, op for op.

temperature -> softmax -> top-k (keep every prob >= the k-th largest, ties included) -> top-p (keep ids whose
mass strictly above them, in descending order with ties by lower id, is < top_p * total) -> cdf = running sum ->
first id whose cdf exceeds u * cdf[-1], clipped to the last id with nonzero probability.  Temperature 0 is the
argmax (the first maximum, as torch.argmax).  Given the same logits and uniform it returns the same id as the
torch sampler; the only difference is the order of a few float64 sums (about 1e-16), which matters only if a
uniform lands exactly on a bucket edge.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True, nogil=True, error_model="numpy")
def sample_row(logits, temperature, top_k, top_p, u, probs, scratch):
    """logits: float32 [V]; probs, scratch: float64 [V] work space.  top_k 0 = off, top_p >= 1 = off."""
    v = logits.shape[0]
    if temperature == 0.0:
        best = 0
        for j in range(1, v):
            if logits[j] > logits[best]:
                best = j
        return best
    m = -np.inf
    for j in range(v):
        x = np.float64(logits[j]) / temperature
        probs[j] = x
        if x > m:
            m = x
    s = 0.0
    for j in range(v):
        e = math.exp(probs[j] - m)
        probs[j] = e
        s += e
    inv = 1.0 / s
    for j in range(v):
        probs[j] = probs[j] * inv
    if top_k > 0 and top_k < v:
        for j in range(v):
            scratch[j] = probs[j]
        scratch.sort()
        kth = scratch[v - top_k]
        for j in range(v):
            if not probs[j] >= kth:
                probs[j] = 0.0
    if top_p < 1.0:
        for j in range(v):
            scratch[j] = -probs[j]
        order = np.argsort(scratch, kind="mergesort")  # descending probs, ties by lower id (stable)
        total = 0.0
        for j in range(v):
            total += probs[order[j]]
        limit = top_p * total
        c = 0.0
        keep = np.empty(v, np.bool_)
        for j in range(v):
            p = probs[order[j]]
            c += p
            keep[j] = (c - p) < limit
        for j in range(v):
            if not keep[j]:
                probs[order[j]] = 0.0
    c = 0.0
    last = -1
    for j in range(v):
        c += probs[j]
        scratch[j] = c
        if probs[j] > 0.0:
            last = j
    target = u * scratch[v - 1]
    lo = 0  # first index with cdf > target (searchsorted right)
    hi = v
    while lo < hi:
        mid = (lo + hi) // 2
        if scratch[mid] > target:
            hi = mid
        else:
            lo = mid + 1
    if last >= 0 and lo > last:
        lo = last
    if lo >= v:
        lo = v - 1
    return lo
