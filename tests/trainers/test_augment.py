"""Gain augmentation (trainers/augment.py): quieter windows whose frames are exactly the quieter audio's frames."""
import json

import numpy as np
import pytest
import soundfile as sf
import torch

from engine.audio import dequantize, quantize
from engine.features import LogMel, LogMelConfig
from trainers import cli
from trainers.augment import attenuate
from trainers.config import TrainConfig
from trainers.data.base import Batch
from trainers.train import TrainError, train

pytestmark = pytest.mark.usefixtures("one_thread")
FEATURES = LogMelConfig(sample_rate=8000, hop=40, n_fft=160, n_mels=8)


def _batch(waves: torch.Tensor, n_classes: int = 256) -> Batch:
    ids = quantize(waves, n_classes, "mulaw")
    start = torch.full((waves.shape[0], 1), n_classes // 2)
    seq = torch.cat([start, ids], 1)
    mask = torch.ones(waves.shape[0], waves.shape[1], dtype=torch.bool)
    mask[1, -5:] = False  # row 1 ends early: its last targets are padding
    return Batch(seq[:, :-1], seq[:, 1:], mask, torch.ones(waves.shape[0], dtype=torch.bool),
                 frames=LogMel(FEATURES)(waves), first_sample=torch.zeros(waves.shape[0], dtype=torch.long))


def test_attenuated_frames_are_the_frames_of_the_quieter_audio():
    t = torch.arange(800) / 8000
    waves = torch.stack([0.5 * torch.sin(2 * torch.pi * f * t) * torch.linspace(1, 0.01, 800) for f in (300, 900)] * 4)
    before = _batch(waves)
    x0, y0, f0 = before.x.clone(), before.y.clone(), before.frames.clone()
    after = attenuate(before, -40.0, 256, "mulaw", FEATURES, torch.Generator().manual_seed(0), share=0.5)
    quiet = [r for r in range(8) if not torch.equal(after.frames[r], f0[r])]
    loud = [r for r in range(8) if r not in quiet]
    assert quiet and loud  # some rows, not all
    for r in loud:  # untouched
        assert torch.equal(after.x[r], x0[r]) and torch.equal(after.y[r], y0[r])
    for r in quiet:
        assert int(after.x[r, 0]) == 128  # the start id (silence) stays
        ratio = float(after.frames[r].max() - f0[r].max())  # the shift in feature units -> the gain
        gain = float(np.exp(ratio * np.log(1 / FEATURES.floor) / 2))
        assert 0.01 <= gain < 1
        expect = LogMel(FEATURES)(waves[r:r + 1] * gain)[0]
        assert torch.allclose(after.frames[r], expect, atol=2e-3)  # exactly the quieter audio's frames
        heard = dequantize(after.y[r], 256, "mulaw")
        assert torch.allclose(heard, gain * waves[r], atol=0.02 * gain + 2e-3)  # and its samples
    padded = after.y[1, -5:]
    assert torch.equal(padded, y0[1, -5:])  # padding untouched
    with pytest.raises(ValueError, match="negative"):
        attenuate(_batch(waves), 0.0, 256, "mulaw", FEATURES, torch.Generator())


def test_a_vocoder_trains_with_gain_db_and_text_data_is_refused(tmp_path, capsys):
    clips = tmp_path / "clips"
    clips.mkdir()
    for take in (0, 5, 6, 7):  # FSDD names: take 0 is held out
        t = np.arange(3000) / 8000
        sf.write(str(clips / f"{take % 2}_spk_{take}.wav"), 0.5 * np.sin(2 * np.pi * 110 * (take + 1) * t), 8000)
    model = dict(blocks=1, layers_per_block=2, residual_channels=4, gate_channels=4, skip_channels=4, n_classes=64,
                 sample_rate=8000, local_cond_channels=8, local_cond_hop=40, local_cond_hidden=4, local_cond_layers=1,
                 features=FEATURES.to_dict())
    summary = train(TrainConfig(family="wavenet", data=str(clips), out=str(tmp_path / "run"), model=model,
                                gain_db=-30.0, batch_size=2, seq_len=64, max_steps=3, eval_every=3,
                                checkpoint_every=3, device="cpu", samples=False), progress=False)
    assert np.isfinite(summary["val_loss"])
    assert json.loads((tmp_path / "run" / "run.json").read_text())["gain_db"] == -30.0
    assert json.loads((tmp_path / "run" / "best" / "config.json").read_text())["training"]["gain_db"] == -30.0
    with pytest.raises(TrainError, match="gain_db"):
        train(TrainConfig(family="wavenet", data=str(clips), out=str(tmp_path / "up"), model=model, gain_db=6.0,
                          max_steps=1, device="cpu", samples=False), progress=False)
    (tmp_path / "text.txt").write_text("hello there " * 200)
    capsys.readouterr()
    assert cli.main(["train", "--family", "rnn", "--data", str(tmp_path / "text.txt"), "--set", "gain_db=-20",
                     "--out", str(tmp_path / "lm"), "--max-steps", "1", "--no-progress", "--no-samples"]) == 2
    assert "gain_db attenuates audio" in capsys.readouterr().err
