"""Put an `ffmpeg` executable on PATH: audio prompts that libsndfile cannot read (m4a, webm) are decoded by it.

The `imageio-ffmpeg` wheel carries a static ffmpeg binary under a versioned name, so a fresh install needs no
system package and no manual step: we link it as `ffmpeg` in a private folder and prepend that to PATH.
Decoding is streamed and keeps only the prompt's end (`decode_tail`).
"""
from __future__ import annotations

import os
import shutil
import struct
import subprocess
import tempfile
import threading
from collections import deque
from pathlib import Path

import numpy as np


def ensure_ffmpeg() -> str | None:
    """Return the path of the `ffmpeg` Gradio will run; link the wheel's binary onto PATH if none is there."""
    found = shutil.which("ffmpeg")
    if found:
        return found
    try:
        import imageio_ffmpeg
        exe = Path(imageio_ffmpeg.get_ffmpeg_exe())
    except (ImportError, RuntimeError):
        return None
    folder = Path(tempfile.gettempdir()) / f"playground-ffmpeg-{os.getuid() if hasattr(os, 'getuid') else 0}"
    folder.mkdir(parents=True, exist_ok=True)
    link = folder / ("ffmpeg.exe" if os.name == "nt" else "ffmpeg")
    if not link.exists():
        if link.is_symlink():  # left by an older install whose binary moved
            link.unlink(missing_ok=True)
        try:
            link.symlink_to(exe)
        except FileExistsError:  # another process linked it first
            pass
        except OSError:  # no symlinks (some Windows setups): a copy works as well
            shutil.copy2(exe, link)
    os.environ["PATH"] = f"{folder}{os.pathsep}{os.environ.get('PATH', '')}"
    return shutil.which("ffmpeg")


def decode_tail(path: str | os.PathLike, keep_seconds: float, max_seconds: float | None = None,
                timeout: float = 120.0) -> tuple[np.ndarray, int, float] | None:
    """Decode any file ffmpeg reads to mono and keep only its last `keep_seconds`: (wave, rate, whole length in s).

    ffmpeg streams 16-bit wav through a pipe; a buffer holds the last `keep_seconds` only, so memory does not grow
    with the recording, and the length is counted from the decoded samples (an m4a's or webm's header may not
    say it).  Returns None when ffmpeg is missing or cannot decode the file; raises `TooLong` past `max_seconds`.
    """
    exe = shutil.which("ffmpeg") or ensure_ffmpeg()
    if exe is None:
        return None
    cmd = [exe, "-v", "error", "-nostdin", "-i", str(path), "-vn", "-ac", "1", "-c:a", "pcm_s16le", "-f", "wav", "-"]
    try:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    except OSError:
        return None
    timer = threading.Timer(timeout, proc.kill)
    timer.start()
    try:
        rate = _wav_header(proc.stdout)
        if rate is None:
            return None
        keep = max(1, int(keep_seconds * rate)) * 2
        tail: deque[bytes] = deque()
        held = total = 0
        while chunk := proc.stdout.read(1 << 16):
            tail.append(chunk)
            held += len(chunk)
            total += len(chunk)
            while tail and held - len(tail[0]) >= keep:
                held -= len(tail.popleft())
            if max_seconds is not None and total / 2 / rate > max_seconds:
                raise TooLong(total / 2 / rate)
        if proc.wait() != 0 or total < 2:
            return None
    finally:
        timer.cancel()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
    data = b"".join(tail)  # ends where the stream ends: the last n bytes, n even, are whole samples
    if total % 2:
        data = data[:-1]
    data = data[len(data) - min(keep, len(data) // 2 * 2):]
    wave = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
    return wave, rate, total / 2 / rate


class TooLong(Exception):
    """A recording longer than decode_tail's `max_seconds` (at least `seconds` long)."""

    def __init__(self, seconds: float):
        super().__init__(f"at least {seconds:.0f} s long")
        self.seconds = seconds


def _wav_header(stream) -> int | None:
    """Read a streamed wav's header up to its data chunk; the sample rate of 16-bit mono PCM, else None."""
    head = stream.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    rate = None
    while True:
        chunk = stream.read(8)
        if len(chunk) < 8:
            return None
        cid, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
        if cid == b"data":
            return rate
        body = stream.read(size + (size & 1))
        if cid == b"fmt ":
            fmt, channels, rate = struct.unpack("<HHI", body[:8])
            bits = struct.unpack("<H", body[14:16])[0]
            if fmt not in (1, 0xFFFE) or channels != 1 or bits != 16 or rate <= 0:
                return None
