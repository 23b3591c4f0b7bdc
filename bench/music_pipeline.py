"""Judge the music pipeline (token LM + vocoder) by measurement.

    .venv/bin/python bench/music_pipeline.py --model assets/models/music-pipeline --baseline PLAIN_WAVENET \
        [--seconds 3] [--json F]

1. Held-out bits/sample of the vocoder given the true frames, beside `--baseline` (the same WaveNet without frames),
   on the held-out last 10 % of each of the music folder's 4 tracks: every sample of them (576,272 at 16 kHz), and
   per track.  (Training's own evaluation scores a 131,072-sample subset: the first track's tail and the start
   of the second's, which holds the first track's fade-out and so over-weights quiet audio.)
2. Real audio, copy-synthesis and generations, each scored by mean spectral flatness (librosa; near 1 is white
   noise, near 0 a few sharp partials) and by the harmonic share of their power (librosa's harmonic-percussive
   separation: about 0.5 for white noise, near 1 for sustained notes: harmonic lines), and drawn as spectrograms into docs/music-pipeline-
   spectrograms.png.  Real: the first `--seconds` of each track's held-out tail (no selection).  Copy: those
   excerpts re-played by the vocoder from their own frames (seed 0), and through the tokens (frames -> nearest
   token -> centroid -> vocoder).  Generated: `--seconds` per seed 0-3 at temperature 1 (no selection).
   `--compare` adds the flatness of another audio model's unconditioned generations (e.g. samplernn-music).
3. Vocoder speed on one thread (fast path, batch 1).
The data is read through the data setting (PLAYGROUND_DATA; skipped with a message when absent).
"""
from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import engine  # noqa: E402
from bench.digits_pipeline import report_vocoder_speed  # noqa: E402
from bench.spectrograms import spectrogram_grid  # noqa: E402
from engine.audio import decode_audio, read_audio  # noqa: E402
from engine.features import LogMel  # noqa: E402
from engine.paths import data_root  # noqa: E402
from engine.protocol import Conditioning  # noqa: E402
from trainers.data.audio import audio_files  # noqa: E402
from trainers.data import load_dataset  # noqa: E402
from trainers.evaluate import evaluate  # noqa: E402


def flatness(wave: np.ndarray) -> float:
    import librosa
    return float(np.mean(librosa.feature.spectral_flatness(y=wave.astype(np.float32), n_fft=1024,
                                                           hop_length=256)))


def harmonic_share(wave: np.ndarray) -> float:
    """Share of the power spectrogram that librosa's harmonic-percussive separation (median filtering, margin 1)
    puts in the harmonic part: horizontal lines.  About 0.5 for white noise, near 1 for sustained notes."""
    import librosa
    power = np.abs(librosa.stft(wave.astype(np.float32), n_fft=1024, hop_length=256)) ** 2
    harmonic, percussive = librosa.decompose.hpss(power, margin=1.0)
    return float(harmonic.sum() / max(harmonic.sum() + percussive.sum(), 1e-20))


def held_out_nats(path: str, folder: Path) -> tuple[float, list[float], list[int]]:
    """Held-out nats/sample of a WaveNet (or a pipeline's vocoder, given the true frames) over the whole held-out
    split as its training run read it (every sample of every track's tail), and per track."""
    model = engine.load_model(path).eval()
    training = engine.checkpoint.read_meta(path).get("training", {}) or {}
    if model.family == "pipeline":
        model, training = model.vocoder, training.get("vocoder") or training
    data = load_dataset(folder, model.tokens, "auto", training.get("split", "tail"), "none",
                        training.get("val_fraction", 0.1), 0.0, features=model.frame_features,
                        frame_margin=model.frame_context)
    per, counts = [], []
    for i in range(len(data.sequences["val"])):
        one = copy.copy(data)
        one.sequences = {"val": [data.sequences["val"][i]]}
        if data.frames:
            one.frames = {"val": [data.frames["val"][i]]}
        res = evaluate(model, one, "val", 1024, 16)
        per.append(res.nats)
        counts.append(res.tokens)
    return float(np.average(per, weights=counts)), per, counts


def held_out_excerpts(folder: Path, rate: int, seconds: float, val_fraction: float = 0.1) -> list[np.ndarray]:
    """The first `seconds` of each track's held-out tail (trainers/data/audio.py's "tail" split)."""
    out = []
    for f in audio_files(folder):
        wave = read_audio(f, rate, max_seconds=300.0)[0]
        tail = wave[int(len(wave) * (1 - val_fraction)):]
        out.append(tail[: int(seconds * rate)])
    return out


