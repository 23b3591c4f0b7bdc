"""Time of one training step (forward + backward, one thread) of WaveNet checkpoints, optionally against another
checkout's engine, in alternating fresh processes.

    python bench/train_step.py runs/vocoder-music/best runs/plain-music/best --baseline /tmp/old --rounds 3

A step is what `trainers` does for the music presets: a batch of 8 windows of 1,535 ids (1,024 scored + the
receptive field), the model's cross-entropy, backward.  Frame-conditioned models get random frames and per-row
window offsets, as training batches do.  Reports the median of 10 steps after one warm-up step.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

_MEASURE = r"""
import json, statistics, sys, time, torch
torch.set_num_threads(1)
import engine
from engine.protocol import Conditioning
torch.manual_seed(0)
model = engine.load_model(sys.argv[1]).train()
batch, window = int(sys.argv[2]), int(sys.argv[3])
vocab = model.tokens.vocab_size
x = torch.randint(0, vocab, (batch, window))
cond = None
if model.frame_context:
    ff = model.frame_features
    cond = Conditioning(frames=torch.rand(batch, ff.n_mels, window // ff.hop + 2 * model.frame_context + 1),
                        first_sample=torch.randint(0, ff.hop, (batch,)) + model.frame_context * ff.hop)
def step():
    model.zero_grad(set_to_none=True)
    loss = torch.nn.functional.cross_entropy(model(x, cond).reshape(-1, vocab), x.reshape(-1))
    loss.backward()
step()
times = []
for _ in range(10):
    t = time.perf_counter(); step(); times.append(time.perf_counter() - t)
print(json.dumps({"ms": 1000 * statistics.median(times)}))
"""


def measure(tree: Path, model: Path, batch: int, window: int) -> float:
    env = dict(os.environ, PYTHONPATH=str(tree), OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", _MEASURE, str(model), str(batch), str(window)], cwd=tree, env=env,
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["ms"]


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("models", nargs="+", help="checkpoints to time")
    p.add_argument("--baseline", default=None, help="another checkout to time the same models under")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--window", type=int, default=1535)
    a = p.parse_args()
    trees = [("current", REPO)] + ([("baseline", Path(a.baseline).resolve())] if a.baseline else [])
    results: dict = {}
    for r in range(a.rounds):
        for name, tree in (trees if r % 2 == 0 else trees[::-1]):
            for m in a.models:
                ms = measure(tree, Path(m).resolve(), a.batch, a.window)
                results.setdefault((m, name), []).append(ms)
                print(f"round {r + 1} {name:8s} {m}: {ms:.0f} ms/step", flush=True)
    print("\n| model | tree | ms per training step, one thread (each round) |\n|---|---|---|")
    for (m, name), xs in results.items():
        print(f"| {m} | {name} | {' / '.join(f'{x:.0f}' for x in xs)} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
