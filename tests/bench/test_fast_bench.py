"""bench/generation.py's eager-vs-fast part runs end to end and reports identical ids on both backends."""
import sys
from pathlib import Path

import torch

import engine

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench.generation import fast_table, measure_fast  # noqa: E402


def test_measure_fast_small_wavenet():
    torch.manual_seed(0)
    model = engine.build_model("wavenet", layers_per_block=3, blocks=1, residual_channels=8, gate_channels=8,
                               skip_channels=8, n_classes=32).eval()
    before = torch.get_num_threads()
    try:
        row = measure_fast("tiny", model, threads=1, batch=2, seconds=0.2)
    finally:
        torch.set_num_threads(before)
    assert row["same_ids"] and row["compared"] > 0 and row["eager"] > 0 and row["fast"] > 0
    assert "fast ÷ eager" in fast_table([row])


def test_the_fast_table_covers_every_family_with_a_fast_loop():
    from bench.generation import fast_models
    from engine.fast.lowering import declared_fields
    families = {type(model).family for _, model in fast_models()}
    assert families == {cls.family for cls in declared_fields()}
