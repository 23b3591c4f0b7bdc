"""Turn what the user gave (an audio file of any format and rate, or seed text) into prompt ids for the model.

Odd but usable input is accepted with a warning (silence, a very low sample rate, a long recording, a long seed);
unusable input raises UserError with the reason.  Decoding is engine.audio's soundfile reader; browsers record
the microphone as webm/ogg in some cases, which libsndfile may not read, so those go through ffmpeg first.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable

import numpy as np
import torch

import engine
from engine.audio import AudioError, AudioTooLarge

from .errors import UserError
from .limits import Limits

SILENCE_PEAK = 1e-3  # below about -60 dBFS the prompt is treated as silence


def _ffmpeg_to_wav(path: str) -> str | None:
    """Decode anything ffmpeg reads to a temporary wav; None if ffmpeg is missing or fails."""
    exe = shutil.which("ffmpeg")
    if exe is None:
        return None
    fd, out = tempfile.mkstemp(suffix=".wav", prefix="prompt-")
    os.close(fd)
    try:
        done = subprocess.run([exe, "-v", "error", "-nostdin", "-y", "-i", path, "-t", "600", "-ac", "1", out],
                              capture_output=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired):
        done = None
    if done is None or done.returncode != 0 or os.path.getsize(out) == 0:
        os.unlink(out)
        return None
    return out


def read_prompt_audio(path: str) -> tuple[np.ndarray, int]:
    """(mono float wave, its own rate) from any audio file; UserError with the reason if it cannot be read."""
    try:
        return engine.audio.read_audio(path)
    except AudioError as first:  # a format libsndfile cannot read (mp3 on old builds, m4a, webm): try ffmpeg
        if isinstance(first, AudioTooLarge) or not os.path.isfile(path) or os.path.getsize(path) == 0:
            raise UserError(f"Audio prompt: {first}") from None
        converted = _ffmpeg_to_wav(path)
        if converted is None:
            raise UserError(f"Audio prompt: {first}") from None
        try:
            return engine.audio.read_audio(converted)
        except AudioError:
            raise UserError(f"Audio prompt: {first}") from None
        finally:
            os.unlink(converted)


def audio_prompt(path: str, tokens: engine.TokenSpec, limits: Limits, warn: Callable[[str], None]) -> torch.Tensor:
    """Audio file -> prompt ids [T] at the model's rate and quantization."""
    wave, rate = read_prompt_audio(path)
    if len(wave) == 0:
        raise UserError("Audio prompt: the file holds no samples.")
    keep = int(limits.max_prompt_seconds * rate)
    if len(wave) > keep:
        warn(f"The audio prompt is {len(wave) / rate:.1f} s long; only its last {limits.max_prompt_seconds:g} s "
             "are used.")
        wave = wave[-keep:]
    if rate < tokens.sample_rate:
        warn(f"The audio prompt was recorded at {rate} Hz; it is resampled to the model's {tokens.sample_rate} Hz "
             f"and has no sound above {rate // 2} Hz.")
    try:
        wave = engine.audio.resample(wave, rate, tokens.sample_rate)
    except AudioError as e:
        raise UserError(f"Audio prompt: {e}") from None
    if len(wave) == 0:
        raise UserError("Audio prompt: it is too short to use at the model's sample rate.")
    if float(np.max(np.abs(wave))) < SILENCE_PEAK:
        warn("The audio prompt is silent (below -60 dBFS): the model continues from silence.")
    return engine.audio.quantize(torch.from_numpy(np.ascontiguousarray(wave)), tokens.vocab_size,
                                 tokens.quantization)


def text_prompt(seed_text, tokens: engine.TokenSpec, limits: Limits,
                warn: Callable[[str], None]) -> tuple[str, torch.Tensor | None]:
    """Seed text -> (the text as shown, prompt ids [T] or None for no seed).

    The family's start id goes first, as in training (a names model sees each name after a newline).
    """
    if seed_text is None:
        seed_text = ""
    if not isinstance(seed_text, str):
        raise UserError(f"Seed text must be text, got {type(seed_text).__name__}")
    seed_text = seed_text.encode("utf-8", errors="replace").decode("utf-8")  # lone surrogates -> '?'
    if len(seed_text) > limits.max_seed_chars:
        warn(f"The seed text has {len(seed_text):,} characters; only its last {limits.max_seed_chars:,} are used.")
        seed_text = seed_text[-limits.max_seed_chars:]
    if not seed_text:
        return "", None
    ids = engine.text.encode(seed_text)
    known = set(tokens.symbols) if tokens.symbols is not None else set(range(tokens.vocab_size))
    if any(i not in known for i in ids):
        left_out = sorted({c for c in seed_text if any(b not in known for b in c.encode("utf-8", errors="replace"))})
        reads = (engine.describe_alphabet(tokens.symbols) if tokens.symbols is not None
                 else f"byte ids below {tokens.vocab_size}")
        warn(f"This model reads only {reads}; left out of the seed text: {' '.join(map(repr, left_out[:10]))}")
        ids = [i for i in ids if i in known]
        seed_text = engine.text.decode(ids)  # the result shows the seed the model actually read
        if not ids:
            return seed_text, None
    if ids and ids[0] != tokens.start_id:
        ids = [tokens.start_id] + ids
    return seed_text, torch.tensor(ids, dtype=torch.long)
