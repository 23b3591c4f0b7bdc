"""The fast path's speed in two checkouts, measured alternately (A, B, A, B, ...) so machine load hits both alike.

    python bench/compare_fast.py --baseline /tmp/baseline               # 3 rounds, this checkout vs the baseline
    python bench/compare_fast.py --baseline ../old --rounds 5 --seconds 4

Every measurement is a fresh process that imports `engine` from one checkout; the models (bench/generation.py's
`fast_models`, every family with a fast loop) and the timing (`rate`: chunks of 16, samples/s from the median gap
between chunks, and samples per CPU-second) are this checkout's, so both trees are timed the same way.  One thread,
batch 1, the same random weights and 64-token prompt in both.  Prints each round, then per model the median of each
tree, current ÷ baseline, and whether both trees made the same ids.  Writes nothing.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
IDS_KEPT = 512  # ids per model compared across the two trees


def measure(root: Path, seconds: float) -> None:
    """(child) Time the fast path of `root`'s engine; print one JSON line per model."""
    sys.path.insert(0, str(root))
    import torch
    import engine
    if not Path(engine.__file__).resolve().is_relative_to(root.resolve()):
        raise SystemExit(f"imported engine from {engine.__file__}, not from {root}")
    spec = importlib.util.spec_from_file_location("_bench_generation", HERE / "bench" / "generation.py")
    gen = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen)  # its `import engine` finds root's engine, already imported
    from engine import fast
    torch.set_num_threads(1)
    for name, model in gen.fast_models():
        reason = fast.why_not(model)
        if reason is not None:
            print(json.dumps(dict(model=name, skipped=reason)), flush=True)
            continue
        prompt = torch.randint(0, model.tokens.vocab_size, (1, 64), generator=torch.Generator().manual_seed(0))
        wall, cpu, ids = gen.rate(model, prompt, "fast", seconds)
        print(json.dumps(dict(model=name, wall=wall, cpu=cpu, ids=ids[0, :IDS_KEPT].tolist())), flush=True)


def run_tree(root: Path, seconds: float) -> dict[str, dict]:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--measure", str(root),
                          "--seconds", str(seconds)], cwd=root, env=env, capture_output=True, text=True, check=True)
    return {r["model"]: r for r in map(json.loads, out.stdout.splitlines())}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--baseline", type=Path, help="the other checkout (its engine/ is imported)")
    p.add_argument("--current", type=Path, default=HERE, help="default: this checkout")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--seconds", type=float, default=3.0, help="wall seconds per model per measurement")
    p.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.measure:
        measure(args.measure, args.seconds)
        return 0
    if args.baseline is None:
        p.error("--baseline is required")
    trees = {"baseline": args.baseline, "current": args.current}
    runs: dict[str, list[dict]] = {"baseline": [], "current": []}
    for i in range(args.rounds):
        for label, root in trees.items():
            runs[label].append(run_tree(root, args.seconds))
            figures = "  ".join(f"{m[:14]} {r['wall']:,.0f}/s" for m, r in runs[label][-1].items() if "wall" in r)
            print(f"round {i + 1} {label:8s} {figures}", flush=True)
    print(f"\nload average at the end: {', '.join(f'{x:.1f}' for x in os.getloadavg())}\n")
    print("| model | baseline samples/s | current samples/s | current ÷ baseline | per CPU-second: baseline / current "
          "| ÷ | same ids |\n|---|---|---|---|---|---|---|")
    ok = True
    for name, first in runs["current"][0].items():
        if "wall" not in first or "wall" not in runs["baseline"][0].get(name, {}):
            print(f"| {name} | — | — | — | — | — | {first.get('skipped', 'not in the baseline')} |")
            continue
        med = {label: {k: statistics.median(r[name][k] for r in rs) for k in ("wall", "cpu")}
               for label, rs in runs.items()}
        a, b = runs["baseline"][0][name]["ids"], first["ids"]
        n = min(len(a), len(b))
        same = a[:n] == b[:n]
        ok &= same
        print(f"| {name} | {med['baseline']['wall']:,.0f} | {med['current']['wall']:,.0f} | "
              f"{med['current']['wall'] / med['baseline']['wall']:.2f} | {med['baseline']['cpu']:,.0f} / "
              f"{med['current']['cpu']:,.0f} | {med['current']['cpu'] / med['baseline']['cpu']:.2f} | "
              f"{'yes' if same else 'NO'} ({n}) |")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
