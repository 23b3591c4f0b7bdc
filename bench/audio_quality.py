"""The audio quality table (SampleRNN paper, Table 1, in miniature): held-out bits/sample for WaveNet, SampleRNN
2-tier and 3-tier and an RNN baseline, each trained with `trainers` for the same time budget on one thread, on the
spoken digits and on the music, all with one quantizer (8-bit linear, as the paper).

Every model scores the same targets: each held-out clip (digits: takes 0-4; music: the last 10 % of each track)
from its first sample, up to `--cap` targets per clip.  Recurrent models stream the clip in chunks with their state
carried (`forward_chunk`); WaveNet scores windows with a full receptive field of context (zero padding at the
clip's start, which is where generation starts too).  The RNN baseline is SampleRNN with frame size 1: one GRU
that reads every sample, under the same sample-level MLP.

    python bench/audio_quality.py --minutes 4 --datasets digits music --out /tmp/aq     # prints a table
    python bench/audio_quality.py --speed                                                 # SampleRNN samples/s
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import engine  # noqa: E402
from trainers.config import TrainConfig  # noqa: E402
from trainers.data import load_dataset  # noqa: E402
from trainers.train import train  # noqa: E402
from engine.paths import data_path  # noqa: E402

DATA = data_path("audio") or Path("$PLAYGROUND_DATA/audio")  # engine.paths.data_root(); see docs/TRAINING.md
DATASETS = {  # name: (folder, sample rate, split rule, clips scored: every n-th held-out clip)
    "digits": (DATA / "fsdd" / "recordings", 8000, "fsdd", 3),
    "music": (DATA / "music", 16000, "tail", 1),
}
_SRNN = dict(dim=256, mlp_dim=128, embed_dim=32, cell="gru")
MODELS = {  # name: (family, model config, train config)
    "WaveNet": ("wavenet", dict(blocks=2, layers_per_block=8, residual_channels=32, gate_channels=64,
                                skip_channels=64), dict(batch_size=8, seq_len=1024, lr=2e-3)),
    "SampleRNN 2-tier": ("samplernn", dict(_SRNN, frame_sizes=[16]), dict(batch_size=16, seq_len=512, lr=2e-3)),
    "SampleRNN 3-tier": ("samplernn", dict(_SRNN, frame_sizes=[8, 2]), dict(batch_size=16, seq_len=512, lr=2e-3)),
    "RNN baseline": ("samplernn", dict(_SRNN, frame_sizes=[1]), dict(batch_size=16, seq_len=512, lr=2e-3)),
}
PAPER = {"SampleRNN 2-tier": 1.076, "WaveNet": 1.464, "RNN baseline": 1.410}  # Table 1, Music (bits/sample)


@torch.inference_mode()
def score(model, clips: list[torch.Tensor], chunk: int = 4096) -> tuple[float, int]:
    """(bits per sample, targets) over every clip from its start."""
    model.eval()
    nats, count = 0.0, 0
    for s in clips:
        x, y = s[:-1].unsqueeze(0), s[1:].unsqueeze(0)
        if model.receptive_field is None:
            state = None
            for a in range(0, x.shape[1], chunk):
                logits, state = model.forward_chunk(x[:, a:a + chunk], state)
                nats += F.cross_entropy(logits[0], y[0, a:a + chunk], reduction="sum").item()
        else:
            ctx = model.receptive_field - 1
            for a in range(0, x.shape[1], chunk):
                h = max(0, a - ctx)
                logits = model(x[:, h:a + chunk])[0, a - h:]
                nats += F.cross_entropy(logits, y[0, a:a + chunk], reduction="sum").item()
        count += y.shape[1]
    return nats / count / math.log(2), count


def held_out(dataset: str, model, cap: int) -> list[torch.Tensor]:
    folder, _, split, every = DATASETS[dataset]
    data = load_dataset(folder, model.tokens, "audio", split, "none", 0.1, 0.0)
    return [s[:cap + 1] for s in data.sequences["val"][::every]]


def run(dataset: str, name: str, minutes: float, out: Path, cap: int) -> dict:
    folder, rate, split, _ = DATASETS[dataset]
    family, model_cfg, train_cfg = MODELS[name]
    run_dir = out / f"{dataset}-{name.replace(' ', '-').lower()}"
    cfg = TrainConfig(family=family, data=str(folder), out=str(run_dir), split=split, labels="none",
                      model=dict(model_cfg, sample_rate=rate, n_classes=256, quantization="linear"),
                      max_steps=10**7, minutes=minutes, warmup_steps=100, eval_every=10**9, eval_tokens=32768,
                      checkpoint_every=10**9, threads=1, device="cpu", **train_cfg)
    t0 = time.process_time()
    summary = train(cfg, progress=False)
    cpu = time.process_time() - t0
    model = engine.load_model(run_dir / "best")
    torch.set_num_threads(1)
    bits, n = score(model, held_out(dataset, model, cap))
    row = dict(dataset=dataset, model=name, bits=bits, targets=n, steps=summary["steps"], minutes=minutes,
               process_cpu_s=cpu, parameters=model.num_parameters())
    print(json.dumps(row), flush=True)
    with open(out / "results.jsonl", "a") as f:
        f.write(json.dumps(row) + "\n")
    return row


@torch.inference_mode()
def speed(seconds_of_audio: float = 1.0) -> None:
    """Single-stream SampleRNN generation on one thread, sampling included: the eager `step` loop and the compiled
    fast path (engine.fast) side by side, for the bench configs and the shipped samplernn-music model."""
    torch.set_num_threads(1)
    models = {name: engine.build_model("samplernn", **MODELS[name][1]).eval()
              for name in ("SampleRNN 2-tier", "SampleRNN 3-tier")}
    shipped = Path(__file__).resolve().parents[1] / "assets" / "models" / "samplernn-music"
    if shipped.exists():
        models["assets/models/samplernn-music"] = engine.load_model(shipped)
    for name, model in models.items():
        n = int(model.config.sample_rate * seconds_of_audio)
        for backend in ("eager", "fast"):
            engine.generate_all(model, None, max_new_tokens=256, seed=0, backend=backend)  # warm-up
            t0, c0 = time.perf_counter(), time.process_time()
            engine.generate_all(model, None, max_new_tokens=n, seed=0, chunk_size=n, backend=backend)
            dt, cpu = time.perf_counter() - t0, time.process_time() - c0
            print(f"{name} [{backend}]: {n / dt:,.0f} samples/s wall, {n / cpu:,.0f} per CPU-second, "
                  f"{n / dt / model.config.sample_rate:.1f}x real time ({model.num_parameters():,} parameters)",
                  flush=True)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--minutes", type=float, default=4.0, help="training budget per model (wall clock, 1 thread)")
    p.add_argument("--datasets", nargs="+", default=list(DATASETS))
    p.add_argument("--models", nargs="+", default=list(MODELS))
    p.add_argument("--out", default="/tmp/audio_quality")
    p.add_argument("--cap", type=int, default=60000, help="targets scored per held-out clip, from its start")
    p.add_argument("--speed", action="store_true")
    a = p.parse_args()
    if a.speed:
        speed()
        return
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    for d in a.datasets:
        for m in a.models:
            run(d, m, a.minutes, out, a.cap)


if __name__ == "__main__":
    main()
