"""Time of one training step (forward + backward, one thread) of WaveNet checkpoints, optionally against another
checkout's engine, in alternating fresh processes.

    python bench/train_step.py runs/vocoder-music/best runs/plain-music/best --baseline /tmp/old --rounds 3

A step is what `trainers` does for the music presets: a batch of 8 windows of 1,535 ids (1,024 scored + the
receptive field), the model's cross-entropy, backward.  Frame-conditioned models get random frames and per-row
window offsets, as training batches do.  Reports the median of 10 steps after one warm-up step.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from bench.alternating import checkouts, in_checkout, rounds, table  # noqa: E402

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


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("models", nargs="+", help="checkpoints to time")
    p.add_argument("--baseline", default=None, help="another checkout to time the same models under")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--window", type=int, default=1535)
    a = p.parse_args()

    def measure(tree: Path, model: Path) -> tuple[float, str]:
        ms = in_checkout(tree, _MEASURE, str(model), str(a.batch), str(a.window))["ms"]
        return ms, f"{ms:.0f} ms/step"

    results = rounds(checkouts(a.baseline), a.models, a.rounds, measure)
    table(results, "ms per training step, one thread", ".0f")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
