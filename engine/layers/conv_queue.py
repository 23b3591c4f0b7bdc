"""Causal dilated convolution with a Fast WaveNet convolution queue.

`forward` is the ordinary parallel convolution with left zero padding.  For generation each layer keeps a ring
buffer of its last `(kernel_size - 1) * dilation` inputs, stored time-major as [B, queue_len, C]: the input at time
tau lives in slot `tau % queue_len`, so a step reads `kernel_size - 1` slots, writes one, and costs O(1) in the
receptive field.  An all-zero queue is exactly the zero padding of `forward`, which is why stepping reproduces the
parallel pass.

WaveNet, the ByteNet decoder and the hierarchical model all use this one mechanism.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn


def prepared(owner: nn.Module, key: str, make: Callable[[], object], *sources: torch.Tensor):
    """A tensor derived from parameters (e.g. a transposed weight for the step), cached on `owner` and rebuilt
    whenever a source parameter is modified in place (optimizer step, load_state_dict) or replaced."""
    stamp = tuple((s.data_ptr(), _version(s)) for s in sources)
    cache = owner.__dict__.setdefault("_prepared", {})
    hit = cache.get(key)
    if hit is None or hit[0] != stamp:
        with torch.no_grad():
            hit = (stamp, make())
        cache[key] = hit
    return hit[1]


def _version(t: torch.Tensor) -> int:
    """In-place modification counter; tensors made under inference_mode have none and cannot change in place."""
    try:
        return t._version
    except RuntimeError:
        return -1


class CausalConv1d(nn.Conv1d):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int = 1, bias: bool = True):
        if kernel_size < 1:
            raise ValueError(f"kernel_size must be >= 1, got {kernel_size}")
        super().__init__(in_channels, out_channels, kernel_size, dilation=dilation, bias=bias)
        self.queue_len = (kernel_size - 1) * dilation

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [B, C, T] -> [B, out, T]
        return super().forward(F.pad(x, (self.queue_len, 0)))

    def new_queue(self, batch_size: int, device=None, dtype=None) -> torch.Tensor:
        return torch.zeros(batch_size, self.queue_len, self.in_channels,
                           device=device or self.weight.device, dtype=dtype or self.weight.dtype)

    def step_weight(self) -> torch.Tensor:
        """[k * C_in, C_out]: the kernel taps oldest first, laid out for one addmm over the gathered inputs."""
        return prepared(self, "step_weight", lambda: self.weight.permute(2, 1, 0).reshape(-1, self.out_channels),
                        self.weight)

    def step(self, x_t: torch.Tensor, queue: torch.Tensor, t: int) -> torch.Tensor:
        """One output [B, out] for input x_t [B, C] at time t; writes x_t into `queue` in place."""
        n = self.queue_len
        if n == 0:
            taps = x_t
        else:
            k, d = self.kernel_size[0], self.dilation[0]
            # inputs at t - (k-1)d, ..., t - d (oldest first), then x_t itself
            taps = torch.cat([queue[:, (t - m * d) % n] for m in range(k - 1, 0, -1)] + [x_t], dim=1)
        y = torch.addmm(self.bias, taps, self.step_weight()) if self.bias is not None else taps @ self.step_weight()
        if n:
            queue[:, t % n] = x_t
        return y

    def prime(self, x: torch.Tensor, queue: torch.Tensor, t: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Outputs for x [B, C, T] starting at time t in one pass, and the queue as of time t + T."""
        n = self.queue_len
        if n == 0:
            return F.conv1d(x, self.weight, self.bias), queue
        history = torch.roll(queue, -(t % n), dims=1).transpose(1, 2)  # [B, C, n]: times t-n .. t-1
        full = torch.cat([history, x], dim=-1)
        y = F.conv1d(full, self.weight, self.bias, dilation=self.dilation)
        new_queue = torch.roll(full[:, :, -n:].transpose(1, 2), (t + x.shape[-1]) % n, dims=1).contiguous()
        return y, new_queue
