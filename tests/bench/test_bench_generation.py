"""The timing experiment script runs end to end on a tiny range and reports identical ids on both paths."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench.generation import main, measure  # noqa: E402


def test_measure_small_wavenet():
    row = measure(layers=3, threads=1, cached_samples=20, naive_budget_s=0.2)
    assert row["same_ids"] and row["field"] == 15 and row["naive_s"] > 0 and row["cached_s"] > 0


def test_main_without_writing(capsys):
    assert main(["--layers", "2", "--threads", "1", "--cached-samples", "10", "--naive-budget", "0.1", "--no-write"]) == 0
    assert "naive ÷ cached" in capsys.readouterr().out
