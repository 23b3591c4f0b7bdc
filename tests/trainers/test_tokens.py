"""The pipeline recipe through trainers: a codebook of a vocoder's frames, a token LM on them, one composed model."""
import json

import numpy as np
import pytest
import soundfile as sf
import torch

import engine
from engine.features import LogMelConfig
from engine.frame_tokens import TokenLayout, load_codebook
from trainers import cli
from trainers.config import TrainConfig
from trainers.data import DataError
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


@pytest.fixture
def book(tmp_path, parts):
    """The clips and an 8-token codebook of them, made through the command line."""
    clips, voc = parts
    assert cli.main(["codebook", "--data", str(clips), "--vocoder", str(voc), "--size", "8", "--out",
                     str(tmp_path / "cb")]) == 0
    codebook, features, _ = load_codebook(tmp_path / "cb")
    return clips, codebook, features


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
    # a pipeline can be the vocoder of the next one: its vocoder part is taken, not the whole pipeline nested
    assert cli.main(["pipeline", "--lm", str(tmp_path / "lm" / "best"), "--vocoder", str(tmp_path / "pipe"),
                     "--codebook", str(tmp_path / "cb"), "--out", str(tmp_path / "again")]) == 0
    again = engine.load_model(tmp_path / "again")
    assert again.config.vocoder_family == "wavenet"
    assert torch.equal(torch.cat(list(engine.generate(again, max_new_tokens=4000, cond=1, seed=0)), 1), clip)
    # and the LM part: a pipeline recomposed from its own parts plays the same clip and keeps the LM's record
    assert cli.main(["pipeline", "--lm", str(tmp_path / "pipe"), "--vocoder", str(voc), "--codebook",
                     str(tmp_path / "cb"), "--out", str(tmp_path / "recomposed")]) == 0
    recomposed = engine.load_model(tmp_path / "recomposed")
    assert recomposed.config.lm_family == "rnn" and recomposed.config.class_names == ["0", "1"]
    assert torch.equal(torch.cat(list(engine.generate(recomposed, max_new_tokens=4000, cond=1, seed=0)), 1), clip)
    record = engine.checkpoint.read_meta(tmp_path / "recomposed")["training"]
    assert record["lm"] == engine.checkpoint.read_meta(tmp_path / "pipe")["training"]["lm"]
    # and the codebook: a new vocoder recomposed with a shipped pipeline's LM and codebook, no run folders
    assert cli.main(["pipeline", "--lm", str(tmp_path / "pipe"), "--vocoder", str(voc), "--codebook",
                     str(tmp_path / "pipe"), "--out", str(tmp_path / "from-pipe")]) == 0
    assert torch.equal(torch.cat(list(engine.generate(engine.load_model(tmp_path / "from-pipe"), max_new_tokens=4000,
                                                      cond=1, seed=0)), 1), clip)
    assert engine.checkpoint.read_meta(tmp_path / "from-pipe")["training"]["codebook"] == record["codebook"]


def test_a_pipeline_can_be_composed_with_a_default_guidance(tmp_path, parts, capsys):
    """--guidance sets the composed pipeline's default classifier-free guidance; an LM without a null class (no
    class dropout) is refused it in one line."""
    clips, voc = parts
    assert cli.main(["codebook", "--data", str(clips), "--vocoder", str(voc), "--size", "8", "--out",
                     str(tmp_path / "cb")]) == 0
    for null in (False, True):
        layout = TokenLayout(8, 2, null_class=null)
        lm = engine.build_model("rnn", vocab_size=layout.vocab_size, cell="gru", hidden_size=8, layers=1,
                                start_id=layout.start_id, eos_id=layout.end_id)
        engine.save_model(lm, tmp_path / f"lm{null}", label_names=["0", "1"])
    capsys.readouterr()
    args = ["--vocoder", str(voc), "--codebook", str(tmp_path / "cb"), "--guidance", "1.5"]
    assert cli.main(["pipeline", "--lm", str(tmp_path / "lmFalse"), "--out", str(tmp_path / "p0"), *args]) == 2
    assert "guidance needs" in capsys.readouterr().err
    assert cli.main(["pipeline", "--lm", str(tmp_path / "lmTrue"), "--out", str(tmp_path / "p1"), *args]) == 0
    pipe = engine.load_model(tmp_path / "p1")
    assert pipe.config.null_class and pipe.decode_options["guidance"] == 1.5


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


