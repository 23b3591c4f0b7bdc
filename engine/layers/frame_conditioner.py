"""Local conditioning (the WaveNet paper's second kind): frame features -> a bias per sample for every gate.

Frames `[B, C, F]` come at a hop of `hop` samples: frame f describes samples f*hop .. (f+1)*hop - 1 of the
timeline (engine/features.py), and outside 0 .. F-1 the timeline is silence, which the feature front end makes
all zeros.  A small frame network (`layers` convolutions of kernel 3 over frames, ReLU between) turns frames into
`hidden` channels, and a 1x1 projection maps those to `out_channels`: every gate's bias at once (WaveNet:
layers x gate_channels).  The frame-rate biases are upsampled to the sample rate by linear interpolation between
frame centres.  Interpolation and projection are both linear, so projecting per frame and then interpolating
equals the usual "upsample the features, then a 1x1 convolution into every gate" per sample, at a fraction of the
cost: a generated sample costs one blend of two vectors.

Lookahead, stated and bounded: sample s (in frame s // hop) blends the frame outputs around it, the right one at
most frame s // hop + 1, and each frame output reads `layers` frames to its right, so sample s depends on frames
up to `s // hop + 1 + layers` (`lookahead` frames past its own), and on none beyond.  Every frame output is
computed from explicit zeros outside the known frames, so it is the same whether a frame range is computed alone
(a training window, a chunk of generation) or as part of the whole clip.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class FrameConditioner(nn.Module):
    def __init__(self, in_channels: int, hidden: int, layers: int, out_channels: int, hop: int):
        super().__init__()
        self.hop, self.depth = hop, layers
        widths = [in_channels] + [hidden] * layers
        self.convs = nn.ModuleList(nn.Conv1d(a, b, 3) for a, b in zip(widths[:-1], widths[1:]))
        self.project = nn.Conv1d(widths[-1], out_channels, 1)
        nn.init.zeros_(self.project.weight)  # a new model starts as its unconditioned twin and learns to listen
        nn.init.zeros_(self.project.bias)

    @property
    def lookahead(self) -> int:
        """Frames past a sample's own frame that its bias depends on."""
        return 1 + self.depth

    def frame_biases(self, frames: torch.Tensor, lo: int, hi: int) -> torch.Tensor:
        """Gate biases at the centres of frames lo .. hi-1 (any integers; frames outside [0, F) are silence)."""
        n = self.depth
        a, b = lo - n, hi + n  # the input frames those outputs read
        k0, k1 = max(a, 0), min(b, frames.shape[-1])  # the known ones among them
        if a >= 0 and k1 == b:
            h = frames[:, :, a:b]
        else:
            h = frames.new_zeros(frames.shape[0], frames.shape[1], b - a)
            if k1 > k0:
                h[:, :, k0 - a:k1 - a] = frames[:, :, k0:k1]
        for i, conv in enumerate(self.convs):
            h = conv(h)
            if i < n - 1:
                h = F.relu(h)
        return self.project(h)

    def blend(self, samples: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """For timeline sample indices (any shape): the left frame index (the right is left + 1) and the right
        frame's weight, interpolating between frame centres (frame f's centre is sample f*hop + (hop - 1) / 2)."""
        u = (samples.double() + 0.5) / self.hop - 0.5
        left = u.floor()
        return left.long(), (u - left).float()

    def sample_biases(self, frames: torch.Tensor, first: torch.Tensor, n: int) -> "SampleBiases":
        """The per-sample biases of timeline samples first[b] .. first[b] + n - 1 of each row, made per channel
        range on demand (`SampleBiases.channels`): a layer's [B, G, n] at a time, never all layers' at once."""
        s = first.reshape(-1, 1).to(frames.device) + torch.arange(n, device=frames.device)  # [B, n]
        left, w = self.blend(s)
        lo, hi = int(left.min()), int(left.max()) + 2
        return SampleBiases(self.frame_biases(frames, lo, hi), left - lo, w)


class SampleBiases:
    """Frame-rate biases [B, D, F'] plus, per sample, its left frame (index into F') and the right one's weight."""

    def __init__(self, biases: torch.Tensor, left: torch.Tensor, weight: torch.Tensor):
        self.biases, self.left, self.weight = biases, left, weight.unsqueeze(1).to(biases.dtype)
        self._blocks: list[tuple[int, int, torch.Tensor]] | None = None

    BLOCK = 2048  # samples per blend matrix: its size is B x (BLOCK / hop + 2) x BLOCK, whatever n is

    def channels(self, lo: int, hi: int) -> torch.Tensor:
        """[B, hi - lo, n]: channels lo .. hi-1 of every sample's bias, as batched products with blend matrices
        (per block of samples, [B, frames of the block, block]: two non-zeros per column, 1 - w at the left frame
        and w at the right one).  The same blend as gathering each sample's two frames, but it trains far
        faster: a gather's backward is a scatter-add (and so is F.interpolate's), which took 40 % of a vocoder's
        training step.  Blocks keep the matrices small for a long prompt."""
        parts = [torch.bmm(self.biases[:, lo:hi, f0:f1], m) for f0, f1, m in self._blend_blocks()]
        return parts[0] if len(parts) == 1 else torch.cat(parts, 2)

    def _blend_blocks(self) -> list[tuple[int, int, torch.Tensor]]:
        if self._blocks is None:
            b, n = self.biases.shape[0], self.left.shape[1]
            self._blocks = []
            for a in range(0, n, self.BLOCK):
                left = self.left[:, a:a + self.BLOCK].expand(b, -1)
                w = self.weight[:, 0, a:a + self.BLOCK].expand(b, -1)
                f0, f1 = int(left.min()), int(left.max()) + 2
                m = self.biases.new_zeros(b, f1 - f0, left.shape[1])
                m.scatter_(1, (left - f0).unsqueeze(1), (1 - w).unsqueeze(1))
                m.scatter_(1, (left - f0 + 1).unsqueeze(1), w.unsqueeze(1))
                self._blocks.append((f0, f1, m))
        return self._blocks

    def frame_major(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The same biases for the fast path: the frame-rate table [B, F', D] (frame-major, contiguous), and per
        sample its left row [B, n] and the right one's weight [B, n].  The compiled loop blends one sample's
        row per step, so no [B, D, n] tensor is made at all (making and transposing one took up to a third
        of a vocoder's generation time)."""
        return self.biases.transpose(1, 2).contiguous(), self.left, self.weight[:, 0]
