"""Training a frame-conditioned WaveNet (a vocoder): frames per sequence, windows conditioned like the whole clip."""
from __future__ import annotations

import json
import math

import numpy as np
import pytest
import soundfile as sf
import torch

import engine
from engine.features import LogMel, LogMelConfig
from engine.protocol import Conditioning
from trainers.config import TrainConfig
from trainers.data import DataError, load_dataset
from trainers.evaluate import evaluate_checkpoint
from trainers.losses import conditioning
from trainers.train import train

pytestmark = pytest.mark.usefixtures("one_thread")
FEATURES = dict(sample_rate=8000, hop=40, n_fft=160, n_mels=12)
TINY = dict(blocks=1, layers_per_block=4, residual_channels=8, gate_channels=8, skip_channels=8, n_classes=64,
            sample_rate=8000, local_cond_channels=12, local_cond_hop=40, local_cond_hidden=8, local_cond_layers=2,
            features=FEATURES)


@pytest.fixture
def bursts(tmp_path):
    """Noise whose level jumps at random every few frames: the past says little about the next sample's level,
    the frames say it exactly."""
    folder = tmp_path / "bursts"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(6):
        levels = rng.choice([0.0, 0.01, 0.05, 0.2, 0.6], 6000 // 80).repeat(80)
        sf.write(str(folder / f"clip{i}.wav"), np.clip(levels * rng.standard_normal(6000), -1, 1), 8000)
    return folder


def test_each_sequence_gets_the_frames_of_its_own_samples(bursts):
    model = engine.build_model("wavenet", **TINY)
    data = load_dataset(bursts, model.tokens, split="fraction", val_fraction=0.3, features=model.frame_features,
                        frame_margin=model.frame_context)
    checked = 0
    for path in sorted(bursts.iterdir()):
        wave, _ = engine.audio.read_audio(path, 8000)
        ids = engine.audio.quantize(torch.from_numpy(wave), 64)
        for split in ("train", "val"):
            for seq, frames in zip(data.sequences[split], data.frames[split]):
                if torch.equal(seq[1:], ids):  # the start id, then one id per sample
                    assert torch.allclose(frames, LogMel(LogMelConfig(**FEATURES))(torch.from_numpy(wave))[0])
                    checked += 1
    assert checked == 6


def test_a_batch_conditions_each_window_exactly_as_the_whole_clip_would(bursts):
    torch.manual_seed(0)
    model = engine.build_model("wavenet", **TINY).eval()
    data = load_dataset(bursts, model.tokens, split="fraction", val_fraction=0.3, features=model.frame_features,
                        frame_margin=model.frame_context)
    batch = data.sample_batch("train", 6, 300, torch.Generator().manual_seed(3))
    cond = conditioning(model, batch)
    assert isinstance(cond, Conditioning) and batch.frames.shape[:2] == (6, 12)
    logits = model(batch.x, cond)
    picks = torch.multinomial(data._weights("train"), 6, replacement=True,
                              generator=torch.Generator().manual_seed(3)).tolist()  # the rows sample_batch drew
    rf = model.receptive_field
    for row, i in enumerate(picks):
        seq, frames = data.sequences["train"][i], data.frames["train"][i]
        whole = model(seq[:-1].unsqueeze(0), Conditioning(frames=frames.unsqueeze(0)))[0]
        start = int(torch.nonzero(torch.all(seq.unfold(0, 300, 1) == batch.x[row], dim=1))[0])
        assert (logits[row, rf:] - whole[start + rf:start + 300]).abs().max() < 1e-5


def test_a_vocoder_learns_what_the_frames_say(tmp_path, bursts):
    """Held-out clips: the frames say each stretch's level, which a model that hears only the last sample cannot
    know, so the vocoder beats its unconditioned twin (same steps, same receptive field of 2 samples)."""
    common = dict(data=str(bursts), split="fraction", val_fraction=0.3, batch_size=8, seq_len=400, max_steps=200,
                  lr=1e-2, warmup_steps=5, eval_every=200, eval_tokens=20000, log_every=50, checkpoint_every=200,
                  device="cpu")
    short = dict(TINY, layers_per_block=1)
    voc = train(TrainConfig(family="wavenet", out=str(tmp_path / "voc"), model=short, **common), progress=False)
    plain_model = {k: v for k, v in short.items() if not k.startswith("local_cond") and k != "features"}
    plain = train(TrainConfig(family="wavenet", out=str(tmp_path / "plain"), model=plain_model, **common),
                  progress=False)
    assert voc["val_loss"] < plain["val_loss"] - 0.05, (voc, plain)
    meta = engine.read_meta(tmp_path / "voc" / "best")
    assert meta["config"]["features"] == FEATURES
    again = evaluate_checkpoint(tmp_path / "voc" / "best", bursts, max_tokens=20000)
    assert math.isclose(again.nats, voc["val_loss"], rel_tol=1e-4)


def test_a_vocoder_refuses_text(tmp_path):
    text = tmp_path / "t.txt"
    text.write_text("hello there " * 50)
    model = engine.build_model("wavenet", **TINY)
    with pytest.raises(DataError, match="conditioned on audio frames"):
        load_dataset(text, model.tokens, features=model.frame_features, frame_margin=model.frame_context)


def test_a_resume_that_changes_the_model_config_starts_best_anew(bursts, tmp_path, caplog):
    """`--resume --set preemphasis=0.85` fine-tunes the same weights on other ids: held-out losses from before the
    change are not comparable, so best/ must not keep the old model because its old loss was lower."""
    common = dict(data=str(bursts), split="fraction", val_fraction=0.3, batch_size=4, seq_len=64, lr=3e-3,
                  eval_every=4, eval_tokens=2000, checkpoint_every=4, samples=False, seed=0)
    out = tmp_path / "run"
    train(TrainConfig(family="wavenet", out=str(out), model=dict(TINY), max_steps=4, **common), progress=False)
    assert engine.read_meta(out / "best")["config"]["preemphasis"] == 0.0
    state = out / "last" / "trainer_state.json"  # an old loss no new one can beat (as a lower-entropy domain's)
    state.write_text(json.dumps({**json.loads(state.read_text()), "best_val": 0.0}))
    with caplog.at_level("WARNING", logger="trainers.train"):
        train(TrainConfig(family="wavenet", out=str(out), model={**TINY, "preemphasis": 0.85}, max_steps=8,
                          **common), resume=True, progress=False)
    assert "model config changed on resume (preemphasis)" in caplog.text
    assert engine.read_meta(out / "best")["config"]["preemphasis"] == 0.85
    caplog.clear()
    with caplog.at_level("WARNING", logger="trainers.train"):  # an unchanged resume keeps its best
        train(TrainConfig(family="wavenet", out=str(out), model={**TINY, "preemphasis": 0.85}, max_steps=12,
                          **common), resume=True, progress=False)
    assert "changed on resume" not in caplog.text
