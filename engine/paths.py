"""Where things live: shipped models in the repository, the user's own under PLAYGROUND_HOME, and the public
datasets the recipes, benchmarks and slow tests read under PLAYGROUND_DATA (see docs/TRAINING.md)."""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SHIPPED_MODELS = REPO_ROOT / "assets" / "models"


def playground_home() -> Path:
    """The user's data folder (training runs, their models); `PLAYGROUND_HOME` overrides it."""
    return Path(os.environ.get("PLAYGROUND_HOME", Path.home() / ".autoregressive-playground"))


def data_root() -> Path | None:
    """The folder of public datasets (text/names/names.txt, audio/fsdd/recordings, ...; docs/TRAINING.md).

    `PLAYGROUND_DATA` when set; else a `shared/data` folder beside the repository, when there is one; else None
    (a fresh clone: the code that needs the data says so and skips)."""
    env = os.environ.get("PLAYGROUND_DATA")
    if env:
        return Path(env).expanduser()
    beside = REPO_ROOT.parent / "shared" / "data"
    return beside if beside.is_dir() else None


def data_path(*parts: str) -> Path | None:
    """`data_root() / parts...`, or None when there is no data root."""
    root = data_root()
    return root.joinpath(*parts) if root is not None else None


def user_models_dir() -> Path:
    return playground_home() / "models"


def runs_dir() -> Path:
    return playground_home() / "runs"


def model_roots() -> list[Path]:
    """Every folder models may be loaded from; the app refuses any path outside these."""
    return [SHIPPED_MODELS, user_models_dir(), runs_dir()]
