"""The pipeline recipe through trainers: a codebook of a vocoder's frames, a token LM on them, one composed model."""
import numpy as np
import pytest
import soundfile as sf
import torch

import engine
from engine.frame_tokens import TokenLayout, load_codebook
from trainers import cli
from trainers.config import TrainConfig
from trainers.data.tokens import token_sequences
from trainers.train import train

pytestmark = pytest.mark.usefixtures("one_thread")
FEATURES = dict(sample_rate=8000, hop=40, n_fft=160, n_mels=8)


@pytest.fixture
def parts(tmp_path):
    """Two 'words' (a low and a high tone), three takes each, named like FSDD; and an untrained tiny vocoder."""
    clips = tmp_path / "clips"
    clips.mkdir()
    rng = np.random.default_rng(0)
    for label, f in ((0, 300.0), (1, 1200.0)):
        for take in range(6):
            t = np.arange(int(8000 * rng.uniform(0.25, 0.4))) / 8000
            sf.write(str(clips / f"{label}_spk_{take}.wav"), 0.5 * np.sin(2 * np.pi * f * t), 8000)
    vocoder = engine.build_model("wavenet", blocks=1, layers_per_block=2, residual_channels=4, gate_channels=4,
                                 skip_channels=4, n_classes=64, sample_rate=8000, local_cond_channels=8,
                                 local_cond_hop=40, local_cond_hidden=4, local_cond_layers=1, features=FEATURES)
    engine.save_model(vocoder, tmp_path / "voc")
    return clips, tmp_path / "voc"


def test_codebook_token_lm_and_pipeline_from_the_command_line(tmp_path, parts, capsys):
    clips, voc = parts
    assert cli.main(["codebook", "--data", str(clips), "--vocoder", str(voc), "--size", "8", "--out",
                     str(tmp_path / "cb")]) == 0
    codebook, features, info = load_codebook(tmp_path / "cb")
    assert codebook.size == 8 and features.hop == 40 and info["split"] == "auto"

    data = token_sequences(clips, codebook, features, split="fsdd", labels="prefix")
    layout = TokenLayout(8, 2)
    for split in ("train", "val"):
        for seq in data.sequences[split]:
            assert seq[0] == layout.start_id and seq[1] in (layout.class_id(0), layout.class_id(1))
            assert seq[-1] == layout.end_id and int(seq[2:-1].max()) < 8
    assert len(data.sequences["val"]) == 10  # takes 0-4 of both words held out, as FSDD's rule says

    summary = train(TrainConfig(family="rnn", data=str(clips), codebook=str(tmp_path / "cb"), split="fsdd",
                                labels="prefix", out=str(tmp_path / "lm"), model=dict(cell="gru", hidden_size=16,
                                                                                   layers=1),
                                batch_size=4, seq_len=24, max_steps=40, lr=1e-2, warmup_steps=2, eval_every=40,
                                checkpoint_every=40, device="cpu", samples=False), progress=False)
    assert summary["val_loss"] < np.log(layout.vocab_size)  # better than guessing among the ids
    lm = engine.load_model(tmp_path / "lm" / "best")
    assert lm.tokens.vocab_size == layout.vocab_size and lm.tokens.eos_id == layout.end_id

    assert cli.main(["pipeline", "--lm", str(tmp_path / "lm" / "best"), "--vocoder", str(voc), "--codebook",
                     str(tmp_path / "cb"), "--out", str(tmp_path / "pipe")]) == 0
    pipe = engine.load_model(tmp_path / "pipe")
    assert pipe.family == "pipeline" and pipe.config.class_names == ["0", "1"]
    clip = torch.cat(list(engine.generate(pipe, max_new_tokens=4000, cond=1, seed=0)), 1)
    assert clip.shape[1] % 40 == 0 or clip.shape[1] == 4000


def test_a_pipeline_needs_a_codebook_of_its_vocoders_frames(tmp_path, parts, capsys):
    clips, voc = parts
    other = engine.build_model("wavenet", blocks=1, layers_per_block=2, n_classes=64, sample_rate=8000,
                               local_cond_channels=8, local_cond_hop=80, features=dict(FEATURES, hop=80))
    engine.save_model(other, tmp_path / "other")
    assert cli.main(["codebook", "--data", str(clips), "--vocoder", str(voc), "--size", "8", "--out",
                     str(tmp_path / "cb")]) == 0
    capsys.readouterr()
    assert cli.main(["pipeline", "--lm", str(voc), "--vocoder", str(tmp_path / "other"), "--codebook",
                     str(tmp_path / "cb"), "--out", str(tmp_path / "pipe")]) == 2
    assert "are not" in capsys.readouterr().err


def test_the_pipeline_family_is_composed_not_trained(tmp_path, parts):
    from trainers.data import DataError
    from trainers.data.kinds import check_fits, fitting_families
    clips, _ = parts
    assert "pipeline" not in fitting_families("audio") and "wavenet" in fitting_families("audio")
    with pytest.raises(DataError, match="python -m trainers pipeline"):
        check_fits("pipeline", "audio", clips)
