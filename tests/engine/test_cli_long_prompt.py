"""A long audio prompt costs what its kept tail costs (defect 4): the CLI decodes only the last
engine.audio.PROMPT_SECONDS, says so, and its memory does not grow with the file."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

import engine
from engine import audio

REPO = Path(__file__).resolve().parents[2]
RSS = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=False); "
       "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")  # peak KiB of the CLI process alone


def _peak_mb(args, tmp_path) -> tuple[float, float, str]:
    t = time.perf_counter()
    res = subprocess.run([sys.executable, "-c", RSS, sys.executable, "-m", "engine", *args], cwd=REPO,
                         capture_output=True, text=True, timeout=300)
    return int(res.stdout.strip().splitlines()[-1]) / 1024, time.perf_counter() - t, res.stderr


def test_a_long_prompt_is_trimmed_to_its_tail_with_a_note_and_bounded_memory(tmp_path):
    rate, minutes = 8000, 9
    rng = np.random.default_rng(0)
    wave = np.zeros(minutes * 60 * rate, dtype=np.float32)
    wave[::7] = rng.uniform(-0.3, 0.3, len(wave[::7]))  # silence and noise
    wave[-rate:] = 0.5 * np.sin(2 * np.pi * 440 * np.arange(rate) / rate)  # the tail is what the model hears
    long = tmp_path / "long.wav"
    sf.write(str(long), wave, rate, subtype="PCM_16")
    model = engine.build_model("wavenet", blocks=1, layers_per_block=4, residual_channels=16, gate_channels=16,
                               skip_channels=16, sample_rate=rate)
    engine.save_model(model, tmp_path / "m")
    common = ["--model", str(tmp_path / "m"), "--seconds", "0.05", "--seed", "1"]
    base_mb, _, _ = _peak_mb([*common, "--out", str(tmp_path / "a.wav")], tmp_path)
    mb, seconds, err = _peak_mb([*common, "--prompt-audio", str(long), "--out", str(tmp_path / "b.wav")], tmp_path)
    assert (tmp_path / "b.wav").is_file(), err
    assert f"note: the audio prompt is {minutes * 60:.1f} s long; only its last {audio.PROMPT_SECONDS:g} s are used" \
        in err
    assert mb < base_mb + 150, (mb, base_mb)  # the whole file as float32 alone would be 17 MB, its ids 35 MB
    assert seconds < 60


def test_read_audio_keeps_the_last_seconds_only(tmp_path):
    rate = 8000
    wave = np.linspace(-0.5, 0.5, 30 * rate, dtype=np.float32)
    for name, fmt in (("x.wav", "WAV"), ("x.flac", "FLAC"), ("x.au", "AU")):
        sf.write(str(tmp_path / name), wave, rate, format=fmt)
        tail, r = audio.read_audio(tmp_path / name, keep_last_seconds=2.0)
        assert r == rate and len(tail) == 2 * rate
        np.testing.assert_allclose(tail, wave[-2 * rate:], atol=1e-3)
        assert audio.audio_seconds(tmp_path / name) == 30.0
    short, _ = audio.read_audio(tmp_path / "x.wav", keep_last_seconds=60.0)
    assert len(short) == len(wave)
