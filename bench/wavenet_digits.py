"""Judge the demo digit WaveNet: held-out bits/sample, spectrograms beside real clips, and a digit classifier.

    .venv/bin/python bench/wavenet_digits.py [--model assets/models/wavenet-digits] [--per-digit 10]

1. Held-out cross-entropy on the FSDD test takes (0-4) of all speakers, real audio only (no appended silence).
2. A small CNN digit classifier on log-mel spectrograms, trained on the real training takes (5-49) and scored on
   the real test takes: it says how well digits can be told apart at all.
3. `--per-digit` generations conditioned on each digit (temperatures 1.0 and 0.9, seed 0), trimmed of silence
   like the real clips, classified by that CNN: accuracy well above chance (10 %) means the conditioning is audible.
4. docs/wavenet-digits-spectrograms.png: a real test clip and a generation for each digit.
The data is read from $PLAYGROUND_DATA/audio/fsdd/recordings (engine.paths.data_root(); skipped with a message when
absent); nothing is downloaded.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import librosa
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import engine  # noqa: E402
from bench.spectrograms import spectrogram_grid  # noqa: E402
from engine.audio import decode_audio, read_audio  # noqa: E402
from engine.paths import data_path  # noqa: E402
from trainers.data.audio import FSDD_NAME  # noqa: E402
from trainers.evaluate import evaluate_checkpoint  # noqa: E402

FSDD = data_path("audio", "fsdd", "recordings") or Path("$PLAYGROUND_DATA/audio/fsdd/recordings")
RATE, N_MELS, FRAMES, HOP = 8000, 32, 48, 128  # 48 frames of 16 ms = 0.77 s


def features(wave: np.ndarray) -> np.ndarray:
    """Silence-trimmed, centred log-mel [N_MELS, FRAMES] (cropped or zero-padded)."""
    wave, _ = librosa.effects.trim(wave, top_db=30)
    if len(wave) < 256:
        wave = np.pad(wave, (0, 256 - len(wave)))
    mel = librosa.feature.melspectrogram(y=wave, sr=RATE, n_fft=512, hop_length=HOP, n_mels=N_MELS)
    logmel = np.log(mel + 1e-6)
    out = np.full((N_MELS, FRAMES), np.log(1e-6), dtype=np.float32)
    n = min(FRAMES, logmel.shape[1])
    start = (logmel.shape[1] - n) // 2
    pad = (FRAMES - n) // 2
    out[:, pad:pad + n] = logmel[:, start:start + n]
    return out


class DigitCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
            nn.Flatten(), nn.Dropout(0.2), nn.Linear(64, 10))

    def forward(self, x):
        return self.net(x.unsqueeze(1))


def load_fsdd() -> tuple[dict, dict]:
    data = {"train": ([], []), "test": ([], [])}
    waves = {}
    for f in sorted(FSDD.glob("*.wav")):
        m = FSDD_NAME.match(f.name)
        if not m:
            continue
        wave, _ = read_audio(f, RATE)
        split = "test" if int(m.group(3)) < 5 else "train"
        data[split][0].append(features(wave))
        data[split][1].append(int(m.group(1)))
        if split == "test" and int(m.group(3)) == 0 and m.group(2) == "jackson":
            waves[int(m.group(1))] = wave
    return {k: (torch.tensor(np.stack(x)), torch.tensor(y)) for k, (x, y) in data.items()}, waves


def train_classifier(train: tuple, epochs: int = 15, seed: int = 0) -> tuple[nn.Module, tuple[float, float]]:
    torch.manual_seed(seed)
    x, y = train
    mean, std = x.mean(), x.std()
    model = DigitCNN()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=1e-3)
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(x))
        for i in range(0, len(x), 64):
            idx = perm[i:i + 64]
            loss = F.cross_entropy(model((x[idx] - mean) / std), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    return model, (float(mean), float(std))


@torch.no_grad()
def predict(model: nn.Module, norm: tuple[float, float], x: torch.Tensor) -> torch.Tensor:
    return model((x - norm[0]) / norm[1]).argmax(-1)


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--model", default=str(REPO / "assets" / "models" / "wavenet-digits"))
    p.add_argument("--per-digit", type=int, default=10)
    p.add_argument("--seconds", type=float, default=0.8)
    p.add_argument("--temperatures", type=lambda v: [float(t) for t in v.split(",")], default=[1.0, 0.9],
                   help="comma-separated; the image shows the first")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--skip-eval", action="store_true")
    p.add_argument("--image", default=str(REPO / "docs" / "wavenet-digits-spectrograms.png"))
    p.add_argument("--json", default=None, help="write the figures here as JSON")
    a = p.parse_args()
    if not FSDD.is_dir():
        print(f"skipped: {FSDD} is absent")
        return 0
    torch.set_num_threads(a.threads)
    results: dict = {"model": a.model}
    t0 = time.time()
    if not a.skip_eval:
        res = evaluate_checkpoint(a.model, FSDD, "val", trailing_silence=0.0)
        results.update(heldout_nats=res.nats, heldout_bits=res.bits, heldout_samples=res.tokens)
        print(f"held-out (test takes 0-4, real audio only): {res.nats:.4f} nats/sample = {res.bits:.4f} "
              f"bits/sample over {res.tokens} samples  [{time.time() - t0:.0f} s]")
    data, real_waves = load_fsdd()
    clf, norm = train_classifier(data["train"])
    real_acc = float((predict(clf, norm, data["test"][0]) == data["test"][1]).float().mean())
    results["classifier_real_test_accuracy"] = real_acc
    print(f"classifier on real test clips: {real_acc:.1%} ({len(data['test'][1])} clips)  [{time.time() - t0:.0f} s]")

    model = engine.load_model(a.model)
    digits = torch.arange(10).repeat_interleave(a.per_digit)
    n = int(a.seconds * model.config.sample_rate)
    shown = None
    results["generated"] = {}
    for temperature in a.temperatures:
        t1 = time.time()
        ids = engine.generate_all(model, None, max_new_tokens=n, temperature=temperature, cond=digits,
                                  seed=a.seed, batch_size=len(digits), chunk_size=n)
        gen_s = time.time() - t1
        waves = decode_audio(ids, model.tokens).numpy()
        shown = waves if shown is None else shown
        pred = predict(clf, norm, torch.tensor(np.stack([features(w) for w in waves])))
        per_digit = {d: float((pred[digits == d] == d).float().mean()) for d in range(10)}
        acc = float((pred == digits).float().mean())
        results["generated"][str(temperature)] = dict(
            accuracy=acc, per_digit=per_digit, generation_s=gen_s,
            predicted_counts=[int((pred == k).sum()) for k in range(10)])
        print(f"classifier on generations: {acc:.1%} ({len(digits)} clips of {a.seconds} s, T={temperature}); "
              "per digit " + " ".join(f"{d}:{v:.0%}" for d, v in per_digit.items())
              + f"; predicted counts {results['generated'][str(temperature)]['predicted_counts']}"
              f"  [generation {gen_s:.0f} s]")
    waves = shown
    results.update(per_digit=a.per_digit, seconds=a.seconds)
    spectrogram_grid({"real": real_waves, "generated": {d: waves[d * a.per_digit] for d in range(10)}}, a.image,
                     "FSDD test clips (speaker jackson, take 0) above; WaveNet generations conditioned on the digit "
                     "below (temperature 1, seed 0)", RATE)
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=2))
    for d in range(10):  # a few generations to listen to (not committed)
        engine.audio.write_wav(f"/tmp/wavenet-digit-{d}.wav", waves[d * a.per_digit], model.config.sample_rate)
    print(f"image: {a.image}; wavs: /tmp/wavenet-digit-*.wav; total {time.time() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
