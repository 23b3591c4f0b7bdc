"""Beam search for any protocol model with an end-of-sequence id (the seq2seq family, chiefly).

Each of the B inputs keeps `beam_width` hypotheses; all B·W of them step together as one batch.  After every
step the W best continuations of each input (by summed log-probability) survive, and the decoding state is
reordered to follow them (`reorder_state`: every batch-first tensor in the state is index-selected, so any
family's state works as long as its tensors are batch-first).  A hypothesis that emitted EOS stays finished at
its score.  The winner maximises score / length^length_penalty (1 = mean log-probability per token, 0 = sum).
Beam width 1 is greedy decoding, the same ids as `engine.generate` at temperature 0.
"""
from __future__ import annotations

import dataclasses
from typing import Any

import torch

from .errors import UserError
from .generation import evaluating
from .protocol import AutoregressiveModel


def reorder_state(state: Any, index: torch.Tensor, batch_size: int) -> Any:
    """The state of rows `index` (a new object; tensors whose first dimension is the batch are index-selected)."""
    if isinstance(state, torch.Tensor):
        if state.dim() >= 1 and state.shape[0] == batch_size:
            return state.index_select(0, index.to(state.device))
        return state
    if isinstance(state, (list, tuple)):
        return type(state)(reorder_state(s, index, batch_size) for s in state)
    if isinstance(state, dict):
        return {k: reorder_state(v, index, batch_size) for k, v in state.items()}
    if dataclasses.is_dataclass(state) and not isinstance(state, type):
        return dataclasses.replace(state, **{f.name: reorder_state(getattr(state, f.name), index, batch_size)
                                             for f in dataclasses.fields(state) if f.init})
    return state


def _repeat_cond(cond: Any, n: int) -> Any:
    if cond is None or n == 1:
        return cond
    if hasattr(cond, "repeat_interleave"):
        return cond.repeat_interleave(n) if not isinstance(cond, torch.Tensor) else cond.repeat_interleave(n, 0)
    return cond


@torch.inference_mode()
def beam_search(model: AutoregressiveModel, cond: Any = None, beam_width: int = 4, max_new_tokens: int = 64,
                prompt: torch.Tensor | None = None, batch_size: int | None = None,
                length_penalty: float = 1.0) -> list[list[int]]:
    """Best continuation per input row (ids without the EOS).  `cond` has B rows (e.g. `model.encode(srcs)`)."""
    eos = model.tokens.eos_id
    if eos is None:
        raise UserError(f"beam search needs a family with an end-of-sequence id; {model.family} has none")
    if beam_width < 1 or max_new_tokens < 1:
        raise UserError("beam_width and max_new_tokens must be >= 1")
    with evaluating(model):  # the model's own train/eval mode comes back afterwards
        return _search(model, cond, beam_width, max_new_tokens, prompt, batch_size, length_penalty, eos)


def _search(model, cond, beam_width, max_new_tokens, prompt, batch_size, length_penalty, eos) -> list[list[int]]:
    if batch_size is None:
        batch_size = cond.memory.shape[0] if hasattr(cond, "memory") else (len(cond) if cond is not None else 1)
    B, W = batch_size, beam_width
    if prompt is None:
        prompt = torch.full((B, 1), model.tokens.start_id, dtype=torch.long)
    prompt = torch.as_tensor(prompt, dtype=torch.long).reshape(B, -1).to(model.device)
    state = model.init_state(B * W, _repeat_cond(cond, W), model.device)
    logits, state = model.prime(prompt.repeat_interleave(W, 0), state)

    scores = torch.full((B, W), float("-inf"), device=logits.device)
    scores[:, 0] = 0.0  # all beams start identical: expand only the first
    tokens = torch.zeros(B * W, 0, dtype=torch.long, device=logits.device)
    finished = torch.zeros(B * W, dtype=torch.bool, device=logits.device)
    lengths = torch.zeros(B * W, device=logits.device)
    base = (torch.arange(B, device=logits.device) * W).unsqueeze(1)
    for _ in range(max_new_tokens):
        logp = torch.log_softmax(logits.float(), dim=-1)
        vocab = logp.shape[-1]
        stay = torch.full_like(logp, float("-inf"))
        stay[:, eos] = 0.0
        logp = torch.where(finished.unsqueeze(1), stay, logp)
        cand = (scores.reshape(-1, 1) + logp).reshape(B, W * vocab)
        scores, flat = cand.topk(W, dim=1)
        rows = (base + flat // vocab).reshape(-1)
        new = (flat % vocab).reshape(-1)
        lengths = lengths[rows] + (~finished[rows]).float()
        finished = finished[rows] | (new == eos)
        tokens = torch.cat([tokens[rows], new.unsqueeze(1)], dim=1)
        if bool(finished.all()):
            break
        logits, state = model.step(new, reorder_state(state, rows, B * W))

    norm = scores.reshape(-1) / lengths.clamp(min=1).pow(length_penalty)
    best = norm.reshape(B, W).argmax(dim=1) + base.squeeze(1)
    out = []
    for r in best.tolist():
        ids = tokens[r].tolist()
        out.append(ids[:ids.index(eos)] if eos in ids else ids)
    return out
