"""Make the live player's first audio segment long enough for the browser to start playing it at once.

Gradio 6.31 streams audio through one ffmpeg AAC encoder per stream (gradio/audio_stream_encoder.py): each chunk
the handler yields becomes one HLS segment holding the AAC frames the encoder has emitted by the time
`AacStreamEncoder.take` looks, and the first look returns as soon as *one* frame is out.  Traced in Chromium
(tests/browser/measure_latency.py, 2026-11-23): when the first segment holds one frame (128 ms at 8 kHz) the
browser does not start on it and waits for the player's next playlist poll, about 250 ms later; when it holds the
three frames a 0.5 s chunk made, it played as soon as it was fetched.  So on a stream's first take we keep
collecting while frames are still coming (they come within a few ms of each other), for at most
`FIRST_TAKE_BUDGET_S`.  Later takes are Gradio's own.  (Since 2026-12-03 the app sends the live player ~48 kHz
audio, app/generate.py ChunkPolicy.player_factor, so a frame is 21 ms and the first 0.25 s chunk makes about ten.)

Gradio also starts that ffmpeg process only when the first chunk arrives, while the generation is using the CPU:
40-70 ms before the first segment exists.  `SpareEncoders` starts the next encoder process ahead of time (idle,
blocked on its stdin) and hands it out when Gradio asks for the same command line; `prewarm` starts the first.

This wraps private Gradio code, so `install` checks the shape it relies on and otherwise changes nothing
(the app still streams, only with Gradio's own first segment and encoder start).
"""
from __future__ import annotations

import subprocess
import threading
import time

SETTLE_S = 0.01  # a frame gap longer than this ends the first segment (frames come within ~1 ms)
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
    if getattr(audio_stream_encoder, "subprocess", None) is subprocess:  # the module Gradio starts ffmpeg with
        audio_stream_encoder.subprocess = SpareEncoders(subprocess)
    return True


class SpareEncoders:
    """Stands in for the `subprocess` module inside gradio.audio_stream_encoder: `Popen` hands out a process
    started earlier with the same command line when there is one, and starts the next spare in the background.

    A spare ffmpeg only waits on its stdin; when the app exits its pipe closes and it exits too.  At most
    `MAX_KINDS` command lines (sample rates) keep a spare."""

    MAX_KINDS = 2

    def __init__(self, real=subprocess):
        self._real = real
        self._spares: dict[tuple, subprocess.Popen] = {}
        self._lock = threading.Lock()

    def __getattr__(self, name: str):
        return getattr(self._real, name)

    def Popen(self, args, **kwargs) -> subprocess.Popen:  # noqa: N802 (the name Gradio calls)
        key = (tuple(args), tuple(sorted(kwargs.items())))
        with self._lock:
            proc = self._spares.pop(key, None)
        if proc is None or proc.poll() is not None:  # none ready (or it died): start one now, as Gradio would
            proc = self._real.Popen(args, **kwargs)
        threading.Thread(target=self._start_spare, args=(key, args, kwargs), name="spare-encoder",
                         daemon=True).start()
        return proc

    def _start_spare(self, key: tuple, args, kwargs) -> None:
        try:
            spare = self._real.Popen(args, **kwargs)
        except OSError:
            return
        with self._lock:
            old = self._spares.pop(key, None)
            self._spares[key] = spare
            while len(self._spares) > self.MAX_KINDS:  # the oldest kind goes
                extra = self._spares.pop(next(iter(self._spares)))
                _stop(extra)
        if old is not None:
            _stop(old)

    def pids(self) -> set[int]:
        """The process ids of the spares waiting now."""
        with self._lock:
            return {p.pid for p in self._spares.values() if p.poll() is None}


def _stop(proc: subprocess.Popen) -> None:
    for pipe in (proc.stdin, proc.stdout):
        if pipe is not None:
            pipe.close()  # an idle ffmpeg reads end of input and exits
    proc.kill()
    proc.wait()


def prewarm(sample_rate: int, channels: int = 1) -> bool:
    """Start a spare encoder for streams at this rate, so the first Generate click finds one; True if it did."""
    try:
        from gradio import audio_stream_encoder
    except ImportError:
        return False
    if not isinstance(getattr(audio_stream_encoder, "subprocess", None), SpareEncoders):
        return False
    try:
        audio_stream_encoder.AacStreamEncoder(sample_rate, channels).close()  # its handing-out starts the spare
    except Exception:  # no ffmpeg, or Gradio changed: streams start as Gradio starts them
        return False
    return True
