"""SampleRNN and the hierarchical model through the trainer: stateful chunks, the music "tail" split, presets."""
from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf

import engine
from trainers import runfiles
from trainers.config import TrainConfig
from trainers.data import load_dataset
from trainers.presets import get_preset
from trainers.train import train


pytestmark = pytest.mark.usefixtures("one_thread")


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
    names_alphabet = dict(alphabet=[10, *range(97, 123)])  # what the trainer fills in from makemore's names
    for family, name, extra in [("samplernn", "music", {}), ("samplernn", "digits", {}),
                                ("hierarchical", "names", names_alphabet)]:
        model = engine.build_model(family, **{**get_preset(family, name).model, **extra})
        assert model.num_parameters() * 4 <= 5 * 2**20  # ships in <= 5 MB of float32
    names = engine.build_model("hierarchical", **{**get_preset("hierarchical", "names").model, **names_alphabet})
    assert names.num_parameters() <= 80_000


def test_alphabet_from_the_data(tmp_path):
    """alphabet="data": the trainer gives the model rows for the bytes of the names list only, and they stick."""
    words = ["anna", "bob", "cecil", "dana", "ed", "fay", "gus", "hal", "ida", "jo"] * 3
    (tmp_path / "names.txt").write_text("\n".join(words) + "\n")
    cfg = TrainConfig(family="hierarchical", data=str(tmp_path / "names.txt"), out=str(tmp_path / "run"),
                      data_kind="names", model=dict(n_embd=4, levels=2, widths=[8], eos_id=10, alphabet="data"),
                      batch_size=8, seq_len=8, max_steps=30, lr=1e-2, warmup_steps=2, eval_every=15, eval_tokens=500,
                      log_every=5, checkpoint_every=15, device="cpu")
    train(cfg, progress=False)
    symbols = [10, *sorted(set(map(ord, "".join(words))))]
    model = engine.load_model(tmp_path / "run" / "best")
    assert model.config.alphabet == symbols and model.embed.num_embeddings == len(symbols)
    ids = engine.generate_all(model, [10], max_new_tokens=40, seed=0, batch_size=4)
    assert set(ids.flatten().tolist()) <= set(symbols)
    cfg.max_steps = 40  # resume rebuilds the same model from run.json
    train(cfg, resume=True, progress=False)
    assert engine.load_model(tmp_path / "run" / "last").config.alphabet == symbols


def test_alphabet_model_refuses_data_it_cannot_read(tmp_path):
    from trainers.data import DataError
    (tmp_path / "names.txt").write_text("\n".join(["anna", "bob", "zoë"] * 5) + "\n")
    tokens = engine.build_model("hierarchical", levels=2, widths=[8], alphabet=[10, *range(97, 123)]).tokens
    with pytest.raises(DataError, match=r"outside this model's alphabet \(newline, a-z\)"):
        load_dataset(tmp_path / "names.txt", tokens, "names")