def test_a_vocoder_can_train_on_the_frames_its_tokens_decode_to(tmp_path, parts, capsys):
    """--frames-codebook: every training and held-out frame is its nearest centroid, exactly what a pipeline's
    plan gives the vocoder; a codebook of another front end or a model without frames is one clear message."""
    from trainers.data.audio import audio_folder
    from trainers.data.tokens import decoded_frames
    clips, voc = parts
    assert cli.main(["codebook", "--data", str(clips), "--vocoder", str(voc), "--size", "4", "--out",
                     str(tmp_path / "cb")]) == 0
    codebook, features, _ = load_codebook(tmp_path / "cb")
    real = audio_folder(clips, 8000, n_classes=64, features=features).frames
    decoded = decoded_frames(real, tmp_path / "cb", features)
    for part in ("train", "val"):
        for r, d in zip(real[part], decoded[part]):
            assert d.shape == r.shape and not torch.equal(d, r)
            assert torch.equal(d, codebook.decode(codebook.encode(r)))
            distinct = {tuple(col.tolist()) for col in d.T}
            assert distinct <= {tuple(c.tolist()) for c in codebook.decode(torch.arange(4)).T}

    out = tmp_path / "run"
    model = json.loads((voc / "config.json").read_text())["config"]
    summary = train(TrainConfig(family="wavenet", data=str(clips), out=str(out), model=model,
                                frames_codebook=str(tmp_path / "cb"), batch_size=2, seq_len=64, max_steps=4,
                                eval_every=4, checkpoint_every=4, device="cpu", samples=False), progress=False)
    assert np.isfinite(summary["val_loss"])
    assert json.loads((out / "run.json").read_text())["frames_codebook"] == str(tmp_path / "cb")

    # a share of the clips: those drawn get decoded frames, the others keep their real ones, the same by seed
    half = decoded_frames(real, tmp_path / "cb", features, share=0.5, seed=3)
    kept = [[torch.equal(h, r) for h, r in zip(half[p], real[p])] for p in ("train", "val")]
    for p, flags in zip(("train", "val"), kept):
        for h, r, d, same in zip(half[p], real[p], decoded[p], flags):
            assert torch.equal(h, r if same else d)
    flat = sum(kept, [])
    assert 0 < sum(flat) < len(flat)
    again = decoded_frames(real, tmp_path / "cb", features, share=0.5, seed=3)
    assert all(torch.equal(a, h) for p in ("train", "val") for a, h in zip(again[p], half[p]))
    with pytest.raises(DataError, match="frames_codebook_share"):
        decoded_frames(real, tmp_path / "cb", features, share=0.0)
    with pytest.raises(DataError, match="reads frames"):
        decoded_frames(real, tmp_path / "cb", LogMelConfig(**dict(FEATURES, n_mels=16)))
    capsys.readouterr()
    assert cli.main(["train", "--family", "wavenet", "--data", str(clips), "--out", str(tmp_path / "plain"),
                     "--frames-codebook", str(tmp_path / "cb"), "--max-steps", "2", "--no-progress",
                     "--no-samples", "--set", "blocks=1", "--set", "layers_per_block=2"]) == 2
    assert "frames_codebook is for a vocoder" in capsys.readouterr().err


def test_token_shifts_add_the_training_clips_at_other_frame_phases(book):
    clips, codebook, features = book
    one = token_sequences(clips, codebook, features, split="fsdd", labels="prefix")
    three = token_sequences(clips, codebook, features, split="fsdd", labels="prefix", shifts=3)
    n = len(one.sequences["train"])
    assert len(three.sequences["train"]) == 3 * n
    assert all(torch.equal(a, b) for a, b in zip(one.sequences["val"], three.sequences["val"]))
    assert all(torch.equal(a, b) for a, b in zip(one.sequences["train"], three.sequences["train"][:n]))
    shifted = three.sequences["train"][n:]
    assert all(s[1] == o[1] for s, o in zip(shifted, one.sequences["train"] * 2))  # same word, same class token
    assert any(not torch.equal(s, o) for s, o in zip(shifted, one.sequences["train"] * 2))
    with pytest.raises(DataError, match="token_shifts"):
        token_sequences(clips, codebook, features, shifts=0)


