"""SampleRNN and the hierarchical model through the trainer: stateful chunks, the music "tail" split, presets."""
from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf
import torch

import engine
from trainers import runfiles
from trainers.config import TrainConfig
from trainers.data import load_dataset
from trainers.presets import get_preset
from trainers.train import train


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture
def tones(tmp_path):
    folder = tmp_path / "tones"
    folder.mkdir()
    t = np.arange(3000) / 8000
    for i, f in enumerate((220, 330, 440)):
        sf.write(str(folder / f"tone{i}.wav"), 0.6 * np.sin(2 * np.pi * f * t), 8000)
    return folder


def test_tail_split_holds_out_the_end_of_every_file(tones):
    tokens = engine.build_model("samplernn", frame_sizes=[4], dim=8, mlp_dim=8, embed_dim=4, sample_rate=8000).tokens
    data = load_dataset(tones, tokens, "audio", "tail", "none", 0.1)
    assert [len(s) for s in data.sequences["train"]] == [1 + 2700] * 3
    assert [len(s) for s in data.sequences["val"]] == [1 + 300] * 3


def test_samplernn_trains_with_stateful_chunks(tmp_path, tones):
    cfg = TrainConfig(family="samplernn", data=str(tones), out=str(tmp_path / "run"), split="tail",
                      model=dict(frame_sizes=[8, 2], dim=16, mlp_dim=16, embed_dim=8, sample_rate=8000),
                      batch_size=4, seq_len=64, max_steps=40, lr=1e-2, warmup_steps=5, eval_every=20,
                      eval_tokens=2000, log_every=10, checkpoint_every=20, device="cpu")
    summary = train(cfg, progress=False)
    val = [m["loss"] for m in runfiles.read_metrics(tmp_path / "run") if m["split"] == "val"]
    assert summary["steps"] == 40 and val[-1] < val[0] < math.log(256) - 0.5, val  # learning, far from uniform
    model = engine.load_model(tmp_path / "run" / "best")
    assert model.family == "samplernn" and model.config.frame_sizes == [8, 2]


def test_presets_build():
    for family, name in [("samplernn", "music"), ("samplernn", "digits"), ("hierarchical", "names")]:
        model = engine.build_model(family, **get_preset(family, name).model)
        assert model.num_parameters() * 4 <= 5 * 2**20  # ships in <= 5 MB of float32
    assert engine.build_model("hierarchical", **get_preset("hierarchical", "names").model).num_parameters() <= 80_000
