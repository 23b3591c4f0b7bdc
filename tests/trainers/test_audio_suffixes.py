"""The app and the trainer accept one set of audio suffixes, engine.audio.AUDIO_SUFFIXES, .au included (defect 9)."""
from __future__ import annotations

import numpy as np
import soundfile as sf

import engine
from engine.audio import AUDIO_SUFFIXES, read_audio
from trainers.data import audio as data_audio
from trainers.data import load_dataset

def test_libsndfile_reads_au():
    assert ".au" in AUDIO_SUFFIXES and "AU" in sf.available_formats()


def test_the_trainer_reads_the_one_set_of_suffixes():
    assert data_audio.AUDIO_SUFFIXES is AUDIO_SUFFIXES


def test_an_au_clip_loads_for_training(tmp_path):
    folder = tmp_path / "clips"
    folder.mkdir()
    t = np.arange(4000) / 8000
    for i in range(3):
        sf.write(str(folder / f"tone{i}.au"), 0.5 * np.sin(2 * np.pi * (220 + 110 * i) * t), 8000, format="AU")
    wave, rate = read_audio(folder / "tone0.au")
    assert rate == 8000 and len(wave) == 4000
    tokens = engine.build_model("wavenet", blocks=1, layers_per_block=2, residual_channels=8, gate_channels=8,
                                skip_channels=8, sample_rate=8000).tokens
    data = load_dataset(folder, tokens, split="fraction")
    assert data.num_tokens("train") + data.num_tokens("val") >= 3 * 4000
