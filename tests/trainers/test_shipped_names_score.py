"""The shipped hierarchical names model keeps its promise: <= 80K parameters, <= 1.95 nats/char validation.

Scored by the trainer's own evaluation on makemore's split of $PLAYGROUND_DATA/text/names/names.txt
(engine.paths.data_root(); skipped where that file is absent, as in a user's fresh clone).  A few seconds on one thread.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from engine.checkpoint import load_model
from engine.paths import data_path
from trainers.evaluate import evaluate_checkpoint

ROOT = Path(__file__).resolve().parents[2]
MODEL = ROOT / "assets" / "models" / "hierarchical-names"
NAMES = data_path("text", "names", "names.txt")


@pytest.mark.skipif(NAMES is None or not NAMES.is_file(),
                    reason="needs makemore's names.txt at $PLAYGROUND_DATA/text/names/names.txt "
                           "(docs/TRAINING.md, \"Public datasets\")")
@pytest.mark.skipif(not MODEL.is_dir(), reason="hierarchical-names not shipped")
def test_shipped_names_model_scores_at_most_1_95_nats_with_at_most_80k_parameters():
    model = load_model(MODEL)
    assert sum(p.numel() for p in model.parameters()) <= 80_000
    val = evaluate_checkpoint(MODEL, NAMES, split="val")
    assert val.tokens == 22_655  # every validation name and its closing newline, once
    assert val.nats <= 1.95
