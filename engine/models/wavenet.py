"""WaveNet (van den Oord et al. 2016) with the Fast WaveNet cached generator (Paine et al. 2016).

ids -> input embedding -> blocks x layers of [causal dilated conv -> tanh * sigmoid gate -> residual 1x1 and skip
1x1] -> sum of skips -> ReLU -> 1x1 -> ReLU -> 1x1 -> logits.  Dilations run 1, 2, 4, ... 2^(layers_per_block-1)
in every block.  A global class/speaker embedding is added to every gate when `global_cond_classes` > 0.
Local conditioning (`local_cond_channels` > 0): frame features at a hop of `local_cond_hop` samples go through a
small frame network and are projected into every gate, interpolated to one bias per sample
(engine/layers/frame_conditioner.py states the lookahead); `cond` is then an `engine.protocol.Conditioning`
with `frames` (and `classes` when the model also has global conditioning), and `features` in the config says how
the frames are made (engine.features.LogMelConfig), so training, evaluation and generation make them alike.
Generation keeps one convolution queue per layer (engine.layers.conv_queue), so a sample costs O(layers); with
local conditioning the state also keeps the gate biases of a block of frames around the current sample, so the
memory conditioning takes is bounded by that block, not by the length generated.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UserError
from ..features import LogMelConfig
from ..layers.conv_queue import CausalConv1d, prepared
from ..layers.frame_conditioner import FrameConditioner
from ..protocol import AutoregressiveModel, TokenSpec, split_conditioning
from ..registry import register_family


@dataclass
class WaveNetConfig:
    n_classes: int = 256
    layers_per_block: int = 10
    blocks: int = 2
    kernel_size: int = 2
    residual_channels: int = 32
    gate_channels: int = 64  # conv output, split in halves for tanh and sigmoid
    skip_channels: int = 128
    global_cond_classes: int = 0  # 0 = unconditioned
    sample_rate: int = 16000
    quantization: str = "mulaw"  # or "linear"
    preemphasis: float = 0.0  # the ids are of the pre-emphasized waveform (engine.audio.encode_audio; 0 = off)
    input: str = "embedding"  # or "onehot" (one-hot ids through a 1x1 conv)
    local_cond_channels: int = 0  # channels of each conditioning frame (0 = no local conditioning)
    local_cond_hop: int = 0  # samples per frame
    local_cond_hidden: int = 64  # width of the frame network
    local_cond_layers: int = 2  # its kernel-3 convolutions over frames (each one frame more of lookahead)
    features: dict | None = None  # the engine.features.LogMelConfig the frames come from (stored with the model)

    def __post_init__(self) -> None:
        if self.kernel_size < 2:
            raise UserError(f"kernel_size must be >= 2, got {self.kernel_size}")
        if self.gate_channels % 2:
            raise UserError(f"gate_channels must be even (tanh and sigmoid halves), got {self.gate_channels}")
        if min(self.n_classes, self.layers_per_block, self.blocks, self.residual_channels, self.skip_channels) < 1:
            raise UserError("n_classes, layers_per_block, blocks and channel counts must be positive")
        if self.quantization not in ("mulaw", "linear"):
            raise UserError(f"quantization must be 'mulaw' or 'linear', got {self.quantization!r}")
        if not 0.0 <= self.preemphasis < 1.0:
            raise UserError(f"preemphasis must be from 0 (off) to below 1, got {self.preemphasis}")
        if self.input not in ("embedding", "onehot"):
            raise UserError(f"input must be 'embedding' or 'onehot', got {self.input!r}")
        if self.local_cond_channels:
            if self.local_cond_channels < 0 or self.local_cond_hop < 1 or self.local_cond_hidden < 1 \
                    or self.local_cond_layers < 1:
                raise UserError("local conditioning needs positive local_cond_channels, local_cond_hop, "
                                "local_cond_hidden and local_cond_layers")
            if self.features is not None:
                f = LogMelConfig(**self.features)
                if (f.n_mels, f.hop, f.sample_rate) != (self.local_cond_channels, self.local_cond_hop,
                                                        self.sample_rate):
                    raise UserError(f"features (n_mels {f.n_mels}, hop {f.hop}, {f.sample_rate} Hz) do not match "
                                    f"local_cond_channels {self.local_cond_channels}, local_cond_hop "
                                    f"{self.local_cond_hop} and sample_rate {self.sample_rate}")
        elif self.features is not None:
            raise UserError("features describe conditioning frames; set local_cond_channels and local_cond_hop too")

    @property
    def dilations(self) -> list[int]:
        return [2 ** i for i in range(self.layers_per_block)] * self.blocks


@dataclass
class FramesState:
    """Local conditioning during generation: the frames, and the gate biases of a block of them."""

    frames: torch.Tensor  # [B, C, F]
    first_sample: torch.Tensor  # [B] timeline sample of position 0
    block_lo: int = 0  # first frame of the cached block
    block: torch.Tensor | None = None  # [B, layers * gate_channels, BLOCK] frame biases, or None

    BLOCK = 64  # frames per cached block: the memory local conditioning takes while generating


@dataclass
class WaveNetState:
    queues: list[torch.Tensor]  # per layer [B, residual_channels, (kernel_size-1)*dilation]
    t: int = 0  # tokens consumed so far (the ring-buffer clock)
    cond_bias: list[torch.Tensor] | None = field(default=None)  # per layer [B, gate_channels]
    frames: FramesState | None = None  # local conditioning


class ResidualLayer(nn.Module):
    def __init__(self, cfg: WaveNetConfig, dilation: int):
        super().__init__()
        self.conv = CausalConv1d(cfg.residual_channels, cfg.gate_channels, cfg.kernel_size, dilation)
        half = cfg.gate_channels // 2
        self.residual = nn.Conv1d(half, cfg.residual_channels, 1)
        self.skip = nn.Conv1d(half, cfg.skip_channels, 1)
        self.cond = nn.Embedding(cfg.global_cond_classes, cfg.gate_channels) if cfg.global_cond_classes else None

    def gate(self, z: torch.Tensor) -> torch.Tensor:
        a, b = z.chunk(2, dim=1)
        return torch.tanh(a) * torch.sigmoid(b)

    def forward(self, x: torch.Tensor, cond_bias: torch.Tensor | None,
                local_bias: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        z = self.conv(x)
        if cond_bias is not None:
            z = z + cond_bias.unsqueeze(-1)
        if local_bias is not None:  # [B, G, T]
            z = z + local_bias
        g = self.gate(z)
        return (x + self.residual(g)) * math.sqrt(0.5), self.skip(g)


class WaveNet(AutoregressiveModel):
    def __init__(self, config: WaveNetConfig):
        super().__init__()
        self.config = cfg = config
        if cfg.input == "embedding":
            self.embed = nn.Embedding(cfg.n_classes, cfg.residual_channels)
        else:
            self.embed = nn.Conv1d(cfg.n_classes, cfg.residual_channels, 1)
        self.layers = nn.ModuleList(ResidualLayer(cfg, d) for d in cfg.dilations)
        self.head1 = nn.Conv1d(cfg.skip_channels, cfg.skip_channels, 1)
        self.head2 = nn.Conv1d(cfg.skip_channels, cfg.n_classes, 1)
        self.frame_net = FrameConditioner(cfg.local_cond_channels, cfg.local_cond_hidden, cfg.local_cond_layers,
                                          len(self.layers) * cfg.gate_channels, cfg.local_cond_hop) \
            if cfg.local_cond_channels else None

    @property
    def frame_features(self) -> LogMelConfig | None:
        """How this model's conditioning frames are made (None: no local conditioning, or frames from elsewhere)."""
        return LogMelConfig(**self.config.features) if self.config.features else None

    @property
    def frame_context(self) -> int:
        """The interpolation reaches one frame past a window's edge frames, the frame network `depth` more."""
        return 0 if self.frame_net is None else self.frame_net.depth + 2

    @property
    def receptive_field(self) -> int:
        return 1 + (self.config.kernel_size - 1) * sum(self.config.dilations)

    @property
    def tokens(self) -> TokenSpec:
        c = self.config
        return TokenSpec("audio", c.n_classes, c.sample_rate, c.quantization, start_id=c.n_classes // 2,
                         preemphasis=c.preemphasis)

    # ---- pieces shared by the parallel and the cached paths -------------------------------------------------
    def _embed(self, x: torch.Tensor) -> torch.Tensor:  # [B, T] ids -> [B, R, T]
        if self.config.input == "embedding":
            return self.embed(x).transpose(1, 2)
        return self.embed(F.one_hot(x, self.config.n_classes).transpose(1, 2).to(self.embed.weight.dtype))

    def _head(self, skip: torch.Tensor) -> torch.Tensor:  # [B, S, T] -> [B, T, V]
        return self.head2(F.relu(self.head1(F.relu(skip)))).transpose(1, 2)

    def _cond_biases(self, cond, batch_size: int) -> list[torch.Tensor] | None:
        cond, frames = split_conditioning(cond)
        if self.frame_net is not None and frames is None:
            raise UserError(f"this WaveNet is conditioned on frames of {self.config.local_cond_channels} channels "
                            "(a vocoder); pass cond=Conditioning(frames=...)")
        if self.frame_net is None and frames is not None:
            raise UserError("this WaveNet takes no conditioning frames")
        if not self.config.global_cond_classes:
            if cond is not None:
                raise UserError("this WaveNet is not conditioned; pass cond=None")
            return None
        if cond is None:
            raise UserError(f"this WaveNet is conditioned on {self.config.global_cond_classes} classes; pass cond")
        cond = torch.as_tensor(cond, dtype=torch.long, device=self.device).reshape(-1)
        if cond.numel() == 1 and batch_size > 1:
            cond = cond.expand(batch_size)
        if cond.shape[0] != batch_size or cond.min() < 0 or cond.max() >= self.config.global_cond_classes:
            raise UserError(f"cond must be {batch_size} class ids in 0..{self.config.global_cond_classes - 1}")
        return [layer.cond(cond) for layer in self.layers]

    def _frames(self, cond, batch_size: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(frames [B, C, F], first timeline sample [B]) of a locally conditioned model, checked; else None."""
        _, local = split_conditioning(cond)
        if local is None:
            return None
        frames = torch.as_tensor(local.frames, dtype=self.frame_net.project.weight.dtype).to(self.device)
        C = self.config.local_cond_channels
        if frames.dim() == 2:
            frames = frames.unsqueeze(0)
        if frames.dim() != 3 or frames.shape[1] != C or frames.shape[0] not in (1, batch_size):
            raise UserError(f"frames must be [{batch_size}, {C}, F] (features of {C} channels per frame), got "
                            f"shape {tuple(frames.shape)}")
        if not torch.isfinite(frames).all():
            raise UserError("frames contain NaN or infinite values")
        frames = frames.expand(batch_size, -1, -1)
        first = torch.as_tensor(local.first_sample, dtype=torch.long, device=self.device).reshape(-1)
        if first.numel() not in (1, batch_size):
            raise UserError(f"first_sample must be one int or {batch_size} of them")
        return frames, first.expand(batch_size).clone()

    def _local_biases(self, frames, t0: int, n: int):
        """Per-sample gate biases (engine.layers.frame_conditioner.SampleBiases; layer i's are channels
        i*G .. (i+1)*G) for positions t0 .. t0+n-1, or None."""
        if frames is None:
            return None
        return self.frame_net.sample_biases(frames[0], frames[1] + t0, n)

    def _local_step_bias(self, st: FramesState, t: int) -> torch.Tensor:
        """[B, layers * gate_channels]: the gate biases of position t, from the cached block of frame biases."""
        left, w = self.frame_net.blend(st.first_sample + t)
        lo, hi = int(left.min()), int(left.max()) + 2
        if st.block is None or lo < st.block_lo or hi > st.block_lo + st.block.shape[-1]:
            st.block_lo = lo
            st.block = self.frame_net.frame_biases(st.frames, lo, lo + max(FramesState.BLOCK, hi - lo))
        idx = (left - st.block_lo).view(-1, 1, 1).expand(-1, st.block.shape[1], 1)
        pair = torch.cat([st.block.gather(2, idx), st.block.gather(2, idx + 1)], 2)  # [B, D, 2]
        return torch.lerp(pair[:, :, 0], pair[:, :, 1], w.unsqueeze(1).to(pair.dtype))

    # ---- the protocol ---------------------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, cond=None) -> torch.Tensor:
        biases = self._cond_biases(cond, x.shape[0])
        local = self._local_biases(self._frames(cond, x.shape[0]), 0, x.shape[1])
        G = self.config.gate_channels
        h = self._embed(x)
        skip = 0
        for i, layer in enumerate(self.layers):
            h, s = layer(h, None if biases is None else biases[i],
                         None if local is None else local.channels(i * G, (i + 1) * G))
            skip = skip + s
        return self._head(skip)

    def init_state(self, batch_size: int, cond=None, device=None) -> WaveNetState:
        device = torch.device(device) if device is not None else self.device
        queues = [layer.conv.new_queue(batch_size, device) for layer in self.layers]
        frames = self._frames(cond, batch_size)
        return WaveNetState(queues, 0, self._cond_biases(cond, batch_size),
                            None if frames is None else FramesState(*frames))

    def add_frames(self, state: WaveNetState, frames: torch.Tensor) -> None:
        """Append frames [B, C, n] to a generation's conditioning (a planner hands them over as it makes them).
        Frames not given yet count as silence, so a sample is final only once the frames up to its
        lookahead (engine/layers/frame_conditioner.py) are given."""
        fs = state.frames
        if fs is None:
            raise UserError("this WaveNet takes no conditioning frames")
        frames = frames.to(fs.frames.dtype).to(fs.frames.device)
        if frames.dim() != 3 or frames.shape[:2] != fs.frames.shape[:2]:
            raise UserError(f"more frames must be {list(fs.frames.shape[:2])} x n, got {tuple(frames.shape)}")
        fs.frames = torch.cat([fs.frames, frames], 2)
        fs.block = None  # cached frame biases near the old end read silence there

    def _step_weights(self) -> tuple[torch.Tensor, ...]:
        """Residual 1x1s pre-scaled by sqrt(1/2) and all skip 1x1s stacked, so a step does one skip matmul."""
        s = math.sqrt(0.5)
        params = [p for layer in self.layers for p in (*layer.residual.parameters(), *layer.skip.parameters())]
        return prepared(self, "step", lambda: (
            [layer.residual.weight[:, :, 0].t() * s for layer in self.layers],
            [layer.residual.bias * s for layer in self.layers],
            torch.cat([layer.skip.weight[:, :, 0].t() for layer in self.layers], 0),
            sum(layer.skip.bias for layer in self.layers),
        ), *params)

    def step(self, x_t: torch.Tensor, state: WaveNetState) -> tuple[torch.Tensor, WaveNetState]:
        res_w, res_b, skip_w, skip_b = self._step_weights()
        h = self._embed(x_t.unsqueeze(1))[:, :, 0]  # [B, R]
        G = self.config.gate_channels
        half = G // 2
        local = None if state.frames is None else self._local_step_bias(state.frames, state.t)
        gates = []
        for i, layer in enumerate(self.layers):
            z = layer.conv.step(h, state.queues[i], state.t)
            if state.cond_bias is not None:
                z = z + state.cond_bias[i]
            if local is not None:
                z = z + local[:, i * G:(i + 1) * G]
            g = torch.tanh(z[:, :half]) * torch.sigmoid(z[:, half:])
            h = torch.addmm(res_b[i], g, res_w[i]).add_(h, alpha=math.sqrt(0.5))
            gates.append(g)
        skip = torch.addmm(skip_b, torch.cat(gates, 1), skip_w)
        state.t += 1
        return self._head(skip.unsqueeze(-1))[:, 0], state

    def prime(self, x: torch.Tensor, state: WaveNetState) -> tuple[torch.Tensor, WaveNetState]:
        """The prompt in one parallel pass; each layer's queue is refilled from that layer's input sequence."""
        if x.shape[1] == 0:
            raise ValueError("prime needs at least one token")
        h = self._embed(x)
        G = self.config.gate_channels
        fs = state.frames
        local = None if fs is None else self._local_biases((fs.frames, fs.first_sample), state.t, x.shape[1])
        skip = 0
        for i, layer in enumerate(self.layers):
            z, state.queues[i] = layer.conv.prime(h, state.queues[i], state.t)
            if state.cond_bias is not None:
                z = z + state.cond_bias[i].unsqueeze(-1)
            if local is not None:
                z = z + local.channels(i * G, (i + 1) * G)
            g = layer.gate(z)
            h = (h + layer.residual(g)) * math.sqrt(0.5)
            skip = skip + layer.skip(g[:, :, -1:])
        state.t += x.shape[1]
        return self._head(skip)[:, -1], state


register_family("wavenet", WaveNetConfig, WaveNet)
