"""Causal dilated convolution with a Fast WaveNet convolution queue.

`forward` is the ordinary parallel convolution with left zero padding.  For generation each layer keeps a ring
buffer of its last `(kernel_size - 1) * dilation` inputs: the value at time tau lives in slot `tau % queue_len`,
so a step reads `kernel_size - 1` slots, writes one, and costs O(1) in the receptive field.  An all-zero queue
is exactly the zero padding of `forward`, which is why stepping reproduces the parallel pass.

WaveNet, the ByteNet decoder and the hierarchical model all use this one mechanism.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class CausalConv1d(nn.Conv1d):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int = 1, bias: bool = True):
        if kernel_size < 1:
            raise ValueError(f"kernel_size must be >= 1, got {kernel_size}")
        super().__init__(in_channels, out_channels, kernel_size, dilation=dilation, bias=bias)
        self.queue_len = (kernel_size - 1) * dilation

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, C, T] -> [B, out, T]
        return super().forward(F.pad(x, (self.queue_len, 0)))

    def new_queue(self, batch_size: int, device=None, dtype=None) -> torch.Tensor:
        return torch.zeros(batch_size, self.in_channels, self.queue_len,
                           device=device or self.weight.device, dtype=dtype or self.weight.dtype)

    def _taps(self, t: int) -> list[int]:
        """Queue slots of the inputs at t - (k-1)d, ..., t - d, oldest first (the order of the kernel taps)."""
        k, d, n = self.kernel_size[0], self.dilation[0], self.queue_len
        return [(t - m * d) % n for m in range(k - 1, 0, -1)]

    def step(self, x_t: torch.Tensor, queue: torch.Tensor, t: int) -> torch.Tensor:
        """One output for input x_t [B, C] at time t; writes x_t into `queue` in place."""
        if self.queue_len == 0:
            return F.linear(x_t, self.weight[:, :, 0], self.bias)
        taps = torch.cat([queue[:, :, self._taps(t)], x_t.unsqueeze(-1)], dim=-1)  # [B, C, k]
        y = F.linear(taps.flatten(1), self.weight.flatten(1), self.bias)
        queue[:, :, t % self.queue_len] = x_t
        return y

    def prime(self, x: torch.Tensor, queue: torch.Tensor, t: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Outputs for x [B, C, T] starting at time t in one pass, and the queue as of time t + T."""
        n = self.queue_len
        if n == 0:
            return F.conv1d(x, self.weight, self.bias), queue
        history = torch.roll(queue, -(t % n), dims=-1)  # slots in time order: times t-n .. t-1
        full = torch.cat([history, x], dim=-1)
        y = F.conv1d(full, self.weight, self.bias, dilation=self.dilation)
        new_queue = torch.roll(full[:, :, -n:], (t + x.shape[-1]) % n, dims=-1).contiguous()
        return y, new_queue
