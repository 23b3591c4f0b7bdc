"""Exact-match accuracy of a seq2seq dates model on the held-out split of its TSV (the trainer's split).

    python scripts/eval_dates.py assets/models/seq2seq-dates runs/dates.tsv --beam 1 4

The held-out pairs are the ones `trainers.data.pairs.tsv_pairs` sets aside (seed 42, last 10 %), so they were
never trained on.  Prints accuracy per beam width, per language-like script, and a few errors.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import engine  # noqa: E402
from trainers.data.pairs import tsv_pairs  # noqa: E402


def held_out(path: str, model) -> list[tuple[str, str]]:
    data = tsv_pairs(path, model.tokens.start_id, model.tokens.eos_id)
    srcs = [bytes(s.tolist()).decode("utf-8") for s in data.sources["val"]]
    tgts = [bytes(t[1:-1].tolist()).decode("utf-8") for t in data.sequences["val"]]
    return list(zip(srcs, tgts))


def accuracy(model, pairs: list[tuple[str, str]], beam: int, batch: int = 64) -> tuple[float, list]:
    wrong, right = [], 0
    for i in range(0, len(pairs), batch):
        chunk = pairs[i:i + batch]
        outs = model.translate([s for s, _ in chunk], beam_width=beam)
        for (s, t), o in zip(chunk, outs):
            if o == t:
                right += 1
            else:
                wrong.append((s, t, o))
    return right / len(pairs), wrong


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("tsv")
    ap.add_argument("--beam", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--limit", type=int, default=None, help="score only the first N held-out pairs")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    model = engine.load_model(args.model)
    pairs = held_out(args.tsv, model)[:args.limit]
    for beam in args.beam:
        t0 = time.time()
        acc, wrong = accuracy(model, pairs, beam)
        print(f"beam {beam}: exact match {acc:.4f} on {len(pairs)} held-out pairs ({time.time() - t0:.0f} s)")
        for s, t, o in wrong[:8]:
            print(f"   {s!r} -> {o!r} (want {t})")


if __name__ == "__main__":
    main()
