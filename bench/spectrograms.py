"""One spectrogram grid for the audio benchmarks: a row per kind of audio (real, copy, generated), a column per
class, the same colour scale everywhere, so images of different runs compare at a glance."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def spectrogram_grid(rows: dict[str, dict[int, np.ndarray]], path: str | Path, title: str, rate: int,
                     n_fft: int = 256, top_khz: float | None = None) -> None:
    """`n_fft` sets the frequency resolution (music's harmonic lines need 1024 at 16 kHz), `top_khz` the highest
    frequency shown (default: Nyquist)."""
    import librosa
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    classes = sorted(next(iter(rows.values())))
    fig, axes = plt.subplots(len(rows), len(classes), figsize=(2 * len(classes), 2.3 * len(rows) + 0.6),
                             sharey=True, squeeze=False)
    for r, (name, waves) in enumerate(rows.items()):
        for c, label in enumerate(classes):
            wave = waves[label]
            S = librosa.amplitude_to_db(np.abs(librosa.stft(wave, n_fft=n_fft, hop_length=n_fft // 4)), ref=1.0,
                                        top_db=80)
            top = rate / 2 if top_khz is None else min(rate / 2, top_khz * 1000)
            S = S[: int(round(top / (rate / 2) * (S.shape[0] - 1))) + 1]
            ax = axes[r, c]
            ax.imshow(S, origin="lower", aspect="auto", cmap="magma", vmin=-80, vmax=S.max(),
                      extent=[0, len(wave) / rate, 0, top / 1000])
            ax.set_title(f"{name} '{label}'", fontsize=9)
            if c == 0:
                ax.set_ylabel("kHz")
            ax.set_xlabel("s", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=70)
