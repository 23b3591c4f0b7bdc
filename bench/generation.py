"""The Fast WaveNet timing experiment: naive vs cached generation for WaveNets of 2 blocks x L layers.

For each L the naive path recomputes `forward` over the whole receptive field for every sample (O(2^L)); the
cached path steps the convolution queues (O(L)).  Both start from the same random prompt that fills the receptive
field, sample with the same seed, and must produce identical ids.  Time per sample is measured between the first
and the last yielded sample (so priming is excluded), once with one thread and once with all threads.

    python bench/generation.py                 # L = 2..14, writes docs/BENCHMARKS.md and docs/timing.png
    python bench/generation.py --layers 2 4 --no-write

The second part compares the eager cached step with the compiled fast path (engine.fast) in the same
run: default WaveNet at one thread and all threads, batch 1 and 8, plus the ByteNet decoder, the hierarchical
model and SampleRNN (every family with a fast loop); samples/s, real-time factor at 16 kHz, and whether both paths
made the same ids.  bench/compare_fast.py times the fast column of two checkouts against each other.

    python bench/generation.py --part fast     # only the eager-vs-fast table (its own section of BENCHMARKS.md)
    python bench/generation.py --part all      # both experiments
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
HEADING = "Fast WaveNet timing experiment (naive vs cached)"


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
    gaps = torch.tensor(stamps, dtype=torch.float64).diff()  # float32 would round the stamps to ~0.2 ms
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


# ---- eager cached step vs the compiled fast path ------------------------------------------------------------------
HEADING_FAST = "Fast generation path"
AUDIO_RATE = 16000


def fast_models() -> list[tuple[str, engine.AutoregressiveModel]]:
    torch.manual_seed(0)
    return [("WaveNet default (2×10, 32/64/128, 256 classes)", engine.build_model("wavenet").eval()),
            ("ByteNet decoder default (d 64, 3 sets × 5, k 3)", engine.build_model("bytenet").eval()),
            ("hierarchical default (3 levels, width 128)", engine.build_model("hierarchical").eval()),
            ("SampleRNN 2-tier (frame 16, GRU 256, MLP 128; the demo models' shape)",
             engine.build_model("samplernn", frame_sizes=[16], dim=256, mlp_dim=128, embed_dim=32).eval())]


def rate(model, prompt, backend: str, seconds: float) -> tuple[float, float, torch.Tensor]:
    """(samples/s from the median chunk gap, samples per CPU-second over the whole run, ids).  The eager path
    yields every sample (chunk 1), the fast path chunks of 16 (short enough that most chunks run without being
    preempted on a shared machine); each runs for about `seconds` of wall time."""
    chunk = 1 if backend == "eager" else 16
    batch = prompt.shape[0]
    gen = engine.generate(model, prompt, max_new_tokens=10**6, temperature=1.0, seed=123, chunk_size=chunk,
                          backend=backend)
    ids = [next(gen)]  # priming (and any compilation) happens before the first chunk
    stamps, cpu0 = [time.perf_counter()], time.process_time()
    for c in gen:
        ids.append(c)
        stamps.append(time.perf_counter())
        if stamps[-1] - stamps[0] > seconds and len(stamps) >= 8:
            break
    gen.close()
    cpu = time.process_time() - cpu0
    n = chunk * (len(stamps) - 1) * batch
    median_gap = torch.tensor(stamps, dtype=torch.float64).diff().median().item()
    return chunk * batch / median_gap, n / cpu, torch.cat(ids, 1)


def measure_fast(name: str, model, threads: int, batch: int, seconds: float) -> dict:
    torch.set_num_threads(threads)
    prompt = torch.randint(0, model.tokens.vocab_size, (batch, 64), generator=torch.Generator().manual_seed(0))
    eager, eager_cpu, eager_ids = rate(model, prompt, "eager", seconds)
    fast, fast_cpu, fast_ids = rate(model, prompt, "fast", seconds)
    n = min(eager_ids.shape[1], fast_ids.shape[1])
    return dict(model=name, threads=threads, batch=batch, eager=eager, fast=fast, eager_cpu=eager_cpu,
                fast_cpu=fast_cpu, compared=n * batch, same_ids=torch.equal(eager_ids[:, :n], fast_ids[:, :n]))


def fast_table(rows: list[dict]) -> str:
    lines = ["| model | threads | batch | eager samples/s | fast samples/s | fast ÷ eager | fast × real time at 16 kHz "
             "| per CPU-second: eager / fast | ids identical (compared) |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['threads']} | {r['batch']} | {r['eager']:,.0f} | {r['fast']:,.0f} | "
                     f"{r['fast'] / r['eager']:.1f}× | {r['fast'] / AUDIO_RATE:.2f}× | "
                     f"{r['eager_cpu']:,.0f} / {r['fast_cpu']:,.0f} | {'yes' if r['same_ids'] else 'NO'} "
                     f"({r['compared']:,}) |")
    return "\n".join(lines)


def run_fast(threads: list[int], seconds: float, write: bool) -> bool:
    from engine import fast
    rows = []
    for name, model in fast_models():
        if fast.why_not(model) is not None:
            print(f"{name}: no fast path ({fast.why_not(model)})")
            continue
        combos = [(th, b) for th in threads for b in (1, 8)] if name.startswith("WaveNet") else [(1, 1)]
        for th, b in combos:
            rows.append(measure_fast(name, model, th, b, seconds))
            r = rows[-1]
            print(f"{name[:22]:22s} threads={th} batch={b} eager={r['eager']:9.0f}/s fast={r['fast']:9.0f}/s "
                  f"ratio={r['fast'] / r['eager']:6.1f} cpu-rate eager={r['eager_cpu']:9.0f} fast={r['fast_cpu']:9.0f} "
                  f"same_ids={r['same_ids']}", flush=True)
    print(fast_table(rows))
    if write:
        load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        body = (f"Measured {datetime.date.today()} on {machine()} with `python bench/generation.py --part fast` "
                f"(load average at the end of the run: {load}; the machine is shared, so the wall-clock columns are "
                "lower bounds of what an idle core does). Random weights, a random 64-token prompt, temperature 1, "
                "seed 123; both backends run in the same process, one after the other. Eager = `generate(..., "
                "backend=\"eager\")` (PyTorch step per token, chunk 1); fast = `backend=\"fast\"` (engine.fast: "
                "the step compiled with numba, sampling inside the loop, chunks of 16). samples/s = batch × samples "
                "per median gap between chunks (the median leaves moments when another process had the core out); "
                "per CPU-second = samples ÷ CPU time of the process over the whole run (all its threads), which "
                "the other processes on the machine do not inflate. Real-time factor = fast samples/s ÷ 16,000. "
                "ids identical = the first N ids of both runs are equal (same seed, same RandomStream rows). The "
                "fast path runs a batch on min(batch, threads) threads; at batch 1 it always uses one core, so its "
                "one-core speed is the per CPU-second figure.\n\n"
                + fast_table(rows))
        write_section(HEADING_FAST, body)
    return all(r["same_ids"] for r in rows)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--layers", type=int, nargs="+", default=list(range(2, 15)))
    p.add_argument("--threads", type=int, nargs="+", default=sorted({1, os.cpu_count() or 1}))
    p.add_argument("--cached-samples", type=int, default=500)
    p.add_argument("--naive-budget", type=float, default=2.0, help="seconds of naive sampling per point (>= 3 samples)")
    p.add_argument("--no-write", action="store_true", help="print only; do not touch docs/")
    p.add_argument("--part", choices=("naive", "fast", "all"), default="naive",
                   help="naive: the naive-vs-cached experiment; fast: eager vs the compiled fast path")
    p.add_argument("--fast-seconds", type=float, default=4.0, help="wall seconds per backend in the fast part")
    args = p.parse_args(argv)
    ok = True
    if args.part in ("fast", "all"):
        ok = run_fast(args.threads, args.fast_seconds, not args.no_write)
    if args.part == "fast":
        return 0 if ok else 1
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
    return 0 if ok and all(r["same_ids"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
