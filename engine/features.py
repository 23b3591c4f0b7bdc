"""Frame features of audio: the one log-mel front end that training, evaluation and generation share.

A model conditioned on frames stores its `LogMelConfig` in its checkpoint, so the frames it is given at
generation time are computed exactly as the frames it was trained on.  Frame `f` describes the samples
`f * hop ... (f + 1) * hop - 1`: the STFT window is centred on the middle of those samples, so a clip of `T`
samples has `ceil(T / hop)` frames and frame and sample grids line up without an offset to remember.

Values are `log(max(mel power, floor) / floor) / log(1 / floor)`: 0 is silence (at or below the floor), 1 a mel
power of 1, so features sit in about [0, 1.5] whatever the floor, a scale a network takes without tuning.  A
conditioned model can then treat "no frame here" (before a clip, after it, padding) as silence, zeros.

The mel filterbank is torchaudio's (`melscale_fbanks`, Slaney-normalised like librosa's default); the STFT is
torch's, so features run on the model's device.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torchaudio.functional as AF

from .errors import UserError


class FeatureError(UserError):
    """Audio or frames that do not fit a feature front end."""


@dataclass(frozen=True)
class LogMelConfig:
    sample_rate: int = 16000
    hop: int = 128  # samples per frame
    n_fft: int = 512  # STFT window (Hann) and FFT size
    n_mels: int = 40
    fmin: float = 0.0
    fmax: float | None = None  # None = Nyquist
    floor: float = 1e-5  # mel power at or below this is silence (feature value 0)

    def __post_init__(self) -> None:
        if min(self.sample_rate, self.hop, self.n_fft, self.n_mels) < 1:
            raise FeatureError("sample_rate, hop, n_fft and n_mels must be positive")
        if self.n_fft < self.hop:
            raise FeatureError(f"n_fft ({self.n_fft}) must be at least the hop ({self.hop})")
        if not 0 < self.floor < 1:
            raise FeatureError(f"floor must be in (0, 1), got {self.floor}")

    def to_dict(self) -> dict:
        return asdict(self)

    def frames_for(self, n_samples: int) -> int:
        """Frames that cover `n_samples` samples (the last one may be partly past the end)."""
        return math.ceil(n_samples / self.hop)


class LogMel:
    """`LogMel(config)(wave)`: float waveform [T] or [B, T] in [-1, 1] -> frames [B, n_mels, ceil(T/hop)], >= 0."""

    def __init__(self, config: LogMelConfig):
        self.config = config
        c = config
        self._fbank = AF.melscale_fbanks(c.n_fft // 2 + 1, c.fmin, c.fmax or c.sample_rate / 2, c.n_mels,
                                         c.sample_rate, norm="slaney", mel_scale="slaney")  # [freqs, mels]
        self._window = torch.hann_window(c.n_fft)

    def __call__(self, wave: torch.Tensor) -> torch.Tensor:
        c = self.config
        wave = torch.as_tensor(wave, dtype=torch.float32)
        if wave.dim() == 1:
            wave = wave.unsqueeze(0)
        if wave.dim() != 2 or wave.shape[1] == 0:
            raise FeatureError(f"features need a waveform [T] or [B, T] with T > 0, got shape {tuple(wave.shape)}")
        n_frames = c.frames_for(wave.shape[1])
        # centre frame f on sample f * hop + hop / 2: pad so that the STFT's frame f starts at f * hop + hop/2 - n_fft/2
        left = c.n_fft // 2 - c.hop // 2
        right = n_frames * c.hop - wave.shape[1] + c.n_fft - c.hop - left
        padded = torch.nn.functional.pad(wave, (left, max(right, 0)))
        spec = torch.stft(padded, c.n_fft, c.hop, window=self._window.to(wave.device), center=False,
                          return_complex=True)[:, :, :n_frames]
        mel = (spec.abs() ** 2).transpose(1, 2) @ self._fbank.to(wave.device)  # [B, F, mels]
        return (torch.log(mel.clamp(min=c.floor) / c.floor) / math.log(1 / c.floor)).transpose(1, 2).contiguous()
