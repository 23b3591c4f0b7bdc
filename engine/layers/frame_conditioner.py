"""Local conditioning (the WaveNet paper's second kind): frame features -> one bias per sample for every gate.

Frames `[B, C, F]` come at a hop of `hop` samples (frame f describes samples f*hop .. (f+1)*hop - 1, see
engine/features.py).  A small frame network (`layers` convolutions of kernel 3 over frames, ReLU between) turns
them into `hidden` channels, and a 1x1 projection maps those to `out_channels` = every gate's bias at once
(WaveNet: layers x gate_channels).  The frame-rate biases are upsampled to the sample rate by linear
interpolation between frame centres.  Interpolation is linear and the projection is linear, so projecting per
frame and then interpolating equals interpolating the features and projecting per sample (the usual "upsample,
then a 1x1 conv into every gate"), at a fraction of the cost: a sample costs one blend of two vectors.

Lookahead, stated and bounded: sample t (in frame t // hop) reads frame outputs up to t // hop + 1, and each
frame output reads `layers` frames to its right, so a sample needs frames up to `t // hop + 1 + layers`.  Frames
beyond the end are zero padding (the frame network's own padding), so a clip's last samples are computed as if
the frames ended there, in training and in generation alike.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class FrameConditioner(nn.Module):
    def __init__(self, in_channels: int, hidden: int, layers: int, out_channels: int, hop: int):
        super().__init__()
        self.hop, self.n_layers = hop, layers
        convs, width = [], in_channels
        for _ in range(layers):
            convs.append(nn.Conv1d(width, hidden, 3, padding=1))
            width = hidden
        self.convs = nn.ModuleList(convs)
        self.project = nn.Conv1d(width, out_channels, 1)

    @property
    def lookahead(self) -> int:
        """Frames past a sample's own frame that its bias depends on."""
        return 1 + self.n_layers

    def frame_biases(self, frames: torch.Tensor) -> torch.Tensor:
        """[B, C, F] -> [B, out_channels, F]: the gate biases at each frame's centre."""
        h = frames
        for i, conv in enumerate(self.convs):
            h = conv(h)
            if i < len(self.convs) - 1:
                h = F.relu(h)
        return self.project(h)

    def blend_weights(self, t0: int, n: int, n_frames: int, device=None) -> tuple[torch.Tensor, torch.Tensor,
                                                                                 torch.Tensor]:
        """For samples t0 .. t0+n-1: the left frame index, the right one and the right one's weight."""
        t = torch.arange(t0, t0 + n, device=device, dtype=torch.float64)
        u = ((t + 0.5) / self.hop - 0.5).clamp(0, n_frames - 1)
        left = u.floor().long()
        right = (left + 1).clamp(max=n_frames - 1)
        return left, right, (u - left).float()

    def upsample(self, biases: torch.Tensor, t0: int, n: int) -> torch.Tensor:
        """Frame biases [B, D, F] -> per-sample biases [B, D, n] for samples t0 .. t0+n-1."""
        left, right, w = self.blend_weights(t0, n, biases.shape[-1], biases.device)
        return torch.lerp(biases[:, :, left], biases[:, :, right], w.to(biases.dtype))

    def forward(self, frames: torch.Tensor, n_samples: int) -> torch.Tensor:
        """[B, C, F] frames -> [B, out_channels, n_samples] per-sample biases."""
        return self.upsample(self.frame_biases(frames), 0, n_samples)
