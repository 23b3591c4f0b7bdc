"""Datasets: splits, framing, audio reading, unreadable files and empty datasets."""
from __future__ import annotations

import logging
import random

import numpy as np
import pytest
import soundfile as sf
import torch

from engine.protocol import TokenSpec
from trainers.data import DataError, audio_folder, detect_kind, load_dataset, names_list, text_corpus, tsv_pairs
from trainers.losses import context_mask

TEXT = TokenSpec("text", 256, start_id=10)
AUDIO = TokenSpec("audio", 256, sample_rate=8000, quantization="mulaw", start_id=128)


def _tone(path, freq=440.0, rate=8000, seconds=0.2, channels=1):
    t = np.arange(int(rate * seconds)) / rate
    wave = 0.5 * np.sin(2 * np.pi * freq * t)
    sf.write(str(path), np.stack([wave] * channels, axis=1) if channels > 1 else wave, rate)


def test_text_corpus_holds_out_the_last_tenth(tmp_path):
    p = tmp_path / "corpus.txt"
    p.write_bytes(bytes(range(32, 132)) * 10)  # 1000 bytes
    d = text_corpus(p)
    assert [len(s) for s in d.sequences["train"]] == [900]
    assert d.sequences["val"][0].tolist() == list((bytes(range(32, 132)) * 10)[900:])


def test_names_split_is_makemores(tmp_path):
    words = [f"name{i}" for i in range(100)]
    p = tmp_path / "names.txt"
    p.write_text("\n".join(words) + "\n")
    d = names_list(p)
    expected = list(words)
    random.seed(42)
    random.shuffle(expected)
    got = [bytes(s.tolist()).decode() for s in d.sequences["train"]]
    assert got == [f"\n{w}\n" for w in expected[:80]]
    assert len(d.sequences["val"]) == 10 and len(d.sequences["test"]) == 10
    assert detect_kind(p) == "names"


def test_tsv_pairs_skip_bad_lines(tmp_path, caplog):
    p = tmp_path / "pairs.tsv"
    p.write_text("hello\tbonjour\nno tab here\n" + "".join(f"s{i}\tt{i}\n" for i in range(20)))
    with caplog.at_level(logging.WARNING):
        d = tsv_pairs(p)
    assert "skipped 1 line" in caplog.text
    assert len(d.sequences["train"]) + len(d.sequences["val"]) == 21
    b = d.sample_batch("train", 4, 8, torch.Generator().manual_seed(0))
    assert b.src is not None and b.src.shape[0] == 4 and b.src_mask.any()


def test_audio_folder_fsdd_split_labels_and_unreadable_files(tmp_path, caplog):
    for digit in range(3):
        for take in (0, 5, 6):
            _tone(tmp_path / f"{digit}_alice_{take}.wav", 200 + 100 * digit, rate=16000 if take == 6 else 8000,
                  channels=2 if take == 5 else 1)
    (tmp_path / "9_alice_7.wav").write_bytes(b"RIFF not really a wave file")
    with caplog.at_level(logging.WARNING):
        d = load_dataset(tmp_path, AUDIO, labels="prefix")
    assert "9_alice_7.wav" in caplog.text  # the unreadable file is named
    assert d.description.endswith("(fsdd split)")
    assert len(d.sequences["val"]) == 3 and len(d.sequences["train"]) == 6  # takes 0-4 held out
    assert d.label_names == ["0", "1", "2"]
    assert all(s[0] == 128 for s in d.sequences["train"])  # start id (silence) first
    assert len(d.sequences["train"][0]) == 1 + 1600  # resampled to 8 kHz (0.2 s)
    assert sorted(d.labels["val"]) == [0, 1, 2]


def test_audio_fraction_split_and_clear_errors(tmp_path):
    with pytest.raises(DataError, match="no audio files"):
        audio_folder(tmp_path, 8000)
    (tmp_path / "a.wav").write_bytes(b"garbage")
    (tmp_path / "b.flac").write_bytes(b"")
    with pytest.raises(DataError, match="none of the 2 audio file"):
        audio_folder(tmp_path, 8000)
    for i in range(4):
        _tone(tmp_path / f"clip{i}.wav", 300 + 50 * i)
    d = audio_folder(tmp_path, 8000, split="fraction")
    assert len(d.sequences["train"]) + len(d.sequences["val"]) == 4 and d.sequences["val"]


def test_empty_text_and_wrong_kind(tmp_path):
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(DataError, match="empty"):
        load_dataset(tmp_path / "empty.txt", TEXT)
    with pytest.raises(DataError, match="not found"):
        load_dataset(tmp_path / "missing.txt", TEXT)
    _tone(tmp_path / "x.wav")
    with pytest.raises(DataError, match="audio folder"):
        load_dataset(tmp_path, TEXT)


def test_eval_batches_score_every_target_once_and_context_mask(tmp_path):
    p = tmp_path / "corpus.txt"
    p.write_text("abcdefghij" * 50)
    d = text_corpus(p)
    n = sum(int(b.mask.sum()) for b in d.eval_batches("train", 3, 16, 5))
    assert n == d.num_tokens("train")
    b = d.sample_batch("train", 4, 20, torch.Generator().manual_seed(1))
    m = context_mask(b, receptive_field=8)
    for row in range(4):
        expect = 20 if bool(b.fresh[row]) else 20 - 7
        assert int(m[row].sum()) == expect


def test_each_rank_gets_its_own_shard(tmp_path):
    p = tmp_path / "corpus.txt"
    p.write_text("0123456789" * 100)
    d = text_corpus(p)
    a, b = d.shard(0, 2), d.shard(1, 2)
    assert len(a.sequences["train"][0]) + len(b.sequences["train"][0]) >= d.num_tokens("train")
    assert a.sequences["val"] is d.sequences["val"]  # every rank keeps the whole held-out split
    words = tmp_path / "names.txt"
    words.write_text("\n".join(f"w{i}" for i in range(50)))
    n = names_list(words)
    halves = [n.shard(r, 2).sequences["train"] for r in (0, 1)]
    assert len(halves[0]) + len(halves[1]) == len(n.sequences["train"])


def test_capped_evaluation_spreads_over_the_items():
    from trainers.data import SequenceDataset
    val = [torch.full((11,), i) for i in range(20)]  # item i holds only id i, in file order (e.g. digit 0 first)
    d = SequenceDataset({"train": [torch.arange(50)], "val": val})
    seen = {int(v) for b in d.eval_batches("val", 64, 32, 0, max_tokens=40) for v in b.y[b.mask]}
    assert len(seen) == 4 and max(seen) >= 15  # four items, spread over the split, not the first four
