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


SPEED_COLORS = {"naive": "#d62728", "cached": "#1f77b4", "cached fast": "#2ca02c"}


def speed_figure(rows, methods=("naive", "cached", "cached fast")) -> Figure:
    """The Speed tab's plot: ms per sample against layers per block, one line per method, on a log axis (the
    methods differ by orders of magnitude: on a linear axis the compiled line sits flat on zero) with whole-layer
    ticks.  `rows` are speed.SpeedRow-like objects (layers, method, ms_per_sample)."""
    from matplotlib.ticker import MaxNLocator

    fig = Figure(figsize=(9, 3.8), dpi=90, layout="constrained")
    ax = fig.subplots()
    for method in methods:
        points = sorted((r.layers, r.ms_per_sample) for r in rows if r.method == method and r.ms_per_sample > 0)
        if points:
            xs, ys = zip(*points)
            ax.plot(xs, ys, marker="o", label=method, color=SPEED_COLORS.get(method))
    ax.set_yscale("log")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("layers per block (2 blocks)")
    ax.set_ylabel("ms per sample (log scale)")
    ax.set_title("Time per sample vs layers per block")
    ax.grid(True, which="both", alpha=0.3)
    if ax.lines:
        ax.legend(title="method")
    return fig
