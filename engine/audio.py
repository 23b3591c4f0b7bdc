"""Audio codec: quantization to ids, file reading, resampling, writing.

Quantization uses torchaudio.functional's mu-law ops (so it runs on the model's device); files are read and
written with soundfile (torchaudio 2.11's load/save need torchcodec, which we do not use).  Every reader returns
mono float32 in [-1, 1] at the requested rate, whatever the file's rate, channel count or sample format.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

from .errors import UserError

QUANTIZATIONS = ("mulaw", "linear")
MAX_SECONDS = 600.0  # refuse to decode more than this much audio from one file (a hostile upload guard)
MAX_FILE_BYTES = 200 * 1024 * 1024
PROMPT_SECONDS = 10.0  # an audio prompt keeps its last this-many seconds (the CLI, and the app's default cap)
# the audio files the trainer reads and the app offers for training: whatever libsndfile decodes, by suffix
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif", ".au")


class AudioError(UserError):
    """An audio file or array that cannot be used, with a message fit to show a user."""


class AudioTooLarge(AudioError):
    """A readable file refused for its size or length: another decoder must not try it either."""


def _as_tensor(wave) -> torch.Tensor:
    t = torch.as_tensor(np.asarray(wave) if not isinstance(wave, torch.Tensor) else wave)
    if not t.is_floating_point():
        raise AudioError("quantize expects a float waveform in [-1, 1]")
    return torch.nan_to_num(t.float(), nan=0.0, posinf=1.0, neginf=-1.0).clamp(-1.0, 1.0)


def quantize(wave, n_classes: int = 256, mode: str = "mulaw") -> torch.Tensor:
    """Float waveform in [-1, 1] -> LongTensor of ids in 0..n_classes-1 (NaN -> 0, out of range clipped)."""
    x = _as_tensor(wave)
    if mode == "mulaw":
        return AF.mu_law_encoding(x, n_classes).long().clamp(0, n_classes - 1)
    if mode == "linear":
        return torch.round((x + 1) * 0.5 * (n_classes - 1)).long()
    raise ValueError(f"quantization must be one of {QUANTIZATIONS}, got {mode!r}")


def dequantize(ids, n_classes: int = 256, mode: str = "mulaw") -> torch.Tensor:
    """Ids -> float waveform in [-1, 1]."""
    ids = torch.as_tensor(ids).long().clamp(0, n_classes - 1)
    if mode == "mulaw":
        return AF.mu_law_decoding(ids, n_classes).float()
    if mode == "linear":
        return ids.float() / (n_classes - 1) * 2 - 1
    raise ValueError(f"quantization must be one of {QUANTIZATIONS}, got {mode!r}")


def emphasize(wave, coef: float) -> torch.Tensor:
    """Pre-emphasis, e[n] = x[n] - coef * x[n-1] with x[-1] = 0: a first-order high-pass that flattens the
    spectrum of music and speech before quantization (LPCNet, Valin & Skoglund 2019).  A model of e whose
    samples are off by a few quantization steps makes white noise in e; `deemphasize` turns it into noise that
    falls with frequency, under the signal's own low-frequency power, instead of a flat hiss across the band."""
    x = _as_tensor(wave)
    if not coef:
        return x
    return (x - coef * torch.cat([x.new_zeros(x.shape[:-1] + (1,)), x[..., :-1]], -1)).clamp(-1.0, 1.0)


def deemphasize(e, coef: float, before: float = 0.0) -> torch.Tensor:
    """The inverse of `emphasize`: x[n] = e[n] + coef * x[n-1], where x[-1] = `before` (the last sample of the
    audio before this piece)."""
    e = torch.as_tensor(e, dtype=torch.float32)
    if not coef:
        return e
    return torch.from_numpy(_deemphasis(e, coef, before)).float().clamp(-1.0, 1.0)


