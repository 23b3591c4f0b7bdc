"""The hierarchical pair-fusion model's cached step as a fast-path program (mirrors `Hierarchical.step`)."""
from __future__ import annotations

import numpy as np

from ..models.hierarchical import Hierarchical
from .layers import norm
from .lowering import Lowered, np32, register_lowering
from .program import TANH, ProgramBuilder


def lower_hierarchical(model: Hierarchical) -> Lowered:
    cfg = model.config
    pb = ProgramBuilder()
    h = pb.buffer(cfg.n_embd)
    table, head_w, head_b = np32(model.embed.weight), np32(model.head.weight), np32(model.head.bias)
    if cfg.alphabet is not None:  # back to byte ids: zero rows for unknown bytes (never read), -inf logits
        table, head_w, head_b = _by_byte(cfg.alphabet, cfg.vocab_size, table, head_w, head_b)
    pb.embed(h, table)
    for level in model.levels:
        conv = level.conv
        z = pb.buffer(conv.out_channels)
        pb.conv(z, h, np32(conv.weight), None if conv.bias is None else np32(conv.bias), conv.dilation[0])
        h = pb.buffer(conv.out_channels)
        norm(pb, level.norm, h, z, conv.out_channels)
        pb.op(TANH, h, h, conv.out_channels)
    logits = pb.buffer(cfg.vocab_size)
    pb.linear(logits, h, head_w, head_b)
    return Lowered(pb.build(logits, cfg.vocab_size))


def _by_byte(symbols: list[int], vocab_size: int, table: np.ndarray, head_w: np.ndarray,
             head_b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An alphabet model's embedding and head re-indexed by byte id, as `Alphabet.index`/`expand` do."""
    full_table = np.zeros((vocab_size, table.shape[1]), np.float32)
    full_w = np.zeros((vocab_size, head_w.shape[1]), np.float32)
    full_b = np.full(vocab_size, -np.inf, np.float32)
    full_table[symbols], full_w[symbols], full_b[symbols] = table, head_w, head_b
    return full_table, full_w, full_b


register_lowering(Hierarchical, lower_hierarchical,
                  handles={"vocab_size", "alphabet", "n_embd", "levels", "widths",
                           "norm"},  # layernorm/batchnorm (eval)/none via layers.norm; others Unsupported
                  ignores={"dropout": "training", "embed_dropout": "training",
                           "start_id": "prime",  # the eager init_state/prime fill the queues the loop continues
                           "eos_id": "generation"})  # engine.generation ends rows, not the step
