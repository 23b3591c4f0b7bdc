"""One spectrogram grid for the audio benchmarks: a row per kind of audio (real, copy, generated), a column per
class, the same colour scale everywhere, so images of different runs compare at a glance."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def spectrogram_grid(rows: dict[str, dict[int, np.ndarray]], path: str | Path, title: str, rate: int) -> None:
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
            S = librosa.amplitude_to_db(np.abs(librosa.stft(wave, n_fft=256, hop_length=64)), ref=1.0, top_db=80)
            ax = axes[r, c]
            ax.imshow(S, origin="lower", aspect="auto", cmap="magma", vmin=-80, vmax=S.max(),
                      extent=[0, len(wave) / rate, 0, rate / 2000])
            ax.set_title(f"{name} '{label}'", fontsize=9)
            if c == 0:
                ax.set_ylabel("kHz")
            ax.set_xlabel("s", fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=70)