def test_token_speeds_add_the_training_clips_played_faster_and_slower(book):
    clips, codebook, features = book
    one = token_sequences(clips, codebook, features, split="fsdd", labels="prefix", shifts=2)
    sped = token_sequences(clips, codebook, features, split="fsdd", labels="prefix", shifts=2, speeds=(0.8, 1.25))
    n = len(one.sequences["train"])
    assert len(sped.sequences["train"]) == 3 * n
    assert all(torch.equal(a, b) for a, b in zip(one.sequences["val"], sped.sequences["val"]))  # held out: as is
    assert all(torch.equal(a, b) for a, b in zip(one.sequences["train"], sped.sequences["train"][:n]))
    slow, fast = sped.sequences["train"][n:2 * n], sped.sequences["train"][2 * n:]
    for o, s, f in zip(one.sequences["train"], slow, fast):  # same class token; 0.8x is longer, 1.25x shorter
        assert s[1] == o[1] == f[1] and len(s) > len(o) > len(f)
    with pytest.raises(DataError, match="token_speeds"):
        token_sequences(clips, codebook, features, speeds=(1.0,))
    with pytest.raises(DataError, match="token_speeds"):
        token_sequences(clips, codebook, features, speeds=(3.0,))


def test_token_speeds_from_the_command_line(tmp_path, parts, capsys):
    clips, voc = parts
    assert cli.main(["codebook", "--data", str(clips), "--vocoder", str(voc), "--size", "8", "--out",
                     str(tmp_path / "cb")]) == 0
    args = ["train", "--family", "rnn", "--data", str(clips), "--set", f"codebook={tmp_path / 'cb'}",
            "--set", "labels=prefix", "--set", "split=fsdd", "--set", "token_speeds=0.9,1.1", "--max-steps", "2",
            "--set", "hidden_size=8", "--set", "layers=1", "--set", "batch_size=2", "--set", "seq_len=16",
            "--out", str(tmp_path / "lm"), "--no-progress", "--no-samples"]
    assert cli.main(args) == 0
    assert json.loads((tmp_path / "lm" / "run.json").read_text())["token_speeds"] == [0.9, 1.1]
    bad = [a.replace("0.9,1.1", "0.9,x").replace(str(tmp_path / "lm"), str(tmp_path / "bad")) for a in args]
    assert cli.main(bad) == 2  # a usage error, said in one line
    assert "comma-separated numbers" in capsys.readouterr().err


def test_class_dropout_gives_some_training_clips_the_null_class(book):
    clips, codebook, features = book
    plain = token_sequences(clips, codebook, features, split="fsdd", labels="prefix", shifts=4)
    dropped = token_sequences(clips, codebook, features, split="fsdd", labels="prefix", shifts=4,
                              class_dropout=0.5, seed=3)
    layout = TokenLayout(8, plain.num_labels, null_class=True)
    heads = [int(s[1]) for s in dropped.sequences["train"]]
    assert 0 < heads.count(layout.null_id) < len(heads)  # some, not all
    for d, p in zip(dropped.sequences["train"], plain.sequences["train"]):  # only the class token changes
        assert torch.equal(d[2:], p[2:]) and int(d[1]) in (int(p[1]), layout.null_id)
    assert all(int(s[1]) != layout.null_id for s in dropped.sequences["val"])  # held-out clips keep theirs
    again = token_sequences(clips, codebook, features, split="fsdd", labels="prefix", shifts=4,
                            class_dropout=0.5, seed=3)
    assert all(torch.equal(a, b) for a, b in zip(dropped.sequences["train"], again.sequences["train"]))
    with pytest.raises(DataError, match="class_dropout needs class labels"):
        token_sequences(clips, codebook, features, split="fsdd", class_dropout=0.2)
    with pytest.raises(DataError, match="class_dropout must be"):
        token_sequences(clips, codebook, features, split="fsdd", labels="prefix", class_dropout=1.0)


def test_a_pipeline_is_scored_on_the_data_as_its_vocoder_read_it(tmp_path, parts):
    """evaluate_checkpoint of a pipeline reads the vocoder's split (a pipeline's own record has none)."""
    from engine.frame_tokens import FrameCodebook
    from engine.models.pipeline import Pipeline
    from trainers.evaluate import evaluate_checkpoint
    clips, voc_path = parts
    voc = engine.load_model(voc_path)
    engine.save_model(voc, tmp_path / "voc-tail", split="tail", val_fraction=0.5)
    layout = TokenLayout(8, 2)
    lm = engine.build_model("rnn", vocab_size=layout.vocab_size, cell="gru", hidden_size=8, layers=1,
                            start_id=layout.start_id, eos_id=layout.end_id)
    pipe = Pipeline.compose(lm, voc, FrameCodebook.fit(torch.rand(50, 8), 8), ["0", "1"])
    engine.save_model(pipe, tmp_path / "pipe", data="tones", vocoder={"split": "tail", "val_fraction": 0.5})
    as_pipeline = evaluate_checkpoint(tmp_path / "pipe", clips)
    assert as_pipeline == evaluate_checkpoint(tmp_path / "voc-tail", clips)
    assert as_pipeline != evaluate_checkpoint(voc_path, clips)  # the default split would score other samples


