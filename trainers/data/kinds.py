"""Which model families fit which data: audio families eat audio folders, text families text, names lists and
(sequence to sequence only) .tsv pairs.  The trainer refuses a family that does not fit (trainers.train.build, so
the CLI and background jobs alike), and the app's default family follows the detected data (`default_family_for`).
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from engine import registry
from engine.errors import UserError

from .base import DataError

# the family offered first for each kind of data (when it is registered)
DEFAULTS = {"audio": "wavenet", "text": "bytenet", "names": "hierarchical", "pairs": "seq2seq"}
DESCRIBE = {"audio": "an audio folder", "text": "a text corpus", "names": "a names list (text)",
            "pairs": "a .tsv of pairs (text)"}


@lru_cache(maxsize=None)
def family_traits(family: str) -> tuple[str, bool] | None:
    """(token kind "audio" | "text", whether it rewrites a source: seq2seq) of a family's default model; None for
    a family that is composed of trained parts rather than trained itself (a pipeline: trainers pipeline)."""
    try:
        model = registry.build_model(family)
    except UserError:
        return None
    return model.tokens.kind, hasattr(model, "encode")


def fits(family: str, data_kind: str) -> bool:
    traits = family_traits(family)
    if traits is None:
        return False
    kind, rewrites = traits
    if data_kind == "audio":
        return kind == "audio"
    if data_kind == "pairs":
        return kind == "text" and rewrites
    return kind == "text" and not rewrites  # text corpus, names list


def fitting_families(data_kind: str) -> list[str]:
    """The registered families that train on this kind of data ("audio", "text", "names", "pairs"), the default
    first."""
    found = [f for f in registry.families() if fits(f, data_kind)]
    first = DEFAULTS.get(data_kind)
    return sorted(found, key=lambda f: (f != first, f))


def default_family_for(data_kind: str) -> str | None:
    """The family to offer for this kind of data (None when no family fits)."""
    found = fitting_families(data_kind)
    return found[0] if found else None


def check_fits(family: str, data_kind: str, path: str | Path) -> None:
    """Refuse data whose kind the family does not take, naming the families that fit."""
    if data_kind not in DESCRIBE or fits(family, data_kind):
        return  # an unknown kind is load_dataset's to refuse
    if family_traits(family) is None:
        raise DataError(f"{family} is not trained directly: train its parts, then compose them "
                        "(python -m trainers pipeline; docs/TRAINING.md)")
    kind, rewrites = family_traits(family)
    what = "an audio" if kind == "audio" else ("a sequence-to-sequence" if rewrites else "a text")
    found = fitting_families(data_kind)
    hint = f"pick {' or '.join(found) if len(found) <= 2 else ', '.join(found[:-1]) + ' or ' + found[-1]}" \
        if found else "no family trains on it"
    need = {"audio": "audio folders", "text": ".tsv pairs" if rewrites else "text"}[kind]
    raise DataError(f"{Path(path).name} is {DESCRIBE.get(data_kind, data_kind)}, but {family} is {what} family "
                    f"(it trains on {need}): {hint}")
