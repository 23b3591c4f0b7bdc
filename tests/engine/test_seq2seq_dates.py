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


# make_dates.date_pairs(3, seed=1, locales=(loc,), styles=("long",)): the same three days in each language
SEVERAL_LANGUAGES = {
    "en": ["March 21, 1948", "April 26, 1942", "June 21, 2069"],
    "fr": ["21 mars 1948", "26 avril 1942", "21 juin 2069"],
    "de": ["21. März 1948", "26. April 1942", "21. Juni 2069"],
    "es": ["21 de marzo de 1948", "26 de abril de 1942", "21 de junio de 2069"],
    "ru": ["21 марта 1948\u202fг.", "26 апреля 1942\u202fг.", "21 июня 2069\u202fг."],
    "ja": ["1948年3月21日", "1942年4月26日", "2069年6月21日"],
    "tr": ["21 Mart 1948", "26 Nisan 1942", "21 Haziran 2069"],
}
DAYS = ["1948-03-21", "1942-04-26", "2069-06-21"]


def test_several_languages():
    """The generator writes each language's own date (not one language in several guises), the default mix
    draws from all of them, and the shipped model reads every one of them back to ISO."""
    for loc, written in SEVERAL_LANGUAGES.items():
        assert loc in make_dates.LOCALES
        assert make_dates.date_pairs(3, seed=1, locales=(loc,), styles=("long",)) == list(zip(written, DAYS)), loc
    mixed = [w for w, _ in make_dates.date_pairs(300, seed=0)]
    assert any("年" in w for w in mixed) and any(any("а" <= c <= "я" for c in w) for w in mixed)
    assert any(m in w for w in mixed for m in ("janvier", "février", "mars", "avril", "mai", "juin", "juillet"))
    from engine.paths import SHIPPED_MODELS
    path = SHIPPED_MODELS / "seq2seq-dates"
    if path.is_dir():  # the project's model, not just the data generator, handles every language
        import engine
        model = engine.load_model(path)
        sources = [w for written in SEVERAL_LANGUAGES.values() for w in written]
        assert model.translate(sources) == DAYS * len(SEVERAL_LANGUAGES)


def test_shipped_dates_model_translates_held_out_style_inputs():
    import engine
    from engine.paths import SHIPPED_MODELS
    path = SHIPPED_MODELS / "seq2seq-dates"
    if not path.is_dir():
        pytest.skip("demo model not shipped")
    model = engine.load_model(path)
    pairs = make_dates.date_pairs(16, seed=2026)  # a seed the training data did not use
    assert model.translate([s for s, _ in pairs]) == [t for _, t in pairs]
