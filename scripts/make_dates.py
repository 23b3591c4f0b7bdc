"""Generate the seq2seq demo's data: dates written out in several languages -> ISO 8601 (YYYY-MM-DD).

Everything comes from Babel's CLDR locale data, installed with the project, so nothing is downloaded:

    python scripts/make_dates.py runs/dates.tsv --n 40000 --seed 0

Each line is `written<TAB>iso`, e.g. `vendredi 5 mars 2021<TAB>2021-03-05`.  Dates are uniform over 1900-2099;
the locale and the CLDR style (short forms excluded: they are ambiguous day/month orders) are drawn per line.
"""
from __future__ import annotations

import argparse
import datetime
import random
from pathlib import Path

from babel.dates import format_date

LOCALES = ("en", "fr", "de", "es", "it", "pt", "nl", "sv", "pl", "tr", "ru", "ja")
STYLES = ("long", "full", "medium")
FIRST, LAST = datetime.date(1900, 1, 1), datetime.date(2099, 12, 31)


def date_pairs(n: int, seed: int = 0, locales: tuple[str, ...] = LOCALES,
               styles: tuple[str, ...] = STYLES) -> list[tuple[str, str]]:
    """n (written date, ISO date) pairs, reproducible for a seed."""
    rng = random.Random(seed)
    span = (LAST - FIRST).days
    out = []
    for _ in range(n):
        day = FIRST + datetime.timedelta(days=rng.randrange(span + 1))
        written = format_date(day, rng.choice(styles), locale=rng.choice(locales))
        out.append((written.replace("\t", " "), day.isoformat()))
    return out


def write_tsv(path: str | Path, pairs: list[tuple[str, str]]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{s}\t{t}\n" for s, t in pairs), encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out", help="TSV file to write")
    ap.add_argument("--n", type=int, default=40000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    print(write_tsv(args.out, date_pairs(args.n, args.seed)))


if __name__ == "__main__":
    main()