def to_wave(model, ids: torch.Tensor) -> np.ndarray:
    return decode_audio(ids[0], model.tokens).numpy()


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--model", default=str(REPO / "assets" / "models" / "music-pipeline"))
    p.add_argument("--baseline", default=None, help="the same WaveNet trained without frames (held-out bits)")
    p.add_argument("--compare", default=None, help="another audio model whose generations' flatness to report")
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--image", default=str(REPO / "docs" / "music-pipeline-spectrograms.png"))
    p.add_argument("--json", default=None)
    p.add_argument("--vocoder-temperature", type=float, default=None,
                   help="the vocoder's sampling temperature (default: the pipeline's own vocoder_temperature)")
    p.add_argument("--skip-bits", action="store_true", help="no held-out evaluation (spectra and speed only)")
    a = p.parse_args()
    root = data_root()
    folder = (root / "audio" / "music") if root else None
    if folder is None or not folder.is_dir():
        print("skipped: the music folder is absent (set PLAYGROUND_DATA)")
        return 0
    torch.set_num_threads(1)
    t0 = time.time()
    pipe = engine.load_model(a.model).eval()
    rate = pipe.frame_features.sample_rate
    vocoder = pipe.vocoder if pipe.family == "pipeline" else pipe
    vtemp = a.vocoder_temperature
    if vtemp is None:
        vtemp = pipe.decode_options.get("vocoder_temperature", 1.0) if pipe.family == "pipeline" else 1.0
    out: dict = {"model": a.model, "seconds": a.seconds, "vocoder_temperature": vtemp}

    for name, path in (("vocoder", a.model), ("baseline", a.baseline)):
        if path and not a.skip_bits:
            nats, per, counts = held_out_nats(path, folder)
            out[f"{name}_heldout_nats"], out[f"{name}_heldout_nats_per_track"] = nats, per
            print(f"held-out nats/sample, {name} ({path}): {nats:.4f} ({nats / np.log(2):.4f} bits) over "
                  f"{sum(counts)} samples; per track {', '.join(f'{x:.3f}' for x in per)}  [{time.time() - t0:.0f} s]")

    real = held_out_excerpts(folder, rate, a.seconds)
    mel = LogMel(vocoder.frame_features)
    copies, tokens = [], []
    for w in real:
        frames = mel(torch.from_numpy(w))
        kw = dict(max_new_tokens=len(w), seed=0, batch_size=1, chunk_size=4096, temperature=vtemp)
        copies.append(to_wave(vocoder, engine.generate_all(vocoder, None, cond=Conditioning(frames=frames), **kw)))
        if pipe.family == "pipeline":
            decoded = pipe.codebook.decode(pipe.codebook.encode(frames))
            tokens.append(to_wave(vocoder, engine.generate_all(vocoder, None, cond=Conditioning(frames=decoded),
                                                               **kw)))
    print(f"copy-synthesis of {len(real)} excerpts  [{time.time() - t0:.0f} s]")
    n = int(a.seconds * rate)
    gens = []
    if pipe.family == "pipeline":
        t1 = time.time()
        for seed in range(4):
            gens.append(to_wave(pipe, engine.generate_all(pipe, None, max_new_tokens=n, temperature=1.0, seed=seed,
                                                          decode_options={"vocoder_temperature": vtemp})))
        out["generation_x_real_time"] = sum(map(len, gens)) / rate / (time.time() - t1)
    rows = {"real": real, "copy": copies, "through tokens": tokens, "generated": gens}
    rows = {k: v for k, v in rows.items() if v}
    for k, v in rows.items():
        out[f"flatness_{k}"] = [flatness(w) for w in v]
        out[f"harmonic_{k}"] = [harmonic_share(w) for w in v]
        print(f"{k}: spectral flatness mean {np.mean(out[f'flatness_{k}']):.4f} "
              f"({', '.join(f'{x:.4f}' for x in out[f'flatness_{k}'])}); harmonic share mean "
              f"{np.mean(out[f'harmonic_{k}']):.3f} ({', '.join(f'{x:.3f}' for x in out[f'harmonic_{k}'])})")
    if a.compare:
        other = engine.load_model(a.compare).eval()
        waves = [to_wave(other, engine.generate_all(other, None, max_new_tokens=n, temperature=1.0, seed=s,
                                                    batch_size=1)) for s in range(4)]
        out["flatness_compare"] = [flatness(w) for w in waves]
        out["harmonic_compare"] = [harmonic_share(w) for w in waves]
        print(f"{a.compare} generations: spectral flatness mean {np.mean(out['flatness_compare']):.4f}; harmonic "
              f"share mean {np.mean(out['harmonic_compare']):.3f} "
              f"({', '.join(f'{x:.3f}' for x in out['harmonic_compare'])})")
        rows[Path(a.compare).name] = waves
    report_vocoder_speed(vocoder, out)
    spectrogram_grid({k: dict(enumerate(v)) for k, v in rows.items()}, a.image,
                     f"music: the first {a.seconds:g} s of each track's held-out tail, its copy-synthesis, through "
                     "the tokens, and generations (T=1, seeds 0-3)", rate, n_fft=1024, top_khz=4.0)
    if a.json:
        Path(a.json).write_text(json.dumps(out, indent=2))
    print(f"image: {a.image}; total {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
