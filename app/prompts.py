"""Turn what the user gave (an audio file of any format and rate, or seed text) into prompt ids for the model.

Odd but usable input is accepted with a warning (silence, a very low sample rate, a long recording, a long seed);
unusable input raises UserError with the reason.  Only the end of an audio file is read (the last
`max_prompt_seconds`): soundfile seeks there; formats libsndfile does not read (browsers record the microphone as
webm, phones as m4a) go through ffmpeg, streamed, keeping the end.
"""
from __future__ import annotations

import os
from collections.abc import Callable

import numpy as np
import soundfile as sf
import torch

import engine
from engine.audio import AudioError

from .errors import UserError
from .ffmpeg import TooLong, decode_tail
from .limits import Limits

SILENCE_PEAK = 1e-3  # below about -60 dBFS the prompt is treated as silence


READABLE = "wav, flac, ogg, mp3, m4a or webm"
MAX_RECORDING_SECONDS = 3600.0  # a longer prompt file is refused (only its end would be used anyway)


def _tail_soundfile(path: str, keep_seconds: float) -> tuple[np.ndarray, int, float] | None:
    """The last `keep_seconds` of a file libsndfile reads (seeking there: no decoding of the rest); None if it
    cannot read the file."""
    try:
        info = sf.info(path)
        if info.samplerate <= 0:
            return None
        frames, rate = int(info.frames), int(info.samplerate)
        if frames > MAX_RECORDING_SECONDS * rate:
            return np.zeros(0, np.float32), rate, frames / rate
        start = max(0, frames - int(keep_seconds * rate))
        data, rate = sf.read(path, start=start, dtype="float32", always_2d=True)
    except Exception:  # libsndfile's messages name the server's path; the caller says it in its own words
        return None
    wave = engine.audio.to_mono_float(data)
    return wave, rate, max(frames, start + len(wave)) / rate


def read_prompt_audio(path: str, keep_seconds: float = 600.0) -> tuple[np.ndarray, int, float]:
    """(mono float wave of the file's last `keep_seconds`, its own rate, the whole recording's length in s) from
    any audio file; UserError with the reason (no server paths) if it cannot be read.  Formats libsndfile does
    not read (m4a, webm: what browsers record) are decoded by ffmpeg, which also keeps only the end."""
    name = os.path.basename(str(path))
    if not os.path.isfile(path):
        raise UserError(f"Audio prompt: {name} was not found on the server; upload it again.")
    size = os.path.getsize(path)
    if size == 0:
        raise UserError(f"Audio prompt: {name} is empty.")
    if size > engine.audio.MAX_FILE_BYTES:
        raise UserError(f"Audio prompt: {name} is too large ({size / 2**20:.0f} MB > "
                        f"{engine.audio.MAX_FILE_BYTES / 2**20:.0f} MB).")
    got = _tail_soundfile(path, keep_seconds)
    if got is None:
        try:
            got = decode_tail(path, keep_seconds, max_seconds=MAX_RECORDING_SECONDS)
        except TooLong as e:
            got = np.zeros(0, np.float32), 1, e.seconds
    if got is None:
        raise UserError(f"Audio prompt: cannot read {name}: it is not a readable audio file ({READABLE}).")
    wave, rate, seconds = got
    if seconds > MAX_RECORDING_SECONDS:
        raise UserError(f"Audio prompt: {name} is {seconds / 60:.0f} minutes long; the limit is "
                        f"{MAX_RECORDING_SECONDS / 60:.0f} minutes (only its last seconds are used: cut it shorter).")
    return wave, rate, seconds


def audio_prompt(path: str, tokens: engine.TokenSpec, limits: Limits, warn: Callable[[str], None]) -> torch.Tensor:
    """Audio file -> prompt ids [T] at the model's rate and quantization."""
    wave, rate, seconds = read_prompt_audio(path, limits.max_prompt_seconds)
    if len(wave) == 0:
        raise UserError("Audio prompt: the file holds no samples.")
    keep = int(limits.max_prompt_seconds * rate)
    if len(wave) > keep or seconds > limits.max_prompt_seconds + 1 / rate:
        warn(f"The audio prompt is {_duration(seconds)} long; only its last {limits.max_prompt_seconds:g} s "
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
    return engine.audio.encode_audio(torch.from_numpy(np.ascontiguousarray(wave)), tokens)


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(seconds, 60)
    return f"{minutes:.0f} min {rest:.0f} s" if minutes < 60 else f"{minutes // 60:.0f} h {minutes % 60:.0f} min"


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
