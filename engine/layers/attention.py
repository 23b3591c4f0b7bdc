"""Attention over encoder outputs for the RNN decoder of the seq2seq family.

additive (Bahdanau et al. 2015): score(q, m) = v · tanh(W_q q + W_k m)
dot (Luong et al. 2015, "general"): score(q, m) = q · (W_k m) / sqrt(H)
The key projection W_k m depends only on the source, so it is computed once per source (`keys`) and reused by
every decoding step.  Padding positions of the source get zero weight.
"""
from __future__ import annotations

import math

import torch
from torch import nn

ATTENTIONS = ("additive", "dot")


class Attention(nn.Module):
    def __init__(self, kind: str, query_size: int, memory_size: int, attn_size: int | None = None):
        super().__init__()
        if kind not in ATTENTIONS:
            raise ValueError(f"attention must be one of {ATTENTIONS}, got {kind!r}")
        self.kind = kind
        attn_size = attn_size or query_size
        if kind == "additive":
            self.W_q = nn.Linear(query_size, attn_size, bias=False)
            self.W_k = nn.Linear(memory_size, attn_size)
            self.v = nn.Linear(attn_size, 1, bias=False)
        else:
            self.W_k = nn.Linear(memory_size, query_size, bias=False)

    def keys(self, memory: torch.Tensor) -> torch.Tensor:  # [B, S, M] -> [B, S, A]
        return self.W_k(memory)

    def forward(self, query: torch.Tensor, keys: torch.Tensor, memory: torch.Tensor,
                mask: torch.Tensor) -> torch.Tensor:
        """query [B, T, H], keys [B, S, A], memory [B, S, M], mask [B, S] (True = real) -> context [B, T, M]."""
        if self.kind == "additive":
            scores = self.v(torch.tanh(self.W_q(query).unsqueeze(2) + keys.unsqueeze(1))).squeeze(-1)  # [B, T, S]
        else:
            scores = query @ keys.transpose(1, 2) / math.sqrt(query.shape[-1])
        scores = scores.masked_fill(~mask.unsqueeze(1), float("-inf"))
        return torch.softmax(scores, dim=-1) @ memory
