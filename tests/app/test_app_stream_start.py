"""The live player's first segment: every frame our first 0.5 s chunk makes, not just the first one out."""
from __future__ import annotations

import subprocess
import time

import numpy as np
import pytest

from app import stream_start
from app.ffmpeg import ensure_ffmpeg


def test_install_wraps_once():
    assert stream_start.install() is True
    from gradio.audio_stream_encoder import AacStreamEncoder
    wrapped = AacStreamEncoder.take
    assert stream_start.install() is True and AacStreamEncoder.take is wrapped  # idempotent
    assert wrapped.settles_first_segment


@pytest.mark.skipif(ensure_ffmpeg() is None, reason="no ffmpeg")
@pytest.mark.parametrize("rounds", range(3))
def test_first_take_holds_every_frame_of_the_first_chunk(rounds):
    """The app's first chunk at 8 kHz: 0.5 s rounded up to whole engine chunks, 4096 samples = 4 AAC frames, of
    which the encoder can finish 3 (one frame of look-ahead) before more audio comes.  Gradio's own first take
    often returned 1 (128 ms), which Chromium does not start playing on (see app/stream_start.py)."""
    stream_start.install()
    from gradio.audio_stream_encoder import AacStreamEncoder
    enc = AacStreamEncoder(8000, 1)
    try:
        pcm = (np.sin(np.arange(4096) * 0.05) * 8000).astype("<i2").tobytes()
        enc.feed(pcm)
        frames = enc.take()
        assert len(frames) == 3, len(frames)
        enc.feed(pcm)
        assert len(enc.take(1.0)) >= 1  # later takes are Gradio's own
    finally:
        enc.close()


def _new_spares(spares, before: set[int], timeout: float = 10.0) -> set[int]:
    """The spare processes started since `before` was read (waits for at least one)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not spares.pids() - before:
        time.sleep(0.02)
    return spares.pids() - before


@pytest.mark.skipif(ensure_ffmpeg() is None, reason="no ffmpeg")
def test_an_encoder_started_ahead_is_handed_out_and_encodes():
    """The first chunk's encoder is a process started before the click (prewarm), not one started under it."""
    stream_start.install()
    from gradio import audio_stream_encoder
    spares = audio_stream_encoder.subprocess
    assert isinstance(spares, stream_start.SpareEncoders)
    before = spares.pids()
    assert stream_start.prewarm(48000) is True
    ahead = _new_spares(spares, before)
    assert len(ahead) == 1
    enc = audio_stream_encoder.AacStreamEncoder(48000, 1)
    try:
        assert enc.process.pid in ahead
        enc.feed((np.sin(np.arange(9600) * 0.05) * 8000).astype("<i2").tobytes())  # 0.2 s at 48 kHz
        assert len(enc.take()) >= 5  # 21 ms frames: most of the chunk is playable at once
    finally:
        enc.close()
    assert len(_new_spares(spares, ahead | before)) == 1  # the next one is already waiting
    assert audio_stream_encoder.subprocess.PIPE == subprocess.PIPE  # everything else is the real module
