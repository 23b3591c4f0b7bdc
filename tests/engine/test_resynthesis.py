"""Copy-synthesis: a vocoder re-speaks a clip from its own frames, in the library and the CLI; bad clips refused."""
import numpy as np
import pytest
import soundfile as sf
import torch

import engine
from engine import cli
from engine.errors import UserError
from engine.resynthesis import clip_frames, resynthesize

FEATURES = dict(sample_rate=8000, hop=40, n_fft=160, n_mels=12)


@pytest.fixture
def vocoder(tmp_path):
    torch.manual_seed(0)
    model = engine.build_model("wavenet", blocks=1, layers_per_block=3, residual_channels=8, gate_channels=8,
                               skip_channels=8, n_classes=64, sample_rate=8000, local_cond_channels=12,
                               local_cond_hop=40, local_cond_hidden=8, local_cond_layers=1, features=FEATURES)
    with torch.no_grad():
        model.frame_net.project.weight.normal_(0, 0.5)
    path = tmp_path / "voc"
    engine.save_model(model, path)
    return path


def _clip(path, wave, rate=8000):
    sf.write(str(path), wave, rate)
    return str(path)


def test_resynthesis_has_the_clip_length_and_follows_the_seed(vocoder):
    model = engine.load_model(vocoder).eval()
    wave = torch.from_numpy((0.3 * np.sin(np.arange(1234) * 0.2)).astype(np.float32))
    a = torch.cat(list(resynthesize(model, wave, seed=3, chunk_size=100)), 1)
    b = torch.cat(list(resynthesize(model, wave, seed=3, chunk_size=1000)), 1)
    assert a.shape == (1, 1234) and torch.equal(a, b)
    assert not torch.equal(a, torch.cat(list(resynthesize(model, wave, seed=4)), 1))


def test_the_cli_re_speaks_a_clip_at_any_rate(vocoder, tmp_path, capsys):
    clip = _clip(tmp_path / "in.wav", 0.3 * np.sin(np.arange(16000) * 0.1), rate=16000)  # resampled to 8 kHz
    out = tmp_path / "out.wav"
    assert cli.main(["--model", str(vocoder), "--resynth", clip, "--seed", "1", "--out", str(out)]) == 0
    wave, rate = sf.read(str(out))
    assert rate == 8000 and len(wave) == 8000
    assert "re-spoken" in capsys.readouterr().err


@pytest.mark.parametrize("wave,message", [(np.zeros(0), "no audio samples"), (np.zeros(4000), "silent")])
def test_an_empty_or_silent_clip_gets_one_line(vocoder, tmp_path, capsys, wave, message):
    clip = _clip(tmp_path / "in.wav", wave)
    assert cli.main(["--model", str(vocoder), "--resynth", clip]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_the_wrong_model_or_missing_clip_gets_one_line(vocoder, tmp_path, capsys):
    plain = tmp_path / "plain"
    engine.save_model(engine.build_model("wavenet", blocks=1, layers_per_block=2, sample_rate=8000), plain)
    clip = _clip(tmp_path / "in.wav", 0.3 * np.sin(np.arange(800) * 0.1))
    cases = [(["--model", str(plain), "--resynth", clip], "not a vocoder"),
             (["--model", str(vocoder)], "give it a clip to re-speak with --resynth"),
             (["--model", str(vocoder), "--resynth", clip, "--seconds", "1"], "leave out --seconds"),
             (["--model", str(vocoder), "--resynth", str(tmp_path / "nope.wav")], "nope.wav")]
    for argv, message in cases:
        assert cli.main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], (argv, err)


def test_frames_of_the_wrong_width_rate_or_model_are_refused(vocoder):
    model = engine.load_model(vocoder)
    with pytest.raises(UserError, match=r"frames must be \[1, 12, F\]"):
        next(engine.generate(model, max_new_tokens=10, cond=engine.protocol.Conditioning(frames=torch.zeros(1, 7, 5))))
    with pytest.raises(UserError, match="silent"):
        clip_frames(model, torch.full((100,), 1e-5))
