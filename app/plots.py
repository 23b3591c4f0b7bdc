"""Waveform and spectrogram images of generated audio (matplotlib's object API: no pyplot, safe in threads)."""
from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def audio_figure(waves: list[np.ndarray], sample_rate: int, path: str | os.PathLike, title: str = "") -> str:
    """One row per variation: its waveform (left) and spectrogram (right); written as PNG to `path`."""
    rows = max(1, len(waves))
    fig = Figure(figsize=(10, 2.2 * rows), dpi=90, layout="constrained")
    axes = fig.subplots(rows, 2, squeeze=False)
    for i, wave in enumerate(waves):
        wave = np.asarray(wave, dtype=np.float32)
        t = np.arange(len(wave)) / sample_rate
        ax_w, ax_s = axes[i]
        ax_w.plot(t, wave, linewidth=0.5, color="#1f77b4")
        ax_w.set_xlim(0, max(t[-1] if len(t) else 0, 1 / sample_rate))
        ax_w.set_ylim(-1.05, 1.05)
        ax_w.set_ylabel(f"variation {i + 1}" if rows > 1 else "amplitude")
        nfft = int(min(256, 2 ** np.floor(np.log2(max(len(wave) // 4, 1)))))
        if nfft >= 16:  # too short for a spectrogram otherwise
            with np.errstate(divide="ignore"):  # digital silence is -inf dB; the colour limits below clip it
                spec, _f, _t, image = ax_s.specgram(wave, NFFT=nfft, Fs=sample_rate, noverlap=nfft // 2,
                                                    cmap="magma", scale="dB")
            top = 10 * np.log10(max(float(spec.max()), 1e-20))
            image.set_clim(top - 80, top)  # an 80 dB range below the loudest bin, whatever the level
        ax_s.set_ylabel("Hz")
        if i == rows - 1:
            ax_w.set_xlabel("seconds")
            ax_s.set_xlabel("seconds")
    axes[0][0].set_title("waveform")
    axes[0][1].set_title("spectrogram" + (f": {title}" if title else ""))
    fig.savefig(path, format="png")
    return str(path)
