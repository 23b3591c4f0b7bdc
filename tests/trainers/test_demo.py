"""The shipped demo WaveNet: loads, is what docs/TRAINING.md says, carries its data license, stays small."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

import engine

DEMO = Path(__file__).resolve().parents[2] / "assets" / "models" / "wavenet-digits"


@pytest.mark.skipif(not DEMO.is_dir(), reason="demo model not shipped in this checkout")
def test_demo_wavenet_digits_loads_and_generates():
    size = sum(p.stat().st_size for p in DEMO.iterdir())
    assert size <= 5 * 2**20
    meta = engine.read_meta(DEMO)
    training = meta["training"]
    assert training["license"] == "CC BY-SA 4.0" and "Free Spoken Digit Dataset" in training["data_source"]
    assert training["label_names"] == [str(d) for d in range(10)]
    model = engine.load_model(DEMO)
    assert model.family == "wavenet" and model.tokens.sample_rate == 8000 and model.tokens.quantization == "mulaw"
    assert model.config.global_cond_classes == 10 and model.tokens.vocab_size == 256
    ids = engine.generate_all(model, None, max_new_tokens=64, cond=torch.tensor([3, 7]), seed=0, batch_size=2)
    assert ids.shape == (2, 64)
