"""Time the same models under two checkouts in alternating fresh processes (A, B, B, A, ...), so the load of a
shared machine falls on both alike; used by bench/vocoder_speed.py and bench/train_step.py."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Callable

REPO = Path(__file__).resolve().parents[1]


def checkouts(baseline: str | None) -> list[tuple[str, Path]]:
    """("current", this checkout) and, with `baseline`, ("baseline", that one)."""
    return [("current", REPO)] + ([("baseline", Path(baseline).resolve())] if baseline else [])


def in_checkout(tree: Path, script: str, *args: str) -> dict:
    """Run `script` (python source) in a fresh one-thread process that imports `engine` from `tree`; returns the
    JSON object of its last line."""
    env = dict(os.environ, PYTHONPATH=str(tree), OMP_NUM_THREADS="1")
    out = subprocess.run([sys.executable, "-c", script, *args], cwd=tree, env=env, capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def rounds(trees: list[tuple[str, Path]], models: list[str], n: int,
           measure: Callable[[Path, Path], tuple[float, str]]) -> dict[tuple[str, str], list[float]]:
    """`n` rounds, the checkouts' order reversed every other round; measure(tree, model) -> (value, what to
    print).  Returns {(model, checkout name): [value per round]}."""
    results: dict[tuple[str, str], list[float]] = {}
    for r in range(n):
        for name, tree in (trees if r % 2 == 0 else trees[::-1]):
            for m in models:
                value, line = measure(tree, Path(m).resolve())
                results.setdefault((m, name), []).append(value)
                print(f"round {r + 1} {name:8s} {m}: {line}", flush=True)
    return results


def table(results: dict[tuple[str, str], list[float]], what: str, fmt: str) -> None:
    """A markdown table: one row per model and checkout, every round's value."""
    print(f"\n| model | tree | {what} (each round) |\n|---|---|---|")
    for (m, name), xs in results.items():
        print(f"| {m} | {name} | {' / '.join(format(x, fmt) for x in xs)} |")
