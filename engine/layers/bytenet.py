"""ByteNet building blocks (Kalchbrenner et al. 2016): norms, the two residual blocks, and a stack of them.

The same stack serves as the masked *target network* (causal, Fast WaveNet queues for decoding) and as the
unmasked *source network* of the seq2seq family (centred dilated convs, no queues).  Tensors are [B, C, T].

Every block is written once as `block(x, conv, pointwise)`: `conv(module, h)` applies the block's dilated
convolution and `pointwise(module, h)` its 1x1 convolutions, so the parallel pass (`forward`), the one-pass
prompt (`prime`) and the single step (`step`) run the same code.  Sequences are [B, C, T]; a step works on
[B, C] (no time axis), where a 1x1 conv is a plain matrix product and norms need no transposes: fewer small
ops per byte, which is what a cached step on a CPU spends its time on.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .conv_queue import CausalConv1d

NORMS = ("layer", "subbatch", "none")
BLOCKS = ("residual", "multiplicative")


class ChannelLayerNorm(nn.LayerNorm):
    """Layer norm over the channels of each position, never over time (that would leak the future)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, C, T] or a step's [B, C]
        if x.dim() == 2:
            return super().forward(x)
        return super().forward(x.transpose(1, 2)).transpose(1, 2)


class SubBatchNorm(nn.Module):
    """Sub-batch normalization (ByteNet v1, section 3.3), for the target network.

    In training the batch is split: the last `n_aux` rows are the auxiliary sub-batch, the rest the main one.
    The mean and variance per channel are taken over the auxiliary rows and all their time steps only, and
    every row is normalized with them; the loss is taken on the main rows only (`ByteNet.loss_rows`).  A main
    row's output at time t therefore depends on its own inputs up to t (through the masked convs) and on other
    sequences (the auxiliary rows), never on its own future: it cannot leak.  The auxiliary rows do see their
    own future through the statistics, which is why their logits are discarded.  Running averages of the
    auxiliary statistics are kept, and evaluation/decoding uses them, which makes the norm a fixed per-channel
    affine map: causal, and the same in `step` as in `forward`.  A training batch with fewer than 2 rows uses
    the running statistics too.
    """

    def __init__(self, channels: int, aux_fraction: float = 0.25, momentum: float = 0.01, eps: float = 1e-5):
        super().__init__()
        self.aux_fraction, self.momentum, self.eps = aux_fraction, momentum, eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))

    @staticmethod
    def aux_rows(batch_size: int, aux_fraction: float) -> int:
        """How many trailing rows of a training batch are auxiliary (0 when the batch is too small)."""
        if batch_size < 2:
            return 0
        return min(batch_size - 1, max(1, round(batch_size * aux_fraction)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, C, T] or a step's [B, C]
        n_aux = self.aux_rows(x.shape[0], self.aux_fraction) if self.training and x.dim() == 3 else 0
        if n_aux:
            aux = x[-n_aux:]
            mean = aux.mean(dim=(0, 2))
            var = aux.var(dim=(0, 2), unbiased=False)
            with torch.no_grad():
                self.running_mean.lerp_(mean.detach(), self.momentum)
                self.running_var.lerp_(var.detach(), self.momentum)
        else:
            mean, var = self.running_mean, self.running_var
        scale = self.weight * torch.rsqrt(var + self.eps)
        shift = self.bias - mean * scale
        if x.dim() == 2:
            return x * scale + shift
        return x * scale[:, None] + shift[:, None]


def make_norm(kind: str, channels: int, aux_fraction: float = 0.25) -> nn.Module:
    if kind == "layer":
        return ChannelLayerNorm(channels)
    if kind == "subbatch":
        return SubBatchNorm(channels, aux_fraction)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm must be one of {NORMS}, got {kind!r}")


class CenteredConv1d(nn.Conv1d):
    """The source network's unmasked dilated conv: sees (k-1)*d/2 positions on each side."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int = 1):
        super().__init__(in_channels, out_channels, kernel_size, dilation=dilation)
        total = (kernel_size - 1) * dilation
        self.pad = (total // 2, total - total // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(F.pad(x, self.pad))


ConvFn = Callable[[nn.Conv1d, torch.Tensor], torch.Tensor]


def apply_1x1(conv: nn.Conv1d, h: torch.Tensor) -> torch.Tensor:
    """A 1x1 conv on a sequence [B, C, T] (the module itself)."""
    return conv(h)


def step_1x1(conv: nn.Conv1d, h: torch.Tensor) -> torch.Tensor:
    """The same 1x1 conv on one step [B, C]: a matrix product."""
    return F.linear(h, conv.weight.squeeze(-1), conv.bias)


def _dilated(causal: bool, c_in: int, c_out: int, k: int, dilation: int) -> nn.Conv1d:
    return CausalConv1d(c_in, c_out, k, dilation) if causal else CenteredConv1d(c_in, c_out, k, dilation)


class ResidualBlock(nn.Module):
    """ByteNet v2 Fig. 3 left: norm-ReLU-1x1 (2d->d), norm-ReLU-dilated 1xk (d->d), norm-ReLU-1x1 (d->2d), + x."""

    def __init__(self, d: int, kernel_size: int, dilation: int, norm: str, causal: bool, aux_fraction: float):
        super().__init__()
        self.norm_in = make_norm(norm, 2 * d, aux_fraction)
        self.reduce = nn.Conv1d(2 * d, d, 1)
        self.norm_mid = make_norm(norm, d, aux_fraction)
        self.dilated = _dilated(causal, d, d, kernel_size, dilation)
        self.norm_out = make_norm(norm, d, aux_fraction)
        self.expand = nn.Conv1d(d, 2 * d, 1)

    def dilated_convs(self) -> list[nn.Conv1d]:
        return [self.dilated]

    def forward(self, x: torch.Tensor, conv: ConvFn, pointwise: ConvFn = apply_1x1) -> torch.Tensor:
        h = pointwise(self.reduce, F.relu(self.norm_in(x)))
        h = conv(self.dilated, F.relu(self.norm_mid(h)))
        return x + pointwise(self.expand, F.relu(self.norm_out(h)))


class MultiplicativeUnit(nn.Module):
    """MU(h) = sigmoid(g1) * tanh(sigmoid(g2) * h + sigmoid(g3) * tanh(u)); g1, g2, g3, u are dilated convs of h,
    computed as one conv with 4d outputs (so they share one queue)."""

    def __init__(self, d: int, kernel_size: int, dilation: int, causal: bool):
        super().__init__()
        self.gates = _dilated(causal, d, 4 * d, kernel_size, dilation)

    def forward(self, h: torch.Tensor, conv: ConvFn) -> torch.Tensor:
        g1, g2, g3, u = conv(self.gates, h).chunk(4, dim=1)
        return torch.sigmoid(g1) * torch.tanh(torch.sigmoid(g2) * h + torch.sigmoid(g3) * torch.tanh(u))


class MultiplicativeBlock(nn.Module):
    """ByteNet Fig. 3 right: 1x1 (2d->d), MU, MU, 1x1 (d->2d), + x; a norm before the first 1x1 and before each
    MU (the MUs bring their own nonlinearities, so there is no ReLU)."""

    def __init__(self, d: int, kernel_size: int, dilation: int, norm: str, causal: bool, aux_fraction: float):
        super().__init__()
        self.norm_in = make_norm(norm, 2 * d, aux_fraction)
        self.reduce = nn.Conv1d(2 * d, d, 1)
        self.norm_mu1 = make_norm(norm, d, aux_fraction)
        self.mu1 = MultiplicativeUnit(d, kernel_size, dilation, causal)
        self.norm_mu2 = make_norm(norm, d, aux_fraction)
        self.mu2 = MultiplicativeUnit(d, kernel_size, dilation, causal)
        self.expand = nn.Conv1d(d, 2 * d, 1)

    def dilated_convs(self) -> list[nn.Conv1d]:
        return [self.mu1.gates, self.mu2.gates]

    def forward(self, x: torch.Tensor, conv: ConvFn, pointwise: ConvFn = apply_1x1) -> torch.Tensor:
        h = pointwise(self.reduce, self.norm_in(x))
        h = self.mu1(self.norm_mu1(h), conv)
        h = self.mu2(self.norm_mu2(h), conv)
        return x + pointwise(self.expand, h)


class ByteNetStack(nn.Module):
    """Residual blocks with dilations in sets of 1, 2, 4, 8, 16 over a 2d-channel residual stream.

    `causal=True` is the masked target network (with `step`/`prime` on convolution queues); `causal=False`
    is the source network.  `mask` [B, 1, T] (source only) zeroes padding before every dilated conv so a
    padded row encodes the same as the row alone.
    """

    def __init__(self, d: int, dilations: list[int], kernel_size: int = 3, block: str = "residual",
                 norm: str = "layer", causal: bool = True, aux_fraction: float = 0.25, dropout: float = 0.0):
        super().__init__()
        if block not in BLOCKS:
            raise ValueError(f"block must be one of {BLOCKS}, got {block!r}")
        cls = ResidualBlock if block == "residual" else MultiplicativeBlock
        self.causal = causal
        self.blocks = nn.ModuleList(cls(d, kernel_size, dil, norm, causal, aux_fraction) for dil in dilations)
        self.drop = nn.Dropout(dropout)
        self.convs = [c for b in self.blocks for c in b.dilated_convs()]  # queue order (not a ModuleList)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:  # [B, 2d, T]
        if mask is None:
            def conv(m, h):
                return m(h)
        else:
            def conv(m, h):
                return m(h * mask)
        for block in self.blocks:
            x = self.drop(block(x, conv))
        return x

    # ---- cached decoding (causal only) ----------------------------------------------------------------------
    def new_queues(self, batch_size: int, device=None) -> list[torch.Tensor]:
        return [c.new_queue(batch_size, device) for c in self.convs]

    def step(self, x: torch.Tensor, queues: list[torch.Tensor], t: int) -> torch.Tensor:
        """x [B, 2d] at time t -> [B, 2d]; every queue gets its conv's input at t."""
        index = self._queue_index()

        def conv(m, h):
            return m.step(h, queues[index[id(m)]], t)
        for block in self.blocks:
            x = block(x, conv, step_1x1)
        return x

    def _queue_index(self) -> dict[int, int]:
        if "_index" not in self.__dict__:
            self.__dict__["_index"] = {id(c): i for i, c in enumerate(self.convs)}
        return self.__dict__["_index"]

    def prime(self, x: torch.Tensor, queues: list[torch.Tensor], t: int) -> torch.Tensor:
        """x [B, 2d, T] starting at time t in one parallel pass; refills the queues in place (list items)."""
        index = self._queue_index()

        def conv(m, h):
            i = index[id(m)]
            y, queues[i] = m.prime(h, queues[i], t)
            return y
        for block in self.blocks:
            x = block(x, conv)
        return x


class ByteNetHead(nn.Module):
    """norm -> ReLU -> 1x1 conv to the vocabulary."""

    def __init__(self, d: int, vocab_size: int, norm: str, aux_fraction: float):
        super().__init__()
        self.norm = make_norm(norm, 2 * d, aux_fraction)
        self.out = nn.Conv1d(2 * d, vocab_size, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, 2d, T] -> [B, T, V]
        return self.out(F.relu(self.norm(x))).transpose(1, 2)

    def step(self, x: torch.Tensor) -> torch.Tensor:  # [B, 2d] -> [B, V]
        return step_1x1(self.out, F.relu(self.norm(x)))
