"""The training loop: loss falls, resume continues exactly, checkpoints are atomic, the CLI fails clearly."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import engine
from trainers import cli, runfiles
from trainers import state as ckpt
from trainers.config import TrainConfig
from trainers.data import DataError
from trainers.train import train

TINY = dict(blocks=1, layers_per_block=3, residual_channels=16, gate_channels=16, skip_channels=16)
TINY_TEXT = dict(d=16, sets=1, set_size=3)  # bytenet


pytestmark = pytest.mark.usefixtures("one_thread")


def _cfg(tmp_path, data, **kw) -> TrainConfig:
    """A tiny run: WaveNet on an audio folder, ByteNet on a text file."""
    audio = Path(data).is_dir()
    base = dict(family="wavenet" if audio else "bytenet", data=str(data), out=str(tmp_path / "run"),
                model=dict(TINY, sample_rate=8000) if audio else dict(TINY_TEXT),
                batch_size=8, seq_len=64, max_steps=60, lr=1e-2, warmup_steps=5, eval_every=30, eval_tokens=4000,
                log_every=10, checkpoint_every=10, device="cpu")
    base.update(kw)
    return TrainConfig(**base)


def _val_losses(out) -> list[float]:
    return [m["loss"] for m in runfiles.read_metrics(out) if m["split"] == "val"]


def _train_losses(out) -> list[float]:
    return [m["loss"] for m in runfiles.read_metrics(out) if m["split"] == "train"]


@pytest.fixture
def tones(tmp_path):
    folder = tmp_path / "tones"
    folder.mkdir()
    t = np.arange(4000) / 8000
    for i, f in enumerate((220, 330, 440, 550, 660)):
        sf.write(str(folder / f"tone{i}.wav"), 0.6 * np.sin(2 * np.pi * f * t), 8000)
    return folder


@pytest.fixture
def text(tmp_path):
    p = tmp_path / "text.txt"
    p.write_text("the cat sat on the mat. " * 80)
    return p


def test_wavenet_loss_falls_on_sine_tones(tmp_path, tones):
    # the training loss: a held-out tone of another pitch is a different signal, not expected to fit in 60 steps
    summary = train(_cfg(tmp_path, tones, split="fraction"), progress=False)
    losses = _train_losses(tmp_path / "run")
    assert summary["steps"] == 60
    assert losses[0] > math.log(256) - 0.5 and losses[-1] < losses[0] - 1.0, losses
    model = engine.load_model(tmp_path / "run" / "best")
    meta = engine.read_meta(tmp_path / "run" / "best")
    val = _val_losses(tmp_path / "run")
    assert model.config.sample_rate == 8000 and meta["training"]["val_loss"] == pytest.approx(min(val))


def test_bytenet_loss_falls_on_repeated_text(tmp_path, text):
    train(_cfg(tmp_path, text), progress=False)
    val = _val_losses(tmp_path / "run")
    assert val[0] > val[-1] and val[-1] < 2.0, val


def test_resume_continues_step_count_and_loss_curve(tmp_path, text):
    common = dict(min_lr_ratio=1.0, max_steps=40, eval_every=20)  # constant lr after warm-up: max_steps is moot
    straight = train(_cfg(tmp_path / "a", text, **common), progress=False)
    first = train(_cfg(tmp_path / "b", text, **{**common, "max_steps": 20}), progress=False)
    assert first["steps"] == 20
    resumed = train(_cfg(tmp_path / "b", text, **common), resume=True, progress=False)
    assert straight["steps"] == resumed["steps"] == 40
    a, b = _train_losses(tmp_path / "a" / "run"), _train_losses(tmp_path / "b" / "run")
    assert len(a) == len(b) == 4
    np.testing.assert_allclose(a, b, rtol=1e-4)  # the same curve as an uninterrupted run
    assert runfiles.read_status(tmp_path / "b" / "run")["step"] == 40


def test_last_checkpoint_is_never_half_written(tmp_path, text, monkeypatch):
    train(_cfg(tmp_path, text, max_steps=10), progress=False)
    last = tmp_path / "run" / "last"
    before = json.loads((last / ckpt.STATE_FILE).read_text())["step"]

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(ckpt, "save_file", boom)  # crash while writing the optimizer tensors
    with pytest.raises(OSError):
        train(_cfg(tmp_path, text, max_steps=20), resume=True, progress=False)
    assert ckpt.find_last(last) == last
    assert json.loads((last / ckpt.STATE_FILE).read_text())["step"] == before
    assert not [p for p in last.parent.iterdir() if p.name.startswith(".last.build")]  # temp folder cleaned
    engine.load_model(last)
    # a crash between the two renames leaves only the moved-aside copy: it is still found
    last.rename(last.with_name(".last.old"))
    assert ckpt.find_last(last) == last.with_name(".last.old")


def test_cli_train_and_eval(tmp_path, text, capsys):
    out = tmp_path / "cli"
    rc = cli.main(["train", "--family", "bytenet", "--data", str(text), "--out", str(out), "--max-steps", "5",
                   "--no-progress", "--seq-len", "32", "--batch-size", "4", "--set", "sets=1",
                   "--set", "set_size=2", "--set", "d=16", "--set", "eval_every=5"])
    assert rc == 0
    assert "5 steps" in capsys.readouterr().out
    rc = cli.main(["eval", "--model", str(out / "best"), "--data", str(text)])
    printed = capsys.readouterr().out
    assert rc == 0 and "nats/token" in printed and "bits/token" in printed


@pytest.mark.parametrize("args, message", [
    (["train", "--family", "wavenet", "--data", "MISSING", "--out", "OUT"], "data not found"),
    (["train", "--family", "nosuch", "--data", "TEXT", "--out", "OUT"], "unknown model family"),
    (["train", "--family", "wavenet", "--data", "TEXT", "--out", "OUT", "--preset", "huge"], "no preset 'huge'"),
    (["train", "--family", "wavenet", "--data", "TEXT", "--out", "OUT", "--set", "bogus=1"], "--set bogus"),
    (["train", "--out", "OUT", "--resume"], "nothing to resume"),
    (["train", "--family", "wavenet", "--data", "EMPTY", "--out", "OUT"], "no audio files"),
    (["train", "--family", "wavenet", "--data", "TEXT", "--out", "OUT"],
     "text.txt is a text corpus, but wavenet is an audio family (it trains on audio folders): pick bytenet, "
     "hierarchical or rnn"),
    (["train", "--family", "bytenet", "--data", "TONES", "--out", "OUT"],
     "is an audio folder, but bytenet is a text family (it trains on text): pick wavenet or samplernn"),
    (["eval", "--model", "OUT", "--data", "TEXT"], "no checkpoint"),
])
def test_cli_bad_input_is_one_clear_line(tmp_path, text, tones, capsys, args, message):
    (tmp_path / "empty").mkdir()
    subs = {"MISSING": str(tmp_path / "missing.txt"), "TEXT": str(text), "OUT": str(tmp_path / "out"),
            "EMPTY": str(tmp_path / "empty"), "TONES": str(tmp_path / "tones")}
    rc = cli.main([subs.get(a, a) for a in args])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2
    assert err[-1].startswith("error: ") and message in err[-1], err
    assert not any("Traceback" in line for line in err)


def test_norm_stabilizer_is_reported_apart_from_the_cross_entropy(tmp_path, text):
    cfg = _cfg(tmp_path, text, family="rnn", model=dict(cell="gru", hidden_size=16, layers=1,
                                                         norm_stabilizer_hidden=50.0),
               max_steps=10, log_every=5, eval_every=100, checkpoint_every=100)
    train(cfg, progress=False)
    records = [m for m in runfiles.read_metrics(tmp_path / "run") if m["split"] == "train"]
    assert len(records) == 2
    for m in records:
        assert m["norm_stabilizer_hidden"] > 0
        assert m["ce"] == pytest.approx(m["loss"] - m["norm_stabilizer_hidden"])


def test_config_json_names_public_data_by_the_data_setting_not_a_local_folder(tmp_path, text, monkeypatch):
    """A run on data under PLAYGROUND_DATA records `$PLAYGROUND_DATA/<relative path>`: a checkpoint trained by a
    recipe names no folder of the machine it was trained on.  Data elsewhere is recorded as given."""
    kw = dict(max_steps=2, eval_every=2, checkpoint_every=2)
    monkeypatch.setenv("PLAYGROUND_DATA", str(tmp_path))
    train(_cfg(tmp_path, text, **kw), progress=False)
    assert engine.read_meta(tmp_path / "run" / "last")["training"]["data"] == "$PLAYGROUND_DATA/text.txt"
    monkeypatch.setenv("PLAYGROUND_DATA", str(tmp_path / "elsewhere"))
    train(_cfg(tmp_path, text, out=str(tmp_path / "run2"), **kw), progress=False)
    assert engine.read_meta(tmp_path / "run2" / "last")["training"]["data"] == str(text)


def test_data_of_the_wrong_kind_is_refused_before_training_naming_a_family_that_fits(tmp_path, text):
    names = tmp_path / "names.txt"
    names.write_text("".join(f"name{chr(97 + i % 26)}{i}\n" for i in range(40)))
    for data, family, fits in ((names, "wavenet", "hierarchical"), (text, "samplernn", "bytenet")):
        with pytest.raises(DataError, match=f"but {family} is an audio family .*pick {fits}"):
            train(_cfg(tmp_path, data, family=family, model={}), progress=False)
    pairs = tmp_path / "pairs.tsv"
    pairs.write_text("".join(f"{i}\t{i + 1}\n" for i in range(40)))
    with pytest.raises(DataError, match="pairs.tsv is a .tsv of pairs .*pick seq2seq"):
        train(_cfg(tmp_path, pairs), progress=False)
    with pytest.raises(DataError, match="text.txt is a text corpus, but seq2seq .*pick bytenet"):
        train(_cfg(tmp_path, text, family="seq2seq", model={}), progress=False)
    run = tmp_path / "run"  # refused before anything but the folder's lock file is written
    assert not run.exists() or [p.name for p in run.iterdir()] == [runfiles.LOCK_FILE]


def test_fitting_families_follow_the_data_kind():
    from trainers.data.kinds import default_family_for, fitting_families
    assert fitting_families("audio") == ["wavenet", "samplernn"]
    assert fitting_families("text")[0] == "bytenet" and set(fitting_families("text")) == {"bytenet", "rnn",
                                                                                         "hierarchical"}
    assert default_family_for("names") == "hierarchical" and default_family_for("pairs") == "seq2seq"


def test_a_run_folder_that_names_public_data_by_the_setting_resumes(tmp_path, text, monkeypatch):
    import json as _json
    kw = dict(max_steps=2, eval_every=2, checkpoint_every=2)
    train(_cfg(tmp_path, text, **kw), progress=False)
    run = tmp_path / "run"
    meta = _json.loads((run / "run.json").read_text())
    meta["data"] = "$PLAYGROUND_DATA/text.txt"
    (run / "run.json").write_text(_json.dumps(meta))
    monkeypatch.setenv("PLAYGROUND_DATA", str(tmp_path))
    from trainers.train import load_run_config
    cfg = load_run_config(run)
    assert cfg.data == str(tmp_path / "text.txt")
    cfg.max_steps = 4
    assert train(cfg, resume=True, progress=False)["steps"] == 4
