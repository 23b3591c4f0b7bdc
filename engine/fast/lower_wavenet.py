"""WaveNet's cached step as a fast-path program (mirrors `WaveNet.step` op for op)."""
from __future__ import annotations

import math

import numpy as np

from ..models.wavenet import WaveNet
from .lowering import Lowered, StepTable, Unsupported, np32, register_lowering
from .program import ADD, COPY, GATE, RELU, SCALE, ProgramBuilder


def lower_wavenet(model: WaveNet) -> Lowered:
    cfg = model.config
    R, G, S, V = cfg.residual_channels, cfg.gate_channels, cfg.skip_channels, cfg.n_classes
    half = G // 2
    pb = ProgramBuilder()
    h, z, g, rs, skip, h1, logits = (pb.buffer(n) for n in (R, G, half, R + S, S, S, V))
    r, s = rs, rs + R  # adjacent, so the residual and skip projections of g are one matrix-vector product
    if cfg.input == "embedding":
        pb.embed(h, np32(model.embed.weight))
    elif cfg.input == "onehot":  # one-hot through a 1x1 conv: column v of the weight plus the bias (exact: the
        w = np32(model.embed.weight)[:, :, 0]  # other terms are 0)
        pb.embed(h, (w + np32(model.embed.bias)[:, None]).T)
    else:
        raise Unsupported(f"no fast lowering for the WaveNet input {cfg.input!r}")
    sqrt_half = pb.param(np.array([math.sqrt(0.5)]))
    local = pb.step_constants(len(model.layers) * G) if model.frame_net is not None else None
    for i, layer in enumerate(model.layers):
        conv = layer.conv
        pb.conv(z, h, np32(conv.weight), np32(conv.bias), conv.dilation[0])
        if cfg.global_cond_classes:
            pb.op(ADD, z, pb.constant(f"cond{i}", G), G)
        if local is not None:  # the same order as WaveNet.step: global bias, then the frames' bias
            pb.op(ADD, z, local + i * G, G)
        pb.op(GATE, g, z, half)
        if i < len(model.layers) - 1:  # each output is the same sum in the same order as two products would be
            pb.linear(r, g, np.concatenate([np32(layer.residual.weight), np32(layer.skip.weight)])[:, :, 0],
                      np.concatenate([np32(layer.residual.bias), np32(layer.skip.bias)]))
            pb.op(ADD, h, r, R)
            pb.op(SCALE, h, R, sqrt_half)
        else:  # the last layer's residual output feeds nothing
            pb.linear(s, g, np32(layer.skip.weight)[:, :, 0], np32(layer.skip.bias))
        pb.op(COPY if i == 0 else ADD, skip, s, S)
    pb.op(RELU, skip, skip, S)
    pb.linear(h1, skip, np32(model.head1.weight)[:, :, 0], np32(model.head1.bias))
    pb.op(RELU, h1, h1, S)
    pb.linear(logits, h1, np32(model.head2.weight)[:, :, 0], np32(model.head2.bias))
    program = pb.build(logits, V)

    def constants(state):
        if state.cond_bias is None:
            return {}
        return {f"cond{i}": bias for i, bias in enumerate(state.cond_bias)}

    frame_net = model.frame_net  # not the model: the cache holding this closure must not keep the model alive

    def step_constants(state, t0: int, n: int):
        """Local conditioning's gate biases for the chunk's clock values: the chunk's frame-rate biases
        [B, F', layers * G] and each sample's blend of two of them (memory bounded by the chunk)."""
        if frame_net is None:
            return None
        fs = state.frames
        return StepTable(*frame_net.sample_biases(fs.frames, fs.first_sample + t0, n).frame_major())

    return Lowered(program, constants=constants, step_constants=step_constants)


register_lowering(WaveNet, lower_wavenet,
                  handles={"n_classes", "layers_per_block", "blocks", "kernel_size", "residual_channels",
                           "gate_channels", "skip_channels", "global_cond_classes", "input", "local_cond_channels",
                           "local_cond_hop", "local_cond_hidden", "local_cond_layers"},
                  ignores={"sample_rate": "metadata", "quantization": "decoding",
                           "preemphasis": "decoding", "features": "frontend"})  # ids only; audio is decoded outside