def _deemphasis(e: torch.Tensor, coef: float, before: float) -> np.ndarray:
    """De-emphasis in float64, unclamped, as one sequential recursion (scipy's lfilter with its state given), so a
    waveform decoded piece by piece, each piece starting from the last unclamped value, is bit-identical to the
    waveform decoded whole (torchaudio's lfilter takes no initial state)."""
    from scipy.signal import lfilter
    x = e.double().numpy()
    if x.shape[-1] == 0:
        return x
    zi = np.full(x.shape[:-1] + (1,), coef * before)
    return lfilter([1.0], [1.0, -coef], x, axis=-1, zi=zi)[0]


def encode_audio(wave, spec) -> torch.Tensor:
    """A float waveform in [-1, 1] -> a model's ids, as its TokenSpec says (pre-emphasis, then quantization)."""
    return quantize(emphasize(wave, spec.preemphasis), spec.vocab_size, spec.quantization)


def decode_audio(ids, spec) -> torch.Tensor:
    """A model's ids -> the float waveform they stand for (dequantized, then de-emphasized from silence); a stream
    of chunks, or the continuation of a prompt, goes through `AudioDecoder`."""
    return deemphasize(dequantize(ids, spec.vocab_size, spec.quantization), spec.preemphasis)


class AudioDecoder:
    """`decode_audio` for a stream of id chunks: each chunk continues the waveform of the chunks before it (and of
    the prompt's ids, when the generation continues one), so the chunks decoded one by one are, sample for
    sample, the clip decoded whole."""

    def __init__(self, spec, prompt=None) -> None:
        self.spec = spec
        self.before = 0.0  # the last decoded sample, float64 and unclamped
        if prompt is not None and spec.preemphasis:
            prompt = torch.as_tensor(prompt)
            if prompt.numel():  # one row: the rows of a batch share their prompt, and a row's state is its own
                self(prompt.reshape(-1, prompt.shape[-1])[0])

    def __call__(self, ids) -> torch.Tensor:
        e = dequantize(ids, self.spec.vocab_size, self.spec.quantization)
        if not self.spec.preemphasis:
            return e
        x = _deemphasis(e, self.spec.preemphasis, self.before)
        if x.shape[-1]:
            self.before = float(x[-1])
        return torch.from_numpy(x).float().clamp(-1.0, 1.0)


def to_mono_float(data: np.ndarray) -> np.ndarray:
    """Any sample format and channel count -> mono float32 in [-1, 1], NaN/inf replaced, clipped."""
    data = np.asarray(data)
    if data.dtype.kind in "iu":
        info = np.iinfo(data.dtype)
        data = (data.astype(np.float64) - (info.max + 1 + info.min) / 2) / ((info.max - info.min + 1) / 2)
    data = data.astype(np.float32, copy=False)
    if data.ndim == 2:
        data = data.mean(axis=1)  # (frames, channels), as soundfile returns it
    elif data.ndim != 1:
        raise AudioError(f"audio must be 1-D or 2-D (samples x channels), got shape {data.shape}")
    return np.clip(np.nan_to_num(data, nan=0.0, posinf=1.0, neginf=-1.0), -1.0, 1.0)


def resample(wave: np.ndarray, orig_rate: int, new_rate: int) -> np.ndarray:
    """Band-limited resampling with torchaudio.functional.resample."""
    if orig_rate <= 0 or new_rate <= 0:
        raise AudioError(f"sample rates must be positive, got {orig_rate} -> {new_rate}")
    if orig_rate == new_rate or len(wave) == 0:
        return np.asarray(wave, dtype=np.float32)
    out = AF.resample(torch.from_numpy(np.ascontiguousarray(wave, dtype=np.float32)), int(orig_rate), int(new_rate))
    return np.clip(out.numpy(), -1.0, 1.0)


