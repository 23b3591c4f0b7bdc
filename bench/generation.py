"""The Fast WaveNet timing experiment: naive vs cached generation for WaveNets of 2 blocks x L layers.

For each L the naive path recomputes `forward` over the whole receptive field for every sample (O(2^L)); the
cached path steps the convolution queues (O(L)).  Both start from the same random prompt that fills the receptive
field, sample with the same seed, and must produce identical ids.  Time per sample is measured between the first
and the last yielded sample (so priming is excluded), once with one thread and once with all threads.

    python bench/generation.py                 # L = 2..14, writes docs/BENCHMARKS.md and docs/timing.png
    python bench/generation.py --layers 2 4 --no-write
"""
from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import engine  # noqa: E402
from bench.report import machine, write_section  # noqa: E402

DOCS = Path(__file__).resolve().parent.parent / "docs"
HEADING = "Fast WaveNet timing experiment (naive vs cached) — issue 2"


def wavenet(layers: int) -> engine.AutoregressiveModel:
    torch.manual_seed(layers)
    return engine.build_model("wavenet", layers_per_block=layers, blocks=2, residual_channels=32, gate_channels=64,
                              skip_channels=128, n_classes=256).eval()


def time_per_sample(gen, budget_s: float | None = None) -> tuple[float, torch.Tensor, int]:
    """Median seconds between consecutive yielded samples (chunk_size=1; priming and the first sample excluded,
    and the median keeps a moment of preemption by another process out of the figure), the ids, and the count."""
    ids, stamps = [], []
    for chunk in gen:
        ids.append(chunk)
        stamps.append(time.perf_counter())
        if budget_s is not None and len(ids) >= 4 and stamps[-1] - stamps[0] > budget_s:
            break
    gaps = torch.tensor(stamps).diff()
    return gaps.median().item(), torch.cat(ids, 1), len(ids)


def measure(layers: int, threads: int, cached_samples: int, naive_budget_s: float) -> dict:
    torch.set_num_threads(threads)
    model = wavenet(layers)
    prompt = torch.randint(0, 256, (1, model.receptive_field), generator=torch.Generator().manual_seed(0))
    kw = dict(max_new_tokens=cached_samples, temperature=1.0, seed=123, chunk_size=1)
    cached_s, cached_ids, _ = time_per_sample(engine.generate(model, prompt, backend="eager", **kw))
    naive_s, naive_ids, n_naive = time_per_sample(engine.generate_naive(model, prompt, **kw), naive_budget_s)
    same = torch.equal(naive_ids, cached_ids[:, :n_naive])
    return dict(layers=layers, threads=threads, field=model.receptive_field, naive_s=naive_s, cached_s=cached_s,
                ratio=naive_s / cached_s, naive_samples=n_naive, same_ids=same)


def table(rows: list[dict]) -> str:
    lines = ["| threads | L (2 blocks) | receptive field | naive ms/sample | cached ms/sample | naive ÷ cached | "
             "ids identical (samples compared) |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['threads']} | {r['layers']} | {r['field']} | {r['naive_s'] * 1e3:.3f} | "
                     f"{r['cached_s'] * 1e3:.3f} | {r['ratio']:.1f}× | {'yes' if r['same_ids'] else 'NO'} "
                     f"({r['naive_samples']}) |")
    return "\n".join(lines)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    thread_counts = sorted({r["threads"] for r in rows})
    fig, axes = plt.subplots(1, len(thread_counts), figsize=(5.5 * len(thread_counts), 4), squeeze=False)
    for ax, th in zip(axes[0], thread_counts):
        rs = [r for r in rows if r["threads"] == th]
        ax.semilogy([r["layers"] for r in rs], [r["naive_s"] for r in rs], "o-", label="naive (recompute field)")
        ax.semilogy([r["layers"] for r in rs], [r["cached_s"] for r in rs], "s-", label="cached (conv queues)")
        ax.set_xlabel("layers per block L (2 blocks)")
        ax.set_ylabel("seconds per sample")
        ax.set_title(f"WaveNet generation, {th} thread{'s' if th > 1 else ''}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--layers", type=int, nargs="+", default=list(range(2, 15)))
    p.add_argument("--threads", type=int, nargs="+", default=sorted({1, os.cpu_count() or 1}))
    p.add_argument("--cached-samples", type=int, default=500)
    p.add_argument("--naive-budget", type=float, default=2.0, help="seconds of naive sampling per point (>= 3 samples)")
    p.add_argument("--no-write", action="store_true", help="print only; do not touch docs/")
    args = p.parse_args(argv)
    rows = []
    for th in args.threads:
        for L in args.layers:
            rows.append(measure(L, th, args.cached_samples, args.naive_budget))
            r = rows[-1]
            print(f"threads={th} L={L:2d} field={r['field']:6d} naive={r['naive_s'] * 1e3:9.3f} ms "
                  f"cached={r['cached_s'] * 1e3:7.3f} ms ratio={r['ratio']:8.1f} same_ids={r['same_ids']}", flush=True)
    print(table(rows))
    if not args.no_write:
        plot(rows, DOCS / "timing.png")
        body = (f"Measured {datetime.date.today()} on {machine()} with `python bench/generation.py`. WaveNet of "
                "2 blocks × L layers (residual 32, gate 64, skip 128, 256 classes, kernel 2), random weights, a "
                "random prompt that fills the receptive field, temperature 1, seed 123. Naive = `generate_naive` "
                "(forward over the whole field per sample); cached = `generate` (Fast WaveNet queues, eager PyTorch). "
                "Time per sample is the median gap between consecutive samples (priming excluded; the median keeps "
                "moments when another process took the core out of the figure).\n\n" + table(rows) + "\n\n![time per sample vs layers](timing.png)")
        write_section(HEADING, body)
    return 0 if all(r["same_ids"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
