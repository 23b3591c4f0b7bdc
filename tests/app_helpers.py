"""Tiny untrained checkpoints for the app's tests (never shipped): a conditioned WaveNet at 1 kHz and a ByteNet.

Imported by the other test_app_* modules; it holds no tests itself.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

import engine

AUDIO_RATE = 1000  # a low rate keeps "seconds of audio" cheap to generate in CI


def make_models(home: Path) -> dict[str, str]:
    """Save one tiny audio and one tiny text model under home/models; returns {'audio': path, 'text': path}."""
    torch.manual_seed(0)
    models = home / "models"
    wn = engine.build_model("wavenet", layers_per_block=3, blocks=1, residual_channels=8, gate_channels=8,
                            skip_channels=8, global_cond_classes=10, sample_rate=AUDIO_RATE)
    a = engine.save_model(wn, models / "tiny-digits", data="synthetic test tones", val_loss=5.4321, steps=3,
                          license="CC0", classes=[str(i) for i in range(10)])
    bn = engine.build_model("bytenet", d=8, sets=1, set_size=2)
    t = engine.save_model(bn, models / "tiny-text", data="synthetic test text", val_loss=5.0)
    return {"audio": str(a), "text": str(t)}


@pytest.fixture
def tiny_models(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("PLAYGROUND_HOME", str(home))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # per-sample steps of tiny models are fastest on one thread
    yield make_models(home)
    torch.set_num_threads(threads)
