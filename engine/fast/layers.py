"""Lowering helpers for the torch modules several families share (norms), written once for every family."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .lowering import Unsupported, np32
from .program import AFFINE, COPY, LAYERNORM, ProgramBuilder


def norm(pb: ProgramBuilder, module: nn.Module, dst: int, src: int, n: int) -> None:
    """dst = module(src) for one position's n channels: identity, LayerNorm, or an eval-mode batch/sub-batch
    norm (a fixed per-channel affine map, computed here exactly as the module computes it)."""
    if isinstance(module, (nn.Identity, nn.Dropout)):
        if dst != src:
            pb.op(COPY, dst, src, n)
        return
    if isinstance(module, nn.LayerNorm):
        if tuple(module.normalized_shape) != (n,):
            raise Unsupported(f"LayerNorm over {tuple(module.normalized_shape)}, expected ({n},)")
        w = -1 if module.weight is None else pb.param(np32(module.weight))
        b = -1 if module.bias is None else pb.param(np32(module.bias))
        pb.op(LAYERNORM, dst, src, n, w, b, pb.param(np.array([module.eps])))
        return
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        if module.training or module.running_mean is None:
            raise Unsupported("BatchNorm without running statistics (or in train mode)")
        invstd = torch.rsqrt(module.running_var + module.eps)
        scale = invstd if module.weight is None else module.weight * invstd
        shift = -module.running_mean * scale if module.bias is None else module.bias - module.running_mean * scale
        pb.op(AFFINE, dst, src, n, pb.param(np32(scale)), pb.param(np32(shift)))
        return
    if type(module).__name__ == "SubBatchNorm" and not module.training:  # ByteNet: running statistics
        scale = module.weight * torch.rsqrt(module.running_var + module.eps)
        pb.op(AFFINE, dst, src, n, pb.param(np32(scale)), pb.param(np32(module.bias - module.running_mean * scale)))
        return
    raise Unsupported(f"no fast lowering for the norm {type(module).__name__}")