def read_audio(path: str | os.PathLike, sample_rate: int | None = None,
               max_seconds: float = MAX_SECONDS, keep_last_seconds: float | None = None) -> tuple[np.ndarray, int]:
    """Read wav/flac/ogg/mp3 (anything libsndfile reads) as mono float32, resampled to `sample_rate` if given.

    With `keep_last_seconds`, only the file's last that-many seconds are decoded (a seek where the format allows,
    else a pass over blocks that keeps the tail), so memory does not grow with the file's length.
    Returns (wave, rate).  Raises AudioError with a one-line reason for a missing, empty, corrupt or too long file.
    """
    p = Path(path)
    if not p.is_file():
        raise AudioError(f"audio file not found: {p}")
    size = p.stat().st_size
    if size == 0:
        raise AudioError(f"audio file is empty: {p.name}")
    if size > MAX_FILE_BYTES:
        raise AudioTooLarge(f"audio file is too large ({size / 2**20:.0f} MB > {MAX_FILE_BYTES / 2**20:.0f} MB): "
                            f"{p.name}")
    try:
        info = sf.info(str(p))
    except Exception as e:  # libsndfile's own message says what is wrong with the bytes
        raise AudioError(f"cannot read {p.name} as audio ({str(e).splitlines()[0][:200]})") from None
    if info.samplerate <= 0:
        raise AudioError(f"{p.name} has an invalid sample rate {info.samplerate}")
    if info.frames > max_seconds * info.samplerate:
        raise AudioTooLarge(f"{p.name} is {info.frames / info.samplerate:.0f} s long; the limit is {max_seconds:.0f} s")
    try:
        if keep_last_seconds is not None and info.frames > keep_last_seconds * info.samplerate:
            data, rate = _read_tail(p, max(1, int(keep_last_seconds * info.samplerate))), info.samplerate
        else:
            data, rate = sf.read(str(p), dtype="float32", always_2d=True)
    except Exception as e:
        raise AudioError(f"cannot decode {p.name} ({str(e).splitlines()[0][:200]})") from None
    if len(data) == 0:
        raise AudioError(f"{p.name} holds no audio samples")
    wave = to_mono_float(data)
    if sample_rate is not None:
        wave, rate = resample(wave, rate, sample_rate), sample_rate
    return wave, rate


def audio_seconds(path: str | os.PathLike) -> float:
    """The length of an audio file in seconds, from its header (nothing is decoded)."""
    try:
        info = sf.info(str(path))
    except Exception as e:
        raise AudioError(f"cannot read {Path(path).name} as audio ({str(e).splitlines()[0][:200]})") from None
    return info.frames / info.samplerate if info.samplerate > 0 else 0.0


def _read_tail(p: Path, keep: int) -> np.ndarray:
    """The last `keep` frames of a file [keep, channels] float32, without decoding the rest into memory."""
    with sf.SoundFile(str(p)) as f:
        if f.seekable() and f.frames > 0:
            f.seek(max(0, f.frames - keep))
            data = f.read(keep, dtype="float32", always_2d=True)
            if len(data):
                return data
            f.seek(0)
        tail = np.zeros((0, f.channels), dtype=np.float32)
        for block in f.blocks(blocksize=max(keep, 65536), dtype="float32", always_2d=True):
            tail = np.concatenate([tail, block])[-keep:]
        return tail


def write_wav(path: str | os.PathLike, wave, sample_rate: int) -> None:
    """Write mono 16-bit PCM wav (atomically: temp file, then rename)."""
    wave = to_mono_float(np.asarray(wave.cpu() if isinstance(wave, torch.Tensor) else wave))
    p = Path(path)
    tmp = p.with_name(p.name + ".tmp")
    try:
        sf.write(str(tmp), wave, int(sample_rate), subtype="PCM_16", format="WAV")
    except sf.LibsndfileError as e:  # libsndfile says only "System error" for a folder that is missing or read-only
        reason = e.error_string.rstrip(".")
        raise AudioError(f"cannot write {p}: {reason} (is its folder there and writable?)") from None
    os.replace(tmp, p)
