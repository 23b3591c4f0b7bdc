"""Samples while training: a sample at every evaluation beside its held-out loss, bounded in cost, off by a flag."""
from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from trainers import cli, runfiles
from trainers.config import TrainConfig
from trainers.train import train

pytestmark = pytest.mark.usefixtures("one_thread")

WAVENET = dict(blocks=1, layers_per_block=3, residual_channels=16, gate_channels=16, skip_channels=16,
               sample_rate=8000)
BYTENET = dict(d=16, sets=1, set_size=3)


@pytest.fixture
def text(tmp_path):
    p = tmp_path / "text.txt"
    p.write_text("the cat sat on the mat. " * 80)
    return p


@pytest.fixture
def tones(tmp_path):
    folder = tmp_path / "tones"
    folder.mkdir()
    t = np.arange(4000) / 8000
    for i, (name, f) in enumerate((("low", 220), ("mid", 330), ("high", 440), ("low", 250), ("mid", 360))):
        sf.write(str(folder / f"{name}_tone{i}.wav"), 0.6 * np.sin(2 * np.pi * f * t), 8000)
    return folder


def _cfg(tmp_path, family, data, model, **kw) -> TrainConfig:
    base = dict(family=family, data=str(data), out=str(tmp_path / "run"), model=dict(model), batch_size=8,
                seq_len=64, max_steps=20, lr=1e-2, warmup_steps=2, eval_every=10, eval_tokens=2000, log_every=5,
                checkpoint_every=10, device="cpu", sample_budget=1000.0, sample_chars=40, sample_seconds=0.25)
    base.update(kw)
    return TrainConfig(**base)


def _val_steps(run) -> list[int]:
    return [m["step"] for m in runfiles.read_metrics(run) if m["split"] == "val"]


def test_a_text_run_writes_a_text_sample_at_every_evaluation(tmp_path, text, caplog):
    caplog.set_level("INFO", logger="trainers.samples")
    train(_cfg(tmp_path, "bytenet", text, BYTENET), progress=False)
    run = tmp_path / "run"
    samples = runfiles.read_samples(run)
    val = {m["step"]: m["loss"] for m in runfiles.read_metrics(run) if m["split"] == "val"}
    assert [s["step"] for s in samples] == sorted(val) == [10, 20]
    for s in samples:
        assert s["val_loss"] == pytest.approx(val[s["step"]])
        assert s["files"] == [f"samples/step-{s['step']:06d}/sample.txt"] and not s["shortened"]
        assert s["paths"][0].read_bytes().decode("utf-8") == s["text"] and 0 < len(s["text"]) <= 40
        assert s["text"] in caplog.text  # the CLI log prints text samples


def test_text_samples_are_comparable_across_steps_and_a_seed_text_is_continued(tmp_path, text):
    train(_cfg(tmp_path, "bytenet", text, BYTENET, lr=0.0, sample_text="the cat"), progress=False)
    a, b = runfiles.read_samples(tmp_path / "run")
    assert a["text"] == b["text"] and a["text"].startswith("the cat")  # same weights, same seed: same sample


def test_a_conditioned_audio_run_writes_one_wav_per_class(tmp_path, tones):
    train(_cfg(tmp_path, "wavenet", tones, WAVENET, labels="prefix", split="fraction"), progress=False)
    run = tmp_path / "run"
    samples = runfiles.read_samples(run)
    assert [s["step"] for s in samples] == _val_steps(run) == [10, 20]
    for s in samples:
        assert s["labels"] == ["high", "low", "mid"] and s["text"] is None and isinstance(s["val_loss"], float)
        assert len(s["paths"]) == 3
        for path in s["paths"]:
            wave, rate = sf.read(str(path))
            assert rate == 8000 and len(wave) == 2000 and np.abs(wave).max() <= 1.0


def test_the_budget_holds_and_a_sample_over_it_is_skipped_and_logged(tmp_path, tones, caplog):
    caplog.set_level("INFO", logger="trainers.samples")
    cfg = _cfg(tmp_path, "wavenet", tones, WAVENET, sample_budget=1e-6, sample_seconds=2.0, max_steps=30)
    train(cfg, progress=False)
    run = tmp_path / "run"
    records = runfiles.read_samples(run, include_skipped=True)
    assert [r["step"] for r in records] == [10, 20, 30]
    assert all(r["skipped"] and "budget" in r["skipped"] and not r["files"] for r in records)
    assert runfiles.read_samples(run) == [] and "over the sampling budget" in caplog.text


def test_generation_time_stays_within_the_budget(tmp_path, tones):
    # a budget that allows some generation: what is generated stops at the allowance (one chunk over at most)
    cfg = _cfg(tmp_path, "wavenet", tones, WAVENET, sample_budget=0.05, sample_seconds=30.0, max_steps=30)
    summary = train(cfg, progress=False)
    run = tmp_path / "run"
    records = runfiles.read_samples(run, include_skipped=True)
    state = runfiles.read_json(run / "last" / "trainer_state.json")
    spent = sum(r["seconds"] for r in records)
    assert spent == pytest.approx(state["sample_s"], abs=1e-3)
    chunk_s = max(r["seconds"] for r in records)  # the first call pays the fast path's set-up: one chunk's worth
    assert spent <= 0.05 * state["elapsed_s"] + chunk_s
    assert all(r["shortened"] or r["skipped"] for r in records) and summary["steps"] == 30


def test_no_samples_writes_none(tmp_path, text):
    out = tmp_path / "run"
    rc = cli.main(["train", "--family", "bytenet", "--data", str(text), "--out", str(out), "--max-steps", "10",
                   "--no-progress", "--no-samples", "--device", "cpu", "--set", "eval_every=5", "--set", "d=16",
                   "--set", "sets=1", "--set", "set_size=3", "--set", "seq_len=32", "--set", "batch_size=4"])
    assert rc == 0 and _val_steps(out) == [5, 10]
    assert not (out / runfiles.SAMPLES_DIR).exists() and runfiles.read_samples(out) == []
    assert runfiles.read_json(out / runfiles.RUN_FILE)["samples"] is False


def test_samples_false_by_set_writes_none(tmp_path, text):
    train(_cfg(tmp_path, "bytenet", text, BYTENET, samples=False), progress=False)
    assert not (tmp_path / "run" / runfiles.SAMPLES_DIR).exists()


def test_a_reader_skips_a_half_written_index_line(tmp_path):
    folder = tmp_path / runfiles.SAMPLES_DIR
    folder.mkdir()
    (folder / runfiles.SAMPLES_INDEX).write_text('{"step": 1, "files": []}\n{"step": 2, "fil')
    assert [r["step"] for r in runfiles.read_samples(tmp_path)] == [1]
