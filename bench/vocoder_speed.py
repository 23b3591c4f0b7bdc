"""Vocoder speed on one thread (fast path, batch 1), optionally against another checkout, in alternating processes.

    python bench/vocoder_speed.py                                   # the shipped pipelines' vocoders
    python bench/vocoder_speed.py --baseline /tmp/old --rounds 3    # the same models under an older tree's engine

Each measurement is a fresh process that imports `engine` from its tree (this one, or `--baseline`), loads the
model, warms the compiled loop on 256 samples, then times 3 s of audio from random frames (chunks of 2048).
Alternating the trees puts a shared machine's load on both alike; the ratio is what to read.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from bench.alternating import checkouts, in_checkout, rounds, table  # noqa: E402
DEFAULT_MODELS = [REPO / "assets" / "models" / "digits-pipeline", REPO / "assets" / "models" / "music-pipeline"]

_MEASURE = r"""
import json, sys, time, torch
torch.set_num_threads(1)
import engine
from engine.protocol import Conditioning
model = engine.load_model(sys.argv[1]).eval()
voc = model.vocoder if model.family == "pipeline" else model
rate = voc.frame_features.sample_rate
frames = torch.rand(1, voc.frame_features.n_mels, 2000, generator=torch.Generator().manual_seed(0))
engine.generate_all(voc, None, max_new_tokens=256, cond=Conditioning(frames=frames), seed=0, batch_size=1,
                    chunk_size=256)
n = 3 * rate
t = time.perf_counter()
engine.generate_all(voc, None, max_new_tokens=n, cond=Conditioning(frames=frames), seed=0, batch_size=1,
                    chunk_size=2048)
print(json.dumps({"samples_per_s": n / (time.perf_counter() - t), "rate": rate}))
"""


def measure(tree: Path, model: Path) -> tuple[float, str]:
    got = in_checkout(tree, _MEASURE, str(model))
    x = got["samples_per_s"] / got["rate"]
    return x, f"{got['samples_per_s']:,.0f} samples/s = {x:.2f}x real time at {got['rate'] / 1000:g} kHz"


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("models", nargs="*", default=[str(m) for m in DEFAULT_MODELS],
                   help="vocoder or pipeline checkpoints (default: the shipped pipelines)")
    p.add_argument("--baseline", default=None, help="another checkout to time the same models under")
    p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args()
    results = rounds(checkouts(a.baseline), a.models, a.rounds, measure)
    table(results, "real-time factor, one thread", ".2f")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