def test_a_token_decoder_learns_what_the_neighbouring_tokens_say():
    """Frames that are their token's centroid plus a share of the next token's: the centroids alone miss that
    share, a trained decoder (context 1) recovers most of it on held-out clips."""
    from engine.frame_tokens import FrameCodebook
    from engine.layers.token_decoder import TokenDecoderConfig
    from trainers.token_decoder import TokenDecoderTraining, heldout_error, train_decoder
    g = torch.Generator().manual_seed(0)
    book = FrameCodebook(torch.randn(6, 4, generator=g), torch.zeros(4), torch.ones(4))

    def clips(n):
        out = []
        for _ in range(n):
            ids = torch.randint(0, 6, (30,), generator=g)
            nxt = torch.cat([ids[1:], ids[-1:]])
            z = (book.centroids[ids] + 0.3 * book.centroids[nxt]).T  # [C, F]
            out.append((book.encode(z), z))  # the codebook's own tokens, as training sees them
        return out

    train, held = clips(60), clips(20)
    net = train_decoder(book, train, TokenDecoderConfig(width=32, layers=1, kernel=3),
                        TokenDecoderTraining(steps=300, batch_size=16, window=16), log=lambda _: None)
    learned = FrameCodebook(book.centroids, book.mean, book.std, net)
    assert heldout_error(learned, held) < 0.5 * heldout_error(book, held)


def test_token_decoder_from_the_command_line(tmp_path, book, capsys):
    clips, codebook, _ = book
    assert cli.main(["token-decoder", "--codebook", str(tmp_path / "cb"), "--data", str(clips), "--out",
                     str(tmp_path / "cbd"), "--steps", "20", "--width", "8", "--layers", "1"]) == 0
    assert "held-out squared error" in capsys.readouterr().out
    decoded, _, info = load_codebook(tmp_path / "cbd")
    assert info["decoder"] == {"width": 8, "layers": 1, "kernel": 3} and decoded.context == 1
    assert {"heldout_mse_centroids", "heldout_mse_decoder"} <= set(info["decoder_training"])
    assert torch.equal(decoded.centroids, codebook.centroids)
    assert cli.main(["pipeline", "--lm", "nowhere", "--vocoder", "nowhere", "--codebook", str(tmp_path / "cbd"),
                     "--out", str(tmp_path / "p")]) == 2
    for bad in (["--kernel", "2"], ["--steps", "0"]):
        assert cli.main(["token-decoder", "--codebook", str(tmp_path / "cb"), "--data", str(clips), "--out",
                         str(tmp_path / "x"), *bad]) == 2
        assert "error:" in capsys.readouterr().err
    assert cli.main(["token-decoder", "--codebook", str(tmp_path / "none"), "--data", str(clips), "--out",
                     str(tmp_path / "x")]) == 2
    assert "not a codebook folder" in capsys.readouterr().err


def test_hold_class_gives_the_lm_its_class_and_null_ids_as_held_ids(tmp_path, book, capsys):
    """`hold_class` makes the token LM hold its class prefix (and the null class) at every step, through the
    command line; without class labels it is refused in one line."""
    clips, _, _ = book
    common = ["train", "--family", "rnn", "--data", str(clips), "--codebook", str(tmp_path / "cb"), "--split",
              "fsdd", "--max-steps", "4", "--batch-size", "2", "--seq-len", "16", "--set", "hidden_size=8",
              "--set", "layers=1", "--set", "eval_every=4", "--set", "checkpoint_every=4", "--set", "hold_class=true",
              "--no-progress", "--no-samples", "--threads", "1"]
    assert cli.main(common + ["--labels", "prefix", "--set", "class_dropout=0.3", "--out", str(tmp_path / "lm")]) == 0
    lm = engine.load_model(tmp_path / "lm" / "last")
    layout = TokenLayout(8, 2, null_class=True)
    assert lm.config.held_ids == [layout.class_id(0), layout.class_id(1), layout.null_id]
    assert engine.checkpoint.read_meta(tmp_path / "lm" / "last")["training"]["hold_class"] is True
    capsys.readouterr()
    assert cli.main(common + ["--out", str(tmp_path / "lm2")]) == 2
    assert "hold_class needs class labels" in capsys.readouterr().err
