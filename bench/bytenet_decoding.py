"""ByteNet cached (convolution queues) vs naive (recompute the whole field) decoding speed, in bytes/s.

The model is the ByteNet decoder with 6 sets of residual blocks (dilations 1..16, kernel 3): a 373-byte
receptive field.  Both paths start from the same 373-byte prompt, sample with the same seed, and must produce
the same bytes; time per byte is the median gap between consecutive yielded bytes (priming excluded).

    python bench/bytenet_decoding.py --threads 1
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import engine  # noqa: E402
from bench.generation import time_per_sample  # noqa: E402


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--d", type=int, default=64)
    ap.add_argument("--sets", type=int, default=6)
    ap.add_argument("--block", default="residual")
    ap.add_argument("--bytes", type=int, default=300)
    ap.add_argument("--naive-budget", type=float, default=20.0)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = engine.build_model("bytenet", d=args.d, sets=args.sets, block=args.block).eval()
    field = model.receptive_field
    prompt = torch.randint(32, 127, (1, field), generator=torch.Generator().manual_seed(0))
    kw = dict(max_new_tokens=args.bytes, temperature=1.0, seed=123, chunk_size=1)
    cached_s, cached_ids, _ = time_per_sample(engine.generate(model, prompt, backend="eager", **kw))
    naive_s, naive_ids, n = time_per_sample(engine.generate_naive(model, prompt, **kw), args.naive_budget)
    same = torch.equal(naive_ids, cached_ids[:, :n])
    print(f"bytenet d={args.d} sets={args.sets} block={args.block} field={field} params={model.num_parameters()} "
          f"threads={args.threads}: cached (eager queues) {1 / cached_s:.0f} bytes/s, naive {1 / naive_s:.1f} "
          f"bytes/s ({n} bytes), speed-up {naive_s / cached_s:.1f}x, same bytes: {same}")
    try:  # the compiled path of engine.fast, where it serves ByteNet: whole-run throughput after a warm-up run
        fast_kw = dict(kw, chunk_size=args.bytes)
        fast_ids = engine.generate_all(model, prompt, backend="fast", **fast_kw)
        t0 = time.perf_counter()
        engine.generate_all(model, prompt, backend="fast", **fast_kw)
        fast_s = (time.perf_counter() - t0) / args.bytes
        print(f"  fast (engine.fast) {1 / fast_s:.0f} bytes/s incl. priming, same bytes as eager: "
              f"{torch.equal(fast_ids, cached_ids)}")
    except (ValueError, ImportError) as e:
        print(f"  fast path not available: {e}")


if __name__ == "__main__":
    main()
