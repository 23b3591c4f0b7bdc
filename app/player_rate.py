"""Play low-rate audio to the live player at 16 kHz or more, so its first segment is short.

Gradio's live player gets its audio through an AAC encoder that emits frames of 1024 samples, and the browser
starts playing once the first segment holds about three of them (app/stream_start.py).  At 8 kHz that is 0.38 s
of audio the app must generate before the first chunk can go out; at 16 kHz it is 0.19 s.  So an 8 kHz model's
live chunks are upsampled (band-limited, by an integer factor) before they go to the player; the wav files and
the final result keep the model's own rate.

Chunks are upsampled one by one, so `PlayerUpsampler` keeps a little of the signal on each side of a chunk
boundary: the output of `feed`s and `flush` is the same as upsampling the whole clip at once (tested), with no
click at a boundary.  It holds back `CONTEXT` input samples (under 2 ms at 8 kHz) until the next chunk or the
flush, because the interpolation at a sample reads the samples after it.
"""
from __future__ import annotations

import math

import torch
import torchaudio.functional as AF

MIN_PLAYER_RATE = 16000  # the live player gets at least this rate
CONTEXT = 16  # input samples kept on each side of a boundary: more than the interpolation filter reaches (~7)


def player_factor(rate: int) -> int:
    """The integer factor that brings `rate` to at least MIN_PLAYER_RATE (1 for rates already there)."""
    return max(1, math.ceil(MIN_PLAYER_RATE / max(int(rate), 1)))


class PlayerUpsampler:
    """Stateful band-limited upsampling of a stream of float chunks by an integer `factor`."""

    def __init__(self, factor: int):
        if factor < 1:
            raise ValueError(f"factor must be >= 1, got {factor}")
        self.factor = factor
        self._left = torch.zeros(0)  # already played input, kept as the filter's left context
        self._held = torch.zeros(0)  # input not played yet (its right context has not arrived)

    def feed(self, chunk: torch.Tensor) -> torch.Tensor:
        """The upsampled audio of everything fed so far that can be made final now (may be empty)."""
        if self.factor == 1:
            return chunk.float()
        signal = torch.cat([self._left, self._held, chunk.float()])
        start, ready = len(self._left), len(signal) - CONTEXT
        if ready <= start:  # not enough right context yet
            self._held = signal[start:]
            return torch.zeros(0)
        out = self._upsample(signal)[start * self.factor:ready * self.factor]
        self._left, self._held = signal[max(0, ready - CONTEXT):ready], signal[ready:]
        return out

    def flush(self) -> torch.Tensor:
        """The rest, as if the clip ended here (silence after it, as for a whole-clip upsampling)."""
        if self.factor == 1 or not len(self._held):
            return torch.zeros(0)
        signal = torch.cat([self._left, self._held])
        out = self._upsample(signal)[len(self._left) * self.factor:]
        self._left, self._held = torch.zeros(0), torch.zeros(0)
        return out

    def _upsample(self, signal: torch.Tensor) -> torch.Tensor:
        return AF.resample(signal, 1, self.factor)
