"""The ByteNet decoder's cached step as a fast-path program (mirrors `ByteNet.step` block by block)."""
from __future__ import annotations

from ..models.bytenet import ByteNet
from ..layers.bytenet import MultiplicativeBlock, ResidualBlock
from .layers import norm
from .lowering import Lowered, Unsupported, np32, register_lowering
from .program import ADD, COPY, MUL, RELU, SIGMOID, TANH, ProgramBuilder


def _conv(pb: ProgramBuilder, conv, dst: int, src: int) -> None:
    bias = None if conv.bias is None else np32(conv.bias)
    pb.conv(dst, src, np32(conv.weight), bias, conv.dilation[0])


def _pointwise(pb: ProgramBuilder, conv, dst: int, src: int) -> None:
    pb.linear(dst, src, np32(conv.weight)[:, :, 0], None if conv.bias is None else np32(conv.bias))


def lower_bytenet(model: ByteNet) -> Lowered:
    cfg = model.config
    d, V = cfg.d, cfg.vocab_size
    pb = ProgramBuilder()
    x, xn, h, hn, y = (pb.buffer(n) for n in (2 * d, 2 * d, d, d, 2 * d))
    g, a, b = pb.buffer(4 * d), pb.buffer(d), pb.buffer(d)
    logits = pb.buffer(V)
    pb.embed(x, np32(model.embed.weight))
    for block in model.stack.blocks:  # queue order = model.stack.convs order: block by block, mu1 before mu2
        if isinstance(block, ResidualBlock):
            norm(pb, block.norm_in, xn, x, 2 * d)
            pb.op(RELU, xn, xn, 2 * d)
            _pointwise(pb, block.reduce, h, xn)
            norm(pb, block.norm_mid, hn, h, d)
            pb.op(RELU, hn, hn, d)
            _conv(pb, block.dilated, h, hn)
            norm(pb, block.norm_out, hn, h, d)
            pb.op(RELU, hn, hn, d)
            _pointwise(pb, block.expand, y, hn)
        elif isinstance(block, MultiplicativeBlock):
            norm(pb, block.norm_in, xn, x, 2 * d)
            _pointwise(pb, block.reduce, h, xn)
            for mu_norm, mu in ((block.norm_mu1, block.mu1), (block.norm_mu2, block.mu2)):
                # h <- sigmoid(g1) * tanh(sigmoid(g2) * hn + sigmoid(g3) * tanh(u)), g = gates(hn)
                norm(pb, mu_norm, hn, h, d)
                _conv(pb, mu.gates, g, hn)
                g1, g2, g3, u = g, g + d, g + 2 * d, g + 3 * d
                pb.op(SIGMOID, g, g, 3 * d)
                pb.op(TANH, u, u, d)
                pb.op(COPY, a, g2, d)
                pb.op(MUL, a, hn, d)
                pb.op(COPY, b, g3, d)
                pb.op(MUL, b, u, d)
                pb.op(ADD, a, b, d)
                pb.op(TANH, a, a, d)
                pb.op(COPY, h, g1, d)
                pb.op(MUL, h, a, d)
            _pointwise(pb, block.expand, y, h)
        else:
            raise Unsupported(f"no fast lowering for the ByteNet block {type(block).__name__}")
        pb.op(ADD, x, y, 2 * d)
    norm(pb, model.head.norm, xn, x, 2 * d)
    pb.op(RELU, xn, xn, 2 * d)
    _pointwise(pb, model.head.out, logits, xn)
    return Lowered(pb.build(logits, V))


register_lowering(ByteNet, lower_bytenet,
                  handles={"vocab_size", "d", "sets", "set_size", "kernel_size",
                           "block",  # residual/multiplicative blocks; any other block raises Unsupported
                           "norm"},  # layer/subbatch (running statistics)/none via layers.norm; others Unsupported
                  ignores={"subbatch_aux_fraction": "training", "dropout": "training"})  # generation runs in eval
