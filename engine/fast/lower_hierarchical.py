"""The hierarchical pair-fusion model's cached step as a fast-path program (mirrors `Hierarchical.step`)."""
from __future__ import annotations

from ..models.hierarchical import Hierarchical
from .layers import norm
from .lowering import Lowered, np32, register_lowering
from .program import TANH, ProgramBuilder


def lower_hierarchical(model: Hierarchical) -> Lowered:
    cfg = model.config
    pb = ProgramBuilder()
    h = pb.buffer(cfg.n_embd)
    pb.embed(h, np32(model.embed.weight))
    for level in model.levels:
        conv = level.conv
        z = pb.buffer(conv.out_channels)
        pb.conv(z, h, np32(conv.weight), None if conv.bias is None else np32(conv.bias), conv.dilation[0])
        h = pb.buffer(conv.out_channels)
        norm(pb, level.norm, h, z, conv.out_channels)
        pb.op(TANH, h, h, conv.out_channels)
    logits = pb.buffer(cfg.vocab_size)
    pb.linear(logits, h, np32(model.head.weight), np32(model.head.bias))
    return Lowered(pb.build(logits, cfg.vocab_size))


register_lowering(Hierarchical, lower_hierarchical)
