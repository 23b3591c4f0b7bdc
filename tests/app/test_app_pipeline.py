"""The Generate tab with a vocoder (copy-synthesis of the prompt) and a two-stage pipeline (pick a class, hear it)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

import engine
from app import catalog, generate
from app.errors import UserError
from app.generate import GenerateRequest
from app.limits import Limits
from engine.frame_tokens import FrameCodebook, TokenLayout
from engine.models.pipeline import Pipeline

FEATURES = dict(sample_rate=8000, hop=20, n_fft=80, n_mels=6)


@pytest.fixture
def audio_models(tmp_path, monkeypatch):
    home = tmp_path / "home"
    monkeypatch.setenv("PLAYGROUND_HOME", str(home))
    torch.manual_seed(0)
    vocoder = engine.build_model("wavenet", blocks=1, layers_per_block=3, residual_channels=8, gate_channels=8,
                                 skip_channels=8, n_classes=64, sample_rate=8000, local_cond_channels=6,
                                 local_cond_hop=20, local_cond_hidden=8, local_cond_layers=1, features=FEATURES)
    layout = TokenLayout(16, 2)
    lm = engine.build_model("rnn", vocab_size=layout.vocab_size, cell="gru", hidden_size=16, layers=1,
                            start_id=layout.start_id, eos_id=layout.end_id)
    pipe = Pipeline.compose(lm, vocoder, FrameCodebook.fit(torch.rand(200, 6), 16), ["yes", "no"])
    v = engine.save_model(vocoder, home / "models" / "tiny-vocoder", data="synthetic")
    p = engine.save_model(pipe, home / "models" / "tiny-pipeline", data="synthetic")
    clip = tmp_path / "clip.wav"
    sf.write(str(clip), 0.4 * np.sin(np.arange(3000) * 0.2), 8000)
    return str(v), str(p), str(clip)


def _run(req):
    warnings: list[str] = []
    updates = list(generate.run(req, catalog.ModelCache(), Limits(), warn=warnings.append))
    return updates, warnings


def test_a_vocoder_re_speaks_the_prompt(audio_models):
    vocoder, _, clip = audio_models
    form = generate.form_for(vocoder, Limits())
    assert form.kind == "audio" and "re-speaks" in form.description
    updates, warnings = _run(GenerateRequest(vocoder, prompt_audio=clip, seconds=1.0, seed=3))
    result = updates[-1].result
    wave, rate = sf.read(result.wav_paths[0])
    assert rate == 8000 and len(wave) == 3000  # the clip's length, not the slider's
    assert any("re-speaks the 0.4 s clip" in w for w in warnings)
    with pytest.raises(UserError, match="Upload or record one"):
        _run(GenerateRequest(vocoder, seconds=1.0, seed=3))


def test_a_pipeline_says_the_class_picked(audio_models):
    _, pipeline, _ = audio_models
    form = generate.form_for(pipeline, Limits())
    assert form.classes == ["yes", "no"] and "two stages" in form.description
    updates, warnings = _run(GenerateRequest(pipeline, cond_class="no", seconds=2.0, seed=1, variations=2))
    result = updates[-1].result
    assert any(u.audio is not None for u in updates[:-1])  # it streamed
    wave, _ = sf.read(result.wav_paths[0])
    assert 0 < len(wave) <= 16000 and any("one clip at a time" in w for w in warnings)
    with pytest.raises(UserError, match="pick one of yes, no"):
        _run(GenerateRequest(pipeline, seconds=1.0, seed=1))


def test_the_shipped_digits_pipeline_says_it_decodes_its_tokens():
    shipped = Path(__file__).resolve().parents[2] / "assets" / "models"
    info = next(m for m in engine.list_models([shipped]) if m.name == "digits-pipeline")
    text = catalog.describe(info)
    assert "learned token decoder" in text and "two stages" in text
    assert "classifier-free guidance 3" in text  # it plans with guidance, and says so
    music = next(m for m in engine.list_models([shipped]) if m.name == "music-pipeline")
    assert "guidance" not in catalog.describe(music)  # no classes, no guidance
