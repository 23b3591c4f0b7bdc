"""The seq2seq demo's generated data: dates written out with Babel -> ISO 8601, reproducible, no download."""
import datetime
import importlib.util
from pathlib import Path

import pytest

pytest.importorskip("babel")
spec = importlib.util.spec_from_file_location("make_dates", Path(__file__).resolve().parents[2] / "scripts" / "make_dates.py")
make_dates = importlib.util.module_from_spec(spec)
spec.loader.exec_module(make_dates)


def test_pairs_are_reproducible_and_correct(tmp_path):
    pairs = make_dates.date_pairs(40, seed=3)
    assert pairs == make_dates.date_pairs(40, seed=3) != make_dates.date_pairs(40, seed=4)
    for written, iso in pairs:
        day = datetime.date.fromisoformat(iso)
        assert str(day.year) in written and "\t" not in written
    path = make_dates.write_tsv(tmp_path / "d.tsv", pairs)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 40 and all(line.count("\t") == 1 for line in lines)


def test_several_languages():
    from babel.dates import format_date
    day = datetime.date(2021, 3, 5)
    written = {loc: format_date(day, "long", locale=loc) for loc in ("en", "fr", "de", "ru")}
    assert len(set(written.values())) == 4 and "mars" in written["fr"]


def test_shipped_dates_model_translates_held_out_style_inputs():
    import engine
    from engine.paths import SHIPPED_MODELS
    path = SHIPPED_MODELS / "seq2seq-dates"
    if not path.is_dir():
        pytest.skip("demo model not shipped")
    model = engine.load_model(path)
    pairs = make_dates.date_pairs(16, seed=2026)  # a seed the training data did not use
    assert model.translate([s for s, _ in pairs]) == [t for _, t in pairs]
