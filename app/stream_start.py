"""Make the live player's first audio segment long enough for the browser to start playing it at once.

Gradio 6.31 streams audio through one ffmpeg AAC encoder per stream (gradio/audio_stream_encoder.py): each chunk
the handler yields becomes one HLS segment holding the AAC frames the encoder has emitted by the time
`AacStreamEncoder.take` looks, and the first look returns as soon as *one* frame is out.  Traced in Chromium
(tests/browser/measure_latency.py, 2026-11-23): when the first segment holds one frame (128 ms at 8 kHz) the
browser does not start on it and waits for the player's next playlist poll, about 250 ms later; when it holds the
three frames our first 0.5 s chunk makes, it plays as soon as it is fetched.  So on a stream's first take we keep
collecting while frames are still coming (they come within a few ms of each other), for at most
`FIRST_TAKE_BUDGET_S`.  Later takes are Gradio's own.

This wraps a private Gradio method, so `install` checks the shape it relies on and otherwise changes nothing
(the app still streams, only with Gradio's own first segment).
"""
from __future__ import annotations

import time

SETTLE_S = 0.02  # a frame gap longer than this ends the first segment
FIRST_TAKE_BUDGET_S = 0.15  # the most the first segment waits for more frames


def install() -> bool:
    """Wrap `AacStreamEncoder.take` once; True when the wrapper is in place."""
    try:
        from gradio import audio_stream_encoder
    except ImportError:
        return False
    encoder = getattr(audio_stream_encoder, "AacStreamEncoder", None)
    original = getattr(encoder, "take", None)
    if original is None:
        return False
    if getattr(original, "settles_first_segment", False):
        return True

    def take(self, timeout: float | None = None) -> list[bytes]:
        first = timeout is None and getattr(self, "_waited_for_startup", True) is False
        frames = original(self, timeout)
        if first and frames:
            deadline = time.monotonic() + FIRST_TAKE_BUDGET_S
            while time.monotonic() < deadline:
                more = original(self, SETTLE_S)  # an explicit timeout: wait that long for any frame
                if not more:
                    break
                frames += more
        return frames

    take.settles_first_segment = True
    take.__doc__ = original.__doc__
    encoder.take = take
    return True
